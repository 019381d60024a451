"""The recurrent family: shapes per step and per sequence, and padding a batch with extra
steps changes no loss, score or prediction of the real ones."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from semivae.data import ArrayData, Batch
from semivae.eval.scores import available_scores, compute_scores
from semivae.models import build_model
from semivae.nn import ArchConfig, make_decoder, make_encoder
from tests.conftest import model_config, spec

T, C = 10, 3
LENGTHS = torch.tensor([10, 4, 7, 1, 9])


def _arch(**kw):
    return ArchConfig(arch="recurrent", hidden=[8, 6], rnn_hidden=5, latent_dim=2, dropout=0.0, **kw)


@pytest.mark.parametrize("latent,cell,bidirectional", [("pooled", "lstm", True), ("per-step", "gru", False)])
def test_encoder_and_decoder_shapes(latent, cell, bidirectional):
    arch = _arch(sequence_latent=latent, cell=cell, bidirectional=bidirectional)
    enc = make_encoder(arch, (T, C))
    h = enc(torch.randn(4, T, C), torch.ones(4, T, dtype=torch.bool))
    assert h.shape == ((4, T, 6) if latent == "per-step" else (4, 6)) and enc.out_features == 6
    dec = make_decoder(arch, 7, (T, C), n_params=2)
    assert dec(torch.randn(4, 7)).shape == (4, 2, T, C)  # [mean, variance] per step and channel
    assert dec(torch.randn(4, T + 5, 7)).shape == (4, 2, T + 5, C)  # a per-step code of any length
    assert dec(torch.randn(4, 7), steps=3).shape == (4, 2, 3, C)


def _batch(extra: int) -> Batch:
    """The same five series, padded to T + extra steps with junk after their lengths."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(LENGTHS), T, C, generator=g)
    x = torch.cat([x, 100 * torch.randn(len(LENGTHS), extra, C, generator=g)], 1)
    mask = torch.arange(T + extra)[None, :] < LENGTHS[:, None]
    x = torch.where(mask[..., None], x, 100.0)
    return Batch(x, torch.tensor([[0], [1], [-1], [2], [-1]]), None, mask)


@pytest.mark.parametrize("name,kw,arch", [
    ("semivae", {"mode": "semi"}, dict(sequence_latent="pooled", bidirectional=True)),
    ("semivae", {"mode": "semi"}, dict(sequence_latent="per-step")),
    ("semivae", {"mode": "supervised"}, dict(sequence_latent="per-step", cell="gru")),
    ("m2", {}, dict(bidirectional=True)),
    ("pspec", {"structure": "y|z,x", "samples": 2}, {}),
    ("m1m2", {"m2_hidden": [4], "m2_latent_dim": 2}, {}),
    ("adgm", {"aux_dim": 2}, {}),
    ("sdgm", {"aux_dim": 2}, {}),
])
@pytest.mark.parametrize("likelihood", ["gaussian-hetero", "gaussian"])
def test_extra_padding_changes_nothing(name, kw, arch, likelihood, monkeypatch):
    torch.manual_seed(0)
    model = build_model(spec((T, C), 3, likelihood, kind="sequence"), _arch(**arch), model_config(name, **kw)).eval()
    # samples at their means, so that runs over batches of different shapes draw the same
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
    monkeypatch.setattr(torch, "randn", lambda *s, **k: torch.zeros(*s, **{a: v for a, v in k.items() if a != "generator"}))
    results = []
    for extra in (0, 6):
        b = _batch(extra)
        torch.manual_seed(1)  # the classes y drawn from q(y|x) for the IWAE bound
        with torch.no_grad():
            out = model(b)
            res = {"total": out.total, **out.terms}
            if model.heads:
                res.update(model.predict_proba(b.x, b.mask))
            if model.has_decoder:
                res["elbo"] = torch.stack(model.elbo_terms(b.x, b.mask))
                res["log_w"] = model.log_weights(b.x, 3, b.mask)
                rec = model.reconstruct(b.x, b.mask)
                res["rec"] = torch.cat([rec[i, :n] for i, n in enumerate(LENGTHS)])  # the real steps
            data = ArrayData(b.x, b.labels, lengths=LENGTHS)
            scores = compute_scores(model, data, [n for n in available_scores(model) if n != "combined"], 2, 3)
            res.update({k: torch.from_numpy(v) for k, v in scores.items()})
        results.append(res)
    for k in results[0]:
        torch.testing.assert_close(results[0][k], results[1][k], rtol=1e-4, atol=1e-4, msg=k)


@pytest.mark.parametrize("cell,bidirectional", [("lstm", True), ("gru", True), ("lstm", False)])
def test_the_recurrent_layer_gives_packed_sequences_values_and_gradients_on_valid_steps(cell, bidirectional):
    """The encoder runs unpacked (each direction once, the backward one over each series reversed
    within its length); PyTorch's packed sequences are the reference."""
    enc = make_encoder(_arch(cell=cell, bidirectional=bidirectional), (T, C))
    h = torch.randn(len(LENGTHS), T, 8)
    valid = (torch.arange(T)[None, :] < LENGTHS[:, None])[..., None]  # (B, T, 1)
    packed = pack_padded_sequence(h, LENGTHS, batch_first=True, enforce_sorted=False)
    reference = pad_packed_sequence(enc.rnn(packed)[0], batch_first=True, total_length=T)[0]
    unpacked = enc.unpacked(h, LENGTHS)
    torch.testing.assert_close(unpacked * valid, reference * valid)
    weights = torch.randn_like(reference) * valid  # a loss of the valid steps only
    grads = [torch.autograd.grad((out * weights).sum(), list(enc.rnn.parameters())) for out in (reference, unpacked)]
    for g_ref, g in zip(*grads):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


def test_per_step_latents_need_semivae():
    from semivae.errors import UserError

    with pytest.raises(UserError, match="pooled"):
        build_model(spec((T, C), 3, "gaussian-hetero", kind="sequence"), _arch(sequence_latent="per-step"),
                    model_config("m2"))
