import torch
import torch.nn.functional as F

from semivae.models import build_model
from semivae.nn import ArchConfig
from tests.conftest import batch, model_config, spec

SPEC = spec((1, 8, 8), 10)
ARCH = ArchConfig(hidden=[32], latent_dim=3, dropout=0.0)


def _model(mode, **kw):
    torch.manual_seed(0)
    return build_model(SPEC, ARCH, model_config(mode=mode, **kw))


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 8, 8, generator=g)
    y = torch.tensor([3, 1, 4, 1, 5, 9])
    labelled = torch.tensor([False, False, False, True, True, True])
    return x, y, labelled


def test_cross_entropy_counts_labelled_points_only():
    m = _model("semi", alpha=7.0)
    x, y, labelled = _batch()
    torch.manual_seed(0)
    a = m(batch(x, y, labelled))
    shuffled = torch.tensor([3, 4, 5, 0, 1, 2])  # where a point sits in the batch must not matter
    torch.manual_seed(0)
    b = m(batch(x[shuffled], y[shuffled], labelled[shuffled]))
    torch.testing.assert_close(a.terms["ce"], b.terms["ce"])
    assert a.counts["ce"] == 3
    logits = m.inference(x).logits["label"]
    torch.testing.assert_close(a.terms["ce"], F.cross_entropy(logits[labelled], y[labelled]))  # normalised by #labelled
    torch.manual_seed(0)
    none = m(batch(x, y, torch.zeros(6, dtype=torch.bool)))
    assert none.terms["ce"] == 0 and none.counts["ce"] == 0
    torch.testing.assert_close(a.total - none.total, 7.0 * a.terms["ce"], atol=1e-3, rtol=1e-4)  # alpha x CE


def test_semi_decoder_sees_z_and_pi():
    m = _model("semi")
    assert m.decoder.net[0].in_features == 3 + 10
    assert {"pi.label.weight", "mu.weight", "logvar.weight"} <= set(dict(m.named_parameters()))


def test_unsupervised_mode_drops_pi():
    m = _model("unsupervised")
    names = set(dict(m.named_parameters()))
    assert not any(n.startswith("pi.") for n in names) and not m.heads
    assert m.decoder.net[0].in_features == 3  # decoder takes z alone
    x, y, labelled = _batch()
    t = m(batch(x, y, labelled))
    assert t.terms["ce"] == 0 and t.terms["recon"] > 0


def test_supervised_mode_drops_decoder_and_sampling():
    m = _model("supervised", alpha=5.0)
    names = set(dict(m.named_parameters()))
    assert not any(n.split(".")[0] in ("decoder", "mu", "logvar", "likelihood") for n in names)
    x, y, labelled = _batch()
    t = m(batch(x, y, labelled))
    assert t.terms["recon"] == 0 and t.terms["kl"] == 0
    torch.testing.assert_close(t.total, t.terms["ce"])  # cross-entropy alone, no alpha
    inf1, inf2 = m.inference(x), m.inference(x)
    assert inf1.z is None and torch.equal(inf1.logits["label"], inf2.logits["label"])  # no sampling anywhere


def test_beta_weights_the_kl_hook():
    x, y, labelled = _batch()
    terms = {}
    for beta in (0.0, 2.0):
        m = _model("unsupervised", beta=beta)
        torch.manual_seed(0)
        terms[beta] = m(batch(x, y, labelled))
    torch.testing.assert_close(terms[2.0].total - terms[0.0].total, 2.0 * terms[2.0].terms["kl"], atol=1e-4, rtol=1e-4)


def test_reconstruct_and_predict_shapes():
    m = _model("semi").eval()
    x, _, _ = _batch()
    rec = m.reconstruct(x)
    assert rec.shape == x.shape and ((rec > 0) & (rec < 1)).all()  # Bernoulli means
    proba = m.predict_proba(x)["label"]
    assert proba.shape == (6, 10) and torch.allclose(proba.sum(1), torch.ones(6))
