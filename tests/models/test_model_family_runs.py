"""The model family end to end through runs: stages, saving, predicting, targets, NLL."""

import csv
import io
import json

import numpy as np
import pytest

from semivae.cli import main
from semivae.config import resolve
from semivae.eval import evaluate, predict, predict_all
from semivae.runs import load_run
from semivae.train import train


def test_model_defaults_apply_and_flags_win():
    cfg = resolve(None, {"model": {"model": "m2"}})
    assert cfg.arch.hidden == [500] and cfg.arch.latent_dim == 50 and cfg.model.beta == 1.0
    cfg = resolve(None, {"model": {"model": "m2"}, "arch": {"latent_dim": 8}})
    assert cfg.arch.latent_dim == 8 and cfg.arch.hidden == [500]
    assert resolve(None, {}).arch.hidden == [512, 256]  # the foundation's model keeps its defaults


def test_m1m2_trains_in_two_stages_and_reloads_as_one_model(tiny, tmp_path):
    path = train(tiny(model="m1m2", m1_epochs=2, epochs=2, m2_hidden=[16], m2_latent_dim=4), out=tmp_path / "r",
                 progress=False)
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["m1", "m1", "m2", "m2"]
    assert "val_accuracy" not in rows[0]  # M1 is a plain VAE
    res = evaluate(path, iwae_k=8, iwae_points=20)
    assert 0 <= res["accuracy"] <= 1 and np.isfinite(res["nll"]) and res["iwae_k"] == 8
    assert res["nll"] > 0  # a negative log-likelihood of 8x8 images in nats
    np.savez(tmp_path / "new.npz", x=np.random.default_rng(0).integers(0, 17, (5, 8, 8)).astype(np.uint8))  # digits units
    a, classes = predict(path, tmp_path / "new.npz")
    b, _ = predict(load_run(path).path, tmp_path / "new.npz")
    assert a.shape == (5, 10) and np.array_equal(a, b)


@pytest.fixture
def regression_npz(tmp_path):
    """Digits-like data whose continuous target is the mean ink (known from x)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * 255 / 16).astype(np.uint8)
    ink = d.images.mean((1, 2)) * 10 + 3  # a target in its own units
    t = np.where(np.arange(len(x)) % 2 == 0, ink, np.nan)[:, None]  # half the targets unobserved
    path = tmp_path / "ink.npz"
    np.savez(path, x=x, y=d.target, t=t, target_names=np.array(["ink"]))
    return path, ink


def test_pspec_learns_and_predicts_a_continuous_target(tiny, tmp_path, regression_npz):
    path, ink = regression_npz
    cfg = tiny(model="pspec", dataset=str(path), labels_per_class=30, epochs=30, samples=2, hidden=[64],
               latent_dim=4, alpha=20.0)
    run = train(cfg, out=tmp_path / "r", progress=False)
    info = json.loads((run / "data.json").read_text())
    assert info["target_names"] == ["ink"]
    res = evaluate(run)
    assert res["target_r2"][0] > 0.5, res["target_r2"]  # mean ink is easy to read off the image
    np.savez(tmp_path / "new.npz", x=np.load(path)["x"][:50])
    rows = list(csv.DictReader(io.StringIO(predict_all(run, tmp_path / "new.npz"))))
    pred = np.array([float(r["ink"]) for r in rows])
    assert np.corrcoef(pred, ink[:50])[0, 1] > 0.7  # in the data's units, not standardised ones


def test_evaluate_reports_the_iwae_nll(tiny, tmp_path, capsys):
    run = train(tiny(mode="unsupervised"), out=tmp_path / "r", progress=False)
    info = json.loads((run / "data.json").read_text())  # the digits have labels; a VAE trains on none
    assert info["n_labelled"] == 0 and info["n_labelled_per_head"] == {"label": 0}
    assert main(["evaluate", str(run), "--iwae-k", "16", "--iwae-points", "30"]) == 0
    assert "IWAE, k=16, 30 points" in capsys.readouterr().out
    res = evaluate(run, iwae_k=64)
    assert 0 < res["nll"] <= -res["elbo"] + 0.5  # the k-sample bound is tighter than the ELBO
    assert main(["evaluate", str(run), "--iwae-k", "-1"]) == 2


@pytest.mark.parametrize("flags,needle", [(["--model", "m2", "--structure", "y|z,x"], "pspec"),
                                          (["--model", "m2", "--mode", "supervised"], "--mode"),
                                          (["--model", "pspec", "--discrete", "sample"], "--discrete"),
                                          (["--kl-schedule", "cyclic"], "--kl-schedule"),
                                          (["--model", "adgm", "--aux-dim", "0"], "--aux-dim")])
def test_bad_model_options_are_one_line_errors(tmp_path, capsys, flags, needle):
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err
    assert not (tmp_path / "r").exists()
