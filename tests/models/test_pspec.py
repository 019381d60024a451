"""M2 / partially-specified model: enumeration, the importance-sampled estimator, targets."""

import math

import pytest
import torch
import torch.nn.functional as F

from semivae.errors import UserError
from semivae.models import build_model
from semivae.nn import ArchConfig
from tests.conftest import batch, model_config, spec

SPEC = spec((1, 8, 8), 4)
ARCH = ArchConfig(hidden=[16], latent_dim=3, dropout=0.0)


def _model(model="m2", spec=SPEC, arch=ARCH, **kw):
    torch.manual_seed(0)
    return build_model(spec, arch, model_config(model, **kw)).eval()


def _x(n=5):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("structure", ["z|x,y", "y|z,x"])
def test_batched_enumeration_equals_a_loop_over_classes(structure):
    m = _model("pspec", structure=structure)
    x = _x()
    hy, hz = m.enc_y(x), m.enc_z(x)
    eps = torch.randn(m.K, len(x), m.D)
    rec, kl, logits = m.enumerated(x, hy, hz, None, eps)  # (K, B) in one pass
    for k in range(m.K):
        y1h = F.one_hot(torch.full((len(x),), k), m.K).float()
        if structure == "z|x,y":
            mu, logvar = m.q_z(hz, y1h)
            z = mu + torch.exp(0.5 * logvar) * eps[k]
        else:
            mu, logvar = m.q_z(hz, None)
            z = mu + torch.exp(0.5 * logvar) * eps[0]
        rec_k = m.log_px(x, m.generative(z[None], y1h[None]))[0]
        torch.testing.assert_close(rec[k], rec_k, rtol=1e-5, atol=1e-4)
        kl_k = kl[k] if kl.dim() == 2 else kl
        torch.testing.assert_close(kl_k, 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1))
        assert logits.shape == (len(x), m.K)


def test_unlabelled_loss_sums_classes_with_q_y_plus_entropy():
    m = _model("m2", beta=1.0)
    x = _x()
    y, unl = torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.bool)
    torch.manual_seed(3)
    terms = m(batch(x, y, unl))
    torch.manual_seed(3)
    rec, kl, logits = m.enumerated(x, m.enc_y(x), m.enc_z(x), None)
    q = torch.softmax(logits, -1).T  # (K, B)
    expected = (q * (-rec + kl)).sum(0) + (q * q.log()).sum(0) + math.log(m.K)  # -ELBO with y summed out
    torch.testing.assert_close(terms.total, expected.mean(), rtol=1e-5, atol=1e-4)


def _linear_gaussian(structure):
    """p(x|y,z) = N(W [z, e_y] + b, I) with z ~ N(0, I): p(x|y) is Gaussian in closed form."""
    arch = ArchConfig(hidden=[], latent_dim=2, dropout=0.0)
    m = _model("pspec", spec=spec((6,), 3, "gaussian-fixed"), arch=arch, structure=structure)
    W = m.decoder.out.weight.detach().double()  # (6, D + K)
    b = m.decoder.out.bias.detach().double()
    Wz, Wy = W[:, :2], W[:, 2:]
    return m, Wz, Wy, b


@pytest.mark.parametrize("structure", ["z|x,y", "y|z,x"])
def test_importance_sampled_estimate_converges_to_exact_log_p_x_y(structure):
    m, Wz, Wy, b = _linear_gaussian(structure)
    g = torch.Generator().manual_seed(2)
    y = torch.arange(8) % 3
    y1h = F.one_hot(y, 3).float()
    x = (torch.randn(8, 2, generator=g).double() @ Wz.T + y1h.double() @ Wy.T + b
         + torch.randn(8, 6, generator=g).double()).float()  # drawn from the model itself
    cov = Wz @ Wz.T + torch.eye(6, dtype=torch.float64)
    exact = torch.stack([torch.distributions.MultivariateNormal(Wy[:, k] + b, cov).log_prob(xi.double())
                         for xi, k in zip(x, y)]) - math.log(3)  # log p(x, y)
    torch.manual_seed(0)
    with torch.no_grad():
        hy, hz = m.enc_y(x), m.enc_z(x)
        err = {s: (m.importance_estimate(x, hy, hz, y1h, None, s)[0].double() - exact).abs().mean()
               for s in (1, 100, 200_000)}
    assert err[200_000] < 0.05 and err[200_000] < err[100] < err[1], err


def test_targets_are_observed_where_given_and_regressed():
    m = _model("pspec", spec=spec((1, 8, 8), 4, n_targets=2), alpha=3.0)
    x = _x(4)
    y = torch.tensor([0, 1, 2, 3])
    labelled = torch.tensor([False, True, True, True])
    t = torch.tensor([[float("nan")] * 2, [0.5, float("nan")], [1.0, -1.0], [0.0, 2.0]])
    terms = m(batch(x, y, labelled, t))
    assert torch.isfinite(terms.total)
    terms.total.backward()
    assert m.to_r.weight.grad.abs().sum() > 0  # the regression head learns from the observed targets
    assert m.predict_targets(x).shape == (4, 2)


def test_m2_takes_no_structure_and_modes_belong_to_semivae():
    from semivae.config import resolve

    with pytest.raises(UserError, match="pspec"):
        resolve(None, {"model": {"model": "m2", "structure": "y|z,x"}})
    with pytest.raises(UserError, match="--mode"):
        resolve(None, {"model": {"model": "m2", "mode": "unsupervised"}})
    with pytest.raises(TypeError):  # the option is not M2's at all
        model_config("m2", mode="unsupervised")


@pytest.mark.parametrize("kw", [dict(discrete="relax"), dict(samples=4), dict(structure="y|z,x", samples=3)])
def test_every_objective_variant_trains_a_step(kw):
    m = _model("pspec", **kw).train()
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x = _x(6)
    terms = m(batch(x, torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([0, 0, 0, 1, 1, 1], dtype=torch.bool)))
    terms.total.backward()
    opt.step()
    assert torch.isfinite(terms.total) and terms.counts["ce"] == 3
