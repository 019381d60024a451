"""The auxiliary and skip deep generative models (ADGM, SDGM): their bounds, their training through the
registry, where a enters p, their refusals."""

import numpy as np
import pytest
import torch

from semivae.errors import UserError
from semivae.eval import evaluate, predict
from semivae.models import build_model
from semivae.nn import ArchConfig
from semivae.train import train
from tests.conftest import batch, model_config, spec


MODELS = ["adgm", "sdgm"]


def _model(name="adgm", **kw):
    torch.manual_seed(0)
    return build_model(spec((1, 8, 8), 4), ArchConfig(hidden=[16], latent_dim=3), model_config(name, aux_dim=2, **kw))


@pytest.mark.parametrize("name", MODELS)
def test_the_bound_sums_the_classes_and_the_importance_bound_is_tighter(name):
    m = _model(name).eval()
    x = torch.rand(32, 1, 8, 8).round()
    with torch.no_grad():
        t = m.enumerated(x, sample=False)
        log_px, rest = m.elbo_terms(x, sample=False)
        # ELBO(x) = E_q(y)[ELBO(x, y)] + H(q(y)), with ELBO(x, y) the labelled bound read off the same table
        q = torch.softmax(t["logits"], -1).T  # (K, B)
        labelled = t["log_px"] + t["log_pa"] - t["kl_z"] - np.log(4) - t["log_qa"]  # (K, B)
        torch.testing.assert_close(log_px - rest, (q * labelled).sum(0) - (q * q.log()).sum(0))
        torch.manual_seed(1)
        elbo = torch.stack([torch.sub(*m.elbo_terms(x)) for _ in range(64)]).mean(0)  # (B,)
        iwae = torch.logsumexp(m.log_weights(x, 256), 0) - np.log(256)  # (B,)
    assert torch.isfinite(iwae).all() and iwae.mean() > elbo.mean()


@pytest.mark.parametrize("name", MODELS)
def test_labelled_points_pay_the_cross_entropy_and_unlabelled_ones_do_not(name):
    m = _model(name, alpha=1.0)
    x, y = torch.rand(8, 1, 8, 8).round(), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    out = m(batch(x, y, torch.tensor([True] * 4 + [False] * 4)))
    assert set(out.terms) >= {"recon", "kl", "aux", "ce"} and out.counts["ce"] == 4
    out.total.backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if n.startswith(("to_y", "p_a", "decoder")))
    none = m(batch(x, y, torch.zeros(8, dtype=torch.bool)))
    assert none.terms["ce"] == 0 and none.counts["ce"] == 0


def test_where_a_enters_p():
    """ADGM: p(a | x, y, z) reads x and the decoder ignores a; SDGM: p(a | y, z) and p(x | a, y, z)."""
    z, y1h = torch.randn(1, 5, 3), torch.eye(4)[[0, 1, 2, 3, 0]][None]  # (1, B, D), (1, B, K)
    a1, a2 = torch.zeros(1, 5, 2), torch.ones(1, 5, 2)
    adgm, sdgm = _model("adgm").eval(), _model("sdgm").eval()
    with torch.no_grad():
        assert torch.equal(adgm.generative(z, y1h, a1), adgm.generative(z, y1h, a2))
        assert not torch.allclose(sdgm.generative(z, y1h, a1), sdgm.generative(z, y1h, a2))
        assert torch.isfinite(sdgm.log_pa(None, y1h, z, a1)).all()
    assert adgm.enc_p is not None and sdgm.enc_p is None
    assert sdgm.p_a[0][0].in_features == 4 + 3 and adgm.p_a[0][0].in_features == 16 + 4 + 3


@pytest.mark.parametrize("name", MODELS)
def test_trains_evaluates_predicts_and_generates_through_the_registry(name, tiny, tmp_path):
    run = train(tiny(model=name, epochs=3, aux_dim=4), out=tmp_path / "r", progress=False)
    res = evaluate(run, iwae_k=8, iwae_points=20)
    assert 0.2 < res["accuracy"] <= 1 and 0 < res["nll"] < 1e4
    np.savez(tmp_path / "new.npz", x=np.random.default_rng(0).integers(0, 17, (5, 8, 8)).astype(np.uint8))
    proba, classes = predict(run, tmp_path / "new.npz")
    assert proba.shape == (5, 10) and np.allclose(proba.sum(1), 1, atol=1e-5)
    from semivae.runs import load_run
    model = load_run(run).model
    images = model.generate(torch.randn(10, 4), {"label": torch.arange(10)})
    assert images.shape == (10, 1, 8, 8) and 0 <= images.min() and images.max() <= 1


def test_a_conv_encoder_under_the_dense_decoder_trains_reloads_and_generates(tiny, tmp_path):
    """--arch conv --decoder-arch dense: the convolutions read x once, the cheap decoder runs once per class."""
    from semivae.nn import ConvEncoder, DenseDecoder
    from semivae.runs import load_run

    cfg = tiny(model="sdgm", arch="conv", decoder_arch="dense", channels=[8, 8], strides=[2, 2], fc=16, epochs=1,
               aux_dim=4)
    model = load_run(train(cfg, out=tmp_path / "r", progress=False)).model
    assert isinstance(model.enc, ConvEncoder) and isinstance(model.decoder, DenseDecoder)
    assert model.generate(torch.randn(10, 4), {"label": torch.arange(10)}).shape == (10, 1, 8, 8)


@pytest.mark.parametrize("name", MODELS)
def test_continuous_targets_and_per_step_latents_are_refused(name):
    with pytest.raises(UserError, match=f"model {name} predicts classes only"):
        build_model(spec((1, 8, 8), 3, n_targets=1), ArchConfig(hidden=[8], latent_dim=2), model_config(name))
    with pytest.raises(UserError, match="sequence-latent pooled"):
        build_model(spec((10, 2), 3, "gaussian", kind="sequence"),
                    ArchConfig(arch="recurrent", hidden=[8], latent_dim=2, sequence_latent="per-step"),
                    model_config(name))
