"""Padded sequences: the mask reaches the encoder, the likelihood, the loss and the scores, so
whatever sits in the padded steps changes no number about the real ones."""

import pytest
import torch

from semivae.data import ArrayData
from semivae.eval.scores import available_scores, compute_scores
from semivae.models import build_model
from semivae.nn import ArchConfig
from tests.conftest import model_config, spec

T, C = 5, 3
LENGTHS = torch.tensor([5, 3, 1, 4, 2, 5])


def _data(padding: float) -> ArrayData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(LENGTHS), T, C, generator=g)
    pad = torch.arange(T)[None, :] >= LENGTHS[:, None]  # (N, T) True on padded steps
    x = x.masked_fill(pad[..., None], padding)
    return ArrayData(x, torch.tensor([0, 1, -1, 2, -1, 1]), lengths=LENGTHS)


@pytest.mark.parametrize("name,kw", [("semivae", {"mode": "semi"}), ("semivae", {"mode": "unsupervised"}),
                                     ("m2", {}), ("pspec", {"structure": "y|z,x", "samples": 3}),
                                     ("m1m2", {"m2_hidden": [8], "m2_latent_dim": 2}), ("adgm", {"aux_dim": 3}),
                                     ("sdgm", {"aux_dim": 3})])
def test_padding_values_change_no_loss_score_or_prediction(name, kw):
    torch.manual_seed(0)
    arch = ArchConfig(hidden=[16], latent_dim=2, dropout=0.0)
    model = build_model(spec((T, C), 3, "gaussian", kind="sequence"), arch, model_config(name, **kw)).eval()
    results = []
    for padding in (0.0, 1e3):
        data = _data(padding)
        idx = torch.arange(len(data))
        batch = data.batch(idx)
        assert torch.equal(batch.mask, torch.arange(T)[None, :] < LENGTHS[:, None])
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
