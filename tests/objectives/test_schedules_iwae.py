"""KL schedules reach their end values; the IWAE bound is above the ELBO and grows with k."""

import pytest
import torch

from semivae.models import build_model
from semivae.nn import ArchConfig
from semivae.objectives.iwae import iwae_log_px
from semivae.objectives.schedules import KLSchedule, set_progress
from tests.conftest import model_config, spec


def test_warmup_rises_linearly_from_zero_to_beta():
    s = KLSchedule("warmup", beta=0.5, warmup_epochs=4)
    kl = torch.tensor([2.0, 4.0])
    for t, w in [(0, 0.0), (2, 0.25), (4, 0.5), (9, 0.5)]:
        set_progress(s, t)
        torch.testing.assert_close(s.penalty(kl), w * kl)


def test_capacity_rises_to_its_end_value_and_penalises_the_distance():
    s = KLSchedule("capacity", gamma=10.0, capacity_max=25.0, capacity_epochs=5)
    assert s.capacity() == 0.0
    set_progress(s, 2.5)
    assert s.capacity() == pytest.approx(12.5)
    set_progress(s, 50)
    assert s.capacity() == pytest.approx(25.0)
    torch.testing.assert_close(s.penalty(torch.tensor([20.0, 30.0])), torch.tensor([50.0, 50.0]))


def test_constant_is_beta_times_kl():
    s = KLSchedule("constant", beta=4.0)
    torch.testing.assert_close(s.penalty(torch.tensor([1.5])), torch.tensor([6.0]))


SPEC = spec((1, 8, 8), 4)


@pytest.mark.parametrize("model,kw", [("semivae", dict(mode="unsupervised")), ("semivae", dict(mode="semi")),
                                      ("m2", {}), ("pspec", dict(structure="y|z,x")), ("m1m2", dict(m2_hidden=[8], m2_latent_dim=2))])
def test_iwae_bound_is_above_the_elbo_and_grows_with_k(model, kw):
    torch.manual_seed(0)
    m = build_model(SPEC, ArchConfig(hidden=[16], latent_dim=3, dropout=0.0), model_config(model, **kw)).eval()
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        elbo = torch.stack([torch.sub(*m.elbo_terms(x)) for _ in range(20)]).mean()  # log p(x|.) - KL
        bound = {k: iwae_log_px(m, x, k, max_rows=500).mean() for k in (1, 10, 100)}
    assert abs(bound[1] - elbo) < 1.0  # L_1 is the ELBO, up to Monte Carlo noise
    # non-decreasing in k; 0.02 nats of slack for Monte Carlo noise where the bound is already tight
    assert bound[10] > elbo and bound[100] >= bound[10] - 0.02, (float(elbo), {k: float(v) for k, v in bound.items()})


def test_iwae_chunks_give_the_same_bound():
    torch.manual_seed(0)
    m = build_model(SPEC, ArchConfig(hidden=[16], latent_dim=3, dropout=0.0), model_config(mode="unsupervised")).eval()
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(5)
    a = iwae_log_px(m, x, 50, max_rows=10_000)
    torch.manual_seed(5)
    b = iwae_log_px(m, x, 50, max_rows=4 * 50)
    torch.testing.assert_close(a, b)
