"""Declared heads: one fed to the decoder, one a loss only, labels missing per head."""

import csv
import io
import json

import numpy as np
import pytest
import torch

import semivae
from semivae.cli import main
from semivae.data import Batch
from semivae.errors import UserError
from semivae.eval import evaluate, predict, predict_all
from semivae.models import ModelSpec, build_model, declare_heads
from semivae.nn import ArchConfig
from tests.conftest import model_config

COLUMNS = [("shape", ("a", "b", "c")), ("size", ("s", "l"))]
ARCH = ArchConfig(hidden=[16], latent_dim=2, dropout=0.0)


def _model(decoder_heads=("shape",), **kw):
    """The spec declares which heads feed the decoder; runs build it from --decoder-heads the
    same way (default with several label columns: none)."""
    torch.manual_seed(0)
    spec = ModelSpec((6,), declare_heads(COLUMNS, decoder_heads), "gaussian", "vector")
    return build_model(spec, ARCH, model_config(**kw))


def _batch():
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([[0, 1], [1, -1], [-1, 0], [2, 1], [-1, -1], [1, 0]])  # each head missing on its own
    return Batch(torch.randn(6, 6, generator=g), labels)


def test_only_the_decoder_head_feeds_the_decoder():
    m = _model()
    assert m.decoder.net[0].in_features == 2 + 3  # z and the shape probabilities, not size
    assert set(m.predict_proba(torch.randn(4, 6))) == {"shape", "size"}
    assert _model(decoder_heads=["all"]).decoder.net[0].in_features == 2 + 3 + 2
    assert _model(decoder_heads=["none"]).decoder.net[0].in_features == 2
    assert _model(decoder_heads=None).decoder.net[0].in_features == 2  # several columns: losses on z only


def test_each_head_is_its_own_cross_entropy_on_its_own_labelled_points():
    m = _model(alpha=3.0, head_alpha={"size": 7.0})
    b = _batch()
    torch.manual_seed(1)
    out = m(b)
    assert {"recon", "kl", "ce/shape", "ce/size"} <= set(out.terms)
    assert out.counts["ce/shape"] == 4 and out.counts["ce/size"] == 4
    logits = m.inference(b.x).logits
    for f, name in enumerate(("shape", "size")):
        known = b.labels[:, f] >= 0
        expected = torch.nn.functional.cross_entropy(logits[name][known], b.labels[known, f])
        torch.testing.assert_close(out.terms[f"ce/{name}"], expected)
    torch.manual_seed(1)
    none = m(Batch(b.x, torch.full_like(b.labels, -1)))
    torch.testing.assert_close(out.total - none.total, 3.0 * out.terms["ce/shape"] + 7.0 * out.terms["ce/size"],
                               rtol=1e-4, atol=1e-4)


def test_a_loss_only_head_sends_no_gradient_to_the_decoder():
    grads = []
    for weight in (0.0, 100.0):
        m = _model(head_alpha={"size": weight})
        torch.manual_seed(1)
        m(_batch()).total.backward()
        grads.append((m.decoder.out.weight.grad.clone(), m.pi["size"].weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])  # the decoder does not see the size head
    assert not torch.allclose(grads[0][1], grads[1][1])  # the size head itself learns


@pytest.fixture(scope="module")
def two_head_data(tmp_path_factory):
    """Vectors whose first 3 features show the shape and the next 2 the size; each label
    column is missing on about half of the points, independently."""
    rng = np.random.default_rng(0)
    n = 600
    shape, size = rng.integers(0, 3, n), rng.integers(0, 2, n)
    x = rng.normal(size=(n, 8)).astype(np.float32) * 0.3
    x[np.arange(n), shape] += 2.0
    x[np.arange(n), 3 + size] += 2.0
    y = np.stack([np.where(rng.random(n) < 0.5, shape, -1), np.where(rng.random(n) < 0.5, size, -1)], 1)
    path = tmp_path_factory.mktemp("heads") / "two.npz"
    np.savez(path, x=x, y=y, x_test=x[:100], y_test=np.stack([shape[:100], size[:100]], 1),
             factor_names=np.array(["shape", "size"]), classes_shape=np.array(["a", "b", "c"]))
    return path


def test_a_two_head_model_trains_evaluates_and_predicts_per_head(two_head_data, tmp_path):
    run = semivae.train(dataset=str(two_head_data), labels_per_class=20, val_labels=6, epochs=25, hidden=[32],
                        latent_dim=2, head_alpha={"size": 10.0}, decoder_heads=["shape"], out=tmp_path / "r",
                        progress=False, threads=1)
    info = json.loads((run / "data.json").read_text())
    assert info["heads"] == [{"name": "shape", "classes": ["a", "b", "c"]}, {"name": "size", "classes": ["0", "1"]}]
    assert info["n_labelled_per_head"] == {"shape": 60 - 6, "size": 40 - 6}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"ce/shape", "ce/size", "val_accuracy/shape", "val_log_loss/size"} <= set(rows[-1])
    res = evaluate(run)
    assert res["accuracy/shape"] > 0.9 and res["accuracy/size"] > 0.9, res
    assert np.array(res["confusion/size"]).sum() == 100
    new = tmp_path / "new.npz"
    np.savez(new, x=np.load(two_head_data)["x"][:5])
    header = next(csv.reader(io.StringIO(predict_all(run, new))))
    assert header[:2] == ["row", "id"] and header[-2:] == ["unknown_score", "unknown"]
    assert header[2:-2] == ["predicted/shape", "p_a/shape", "p_b/shape", "p_c/shape", "predicted/size", "p_0/size",
                      "p_1/size"]
    proba, classes = predict(run, new, head="size")
    assert proba.shape == (5, 2) and classes == ["0", "1"]
    with pytest.raises(UserError, match="name the one"):
        predict(run, new)
    assert main(["report", str(run)]) == 0
    figures = {p.name for p in (run / "figures").iterdir()}
    assert {"confusion-shape.png", "confusion-size.png", "generate.png"} <= figures


@pytest.mark.parametrize("flags,needle", [(["--head-alpha", "colour=3"], "--head-alpha"),
                                          (["--decoder-heads", "colour"], "--decoder-heads"),
                                          (["--model", "m2"], "one label column")])
def test_bad_head_options_are_one_line_errors(two_head_data, tmp_path, capsys, flags, needle):
    assert main(["train", "--dataset", str(two_head_data), "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--quiet", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err
    assert not (tmp_path / "r").exists()
