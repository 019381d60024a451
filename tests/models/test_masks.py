"""Padded sequences, with or without missing values: the mask reaches the encoder, the
likelihood, the loss and the scores, so whatever sits in the padded steps changes no number about
the real ones; a missing value is read by the encoder (it holds an interpolation) but never by the
likelihood."""

import pytest
import torch

from semivae.data import ArrayData
from semivae.eval.scores import available_scores, compute_scores
from semivae.models import build_model
from semivae.nn import ArchConfig
from tests.conftest import model_config, spec

T, C = 5, 3
LENGTHS = torch.tensor([5, 3, 1, 4, 2, 5])


def _data(padding: float, gaps: bool = False) -> ArrayData:
    """Six series; ``padding`` fills the padded steps; with ``gaps``, a third of the values are
    missing, and every channel of step 1 of series 0 (a whole step missing inside a series)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(LENGTHS), T, C, generator=g)
    pad = torch.arange(T)[None, :] >= LENGTHS[:, None]  # (N, T) True on padded steps
    observed = None
    if gaps:
        observed = (torch.rand(len(LENGTHS), T, C, generator=g) > 0.33) & ~pad[..., None]  # (N, T, C)
        observed[:, 0, 0] = True  # every series keeps a value
        observed[0, 1] = False
    x = x.masked_fill(pad[..., None], padding)
    return ArrayData(x, torch.tensor([0, 1, -1, 2, -1, 1]), lengths=LENGTHS, observed=observed)


@pytest.mark.parametrize("name,kw", [("semivae", {"mode": "semi"}), ("semivae", {"mode": "unsupervised"}),
                                     ("m2", {}), ("pspec", {"structure": "y|z,x", "samples": 3}),
                                     ("m1m2", {"m2_hidden": [8], "m2_latent_dim": 2}), ("adgm", {"aux_dim": 3}),
                                     ("sdgm", {"aux_dim": 3})])
@pytest.mark.parametrize("arch,gaps", [("dense", False), ("dense", True), ("recurrent", True)])
def test_padding_and_missing_values_change_no_loss_score_or_prediction(name, kw, arch, gaps):
    torch.manual_seed(0)
    arch = ArchConfig(arch=arch, hidden=[16, 8], rnn_hidden=8, latent_dim=2, dropout=0.0)
    model = build_model(spec((T, C), 3, "gaussian", kind="sequence"), arch, model_config(name, **kw)).eval()
    results = []
    for padding in (0.0, 1e3):
        data = _data(padding, gaps)
        idx = torch.arange(len(data))
        batch = data.batch(idx)
        steps = torch.arange(T)[None, :] < LENGTHS[:, None]
        assert torch.equal(batch.mask, data.observed if gaps else steps)
        out = {}
        with torch.no_grad():
            torch.manual_seed(1)
            loss = model(batch)
            out["total"], out["terms"] = loss.total, loss.terms
            torch.manual_seed(1)
            out["elbo"] = model.elbo_terms(batch.x, batch.mask)
            torch.manual_seed(1)
            out["log_w"] = model.log_weights(batch.x, 4, batch.mask)
            out["proba"] = model.predict_proba(batch.x, batch.mask) if model.heads else {}
            torch.manual_seed(1)
            out["scores"] = compute_scores(model, data, [n for n in available_scores(model) if n != "combined"],
                                           samples=2, iwae_k=3)
        results.append(out)
    a, b = results
    torch.testing.assert_close(a["total"], b["total"])
    for k in a["terms"]:
        torch.testing.assert_close(a["terms"][k], b["terms"][k])
    for u, v in zip(a["elbo"], b["elbo"]):
        torch.testing.assert_close(u, v)
    torch.testing.assert_close(a["log_w"], b["log_w"])
    for k in a["proba"]:
        torch.testing.assert_close(a["proba"][k], b["proba"][k])
    for k in a["scores"]:
        torch.testing.assert_close(torch.tensor(a["scores"][k]), torch.tensor(b["scores"][k]))


def test_the_likelihood_sums_valid_steps_only():
    from semivae.objectives import make_likelihood

    lik = make_likelihood("gaussian-fixed", (T, C))
    x, mean = torch.randn(2, T, C), torch.zeros(2, T, C)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    full = lik.log_prob(x, mean)
    part = lik.log_prob(x, mean, mask)
    torch.testing.assert_close(part[1], full[1])
    torch.testing.assert_close(part[0], torch.distributions.Normal(0.0, 1.0).log_prob(x[0, :2]).sum())
    observed = mask[..., None] & (torch.rand(2, T, C) > 0.5)  # (B, T, C): missing values too
    other = torch.where(observed, x, torch.randn(2, T, C) * 100)
    torch.testing.assert_close(lik.log_prob(other, mean, observed), lik.log_prob(x, mean, observed))
    torch.testing.assert_close(lik.log_prob(x, mean, observed),
                               (torch.distributions.Normal(0.0, 1.0).log_prob(x) * observed).sum((1, 2)))


def test_the_steps_of_a_mask_of_values_run_to_the_last_observed_one():
    from semivae.masks import steps

    observed = torch.zeros(2, 5, 2, dtype=torch.bool)
    observed[0, [0, 3], 1] = True  # steps 1 and 2 wholly missing inside the series: still its steps
    observed[1, :2] = True
    assert steps(observed).tolist() == [[True] * 4 + [False], [True, True, False, False, False]]
    step_mask = torch.tensor([[True, False]])
    assert steps(step_mask) is step_mask and steps(None) is None
