"""Sequence runs end to end, as a user runs them: train, evaluate, predict, the report, generate,
traverse, anomaly, score, feedback, and bad input."""

import csv
import io
import json

import numpy as np
import pytest

from semivae.cli import main

FAST = ["--arch", "recurrent", "--hidden", "8,8", "--rnn-hidden", "8", "--latent-dim", "2", "--batch-size", "32",
        "--threads", "1", "--quiet"]


def _series(path, n=90, t=14, c=3, classes=3, seed=0, **extra):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, t + 1, n)
    y = rng.integers(0, classes, n)
    steps = np.arange(t)[None, :, None]
    x = np.sin(steps * (0.3 + 0.4 * y[:, None, None]) + rng.normal(size=(n, 1, c))) + 0.1 * rng.normal(size=(n, t, c))
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    np.savez(path, x=x.astype(np.float32), lengths=lengths, y=y, **extra)
    return x, lengths, y


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq")
    _series(root / "s.npz")
    out = root / "run"
    assert main(["train", "--dataset", str(root / "s.npz"), "--labels-per-class", "5", "--epochs", "3",
                 "--out", str(out), "--report", *FAST]) == 0
    return out


def test_a_sequence_run_trains_evaluates_predicts_and_reports(run, tmp_path, capsys):
    info = json.loads((run / "data.json").read_text())
    assert info["kind"] == "sequence" and info["shape"] == [14, 3] and info["likelihood"] == "gaussian-hetero"
    assert len(info["shift"]) == 3 and len(info["scale"]) == 3  # per-channel standardisation, saved
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["accuracy"] <= 1 and np.isfinite(res["elbo"])
    _series(tmp_path / "new.npz", n=7, seed=3)
    assert main(["predict", str(run), str(tmp_path / "new.npz"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text())))
    assert len(rows) == 7 and set(rows[0]) == {"row", "id", "predicted", "p_0", "p_1", "p_2", "unknown_score", "unknown"}  # one row per sequence
    figures = {p.name for p in (run / "figures").iterdir()}
    assert {"generate.png", "traverse.png", "reconstructions.png", "step_error.png", "latent.png"} <= figures
    page = (run / "report.html").read_text()
    assert "Reconstruction error per step" in page and "<h2>Generation</h2>" in page


def test_generate_and_traverse_sequences(run, tmp_path):
    assert main(["generate", str(run), "--n", "3", "--out", str(tmp_path / "g.png"), "--npz", str(tmp_path / "g.npz")]) == 0
    assert np.load(tmp_path / "g.npz")["x"].shape == (3, 3, 14, 3)  # (classes, n, T, C)
    from semivae.runs import load_run
    from semivae.runs.run import preprocessing
    from semivae.viz import generation_grid

    loaded = load_run(run)
    shift, scale = preprocessing(loaded.data_info)  # the samples in the data's own units, not standardised
    units = (generation_grid(loaded.model, 3, [0, 1, 2], 0)[0] / scale + shift).numpy()
    assert np.allclose(np.load(tmp_path / "g.npz")["x"], units, atol=1e-5) and not np.allclose(scale, 1.0)
    assert main(["traverse", str(run), "--steps", "3", "--out", str(tmp_path / "t.png")]) == 0


def anomaly_run(data, out) -> dict:
    """A short `semivae anomaly` run on series (class 2 held out) -> its anomaly.json."""
    assert main(["anomaly", "--dataset", str(data), "--anomaly-class", "2", "--label-fraction", "0.2",
                 "--epochs", "3", "--score-samples", "2", "--score-iwae-k", "4", "--out", str(out), *FAST]) == 0
    return json.loads((out / "anomaly.json").read_text())


def test_anomaly_score_and_feedback_on_sequences(tmp_path, capsys):
    _series(tmp_path / "s.npz", n=120)
    out = tmp_path / "a"
    res = anomaly_run(tmp_path / "s.npz", out)
    assert "complexity" not in res["scores"] and "entropy" in res["scores"]  # no compressor for series
    _series(tmp_path / "new.npz", n=5, seed=4)
    capsys.readouterr()
    assert main(["score", str(out), str(tmp_path / "new.npz")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert main(["feedback", str(out), "--false-positives", str(tmp_path / "new.npz"), "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "fb")]) == 0
    assert main(["report", str(out)]) == 0 and (out / "figures" / "step_error.png").is_file()


@pytest.mark.parametrize("make,needle", [
    (lambda x, lengths: (np.where(np.isfinite(x), x, 0) * np.nan, lengths), "has no value on its"),
    (lambda x, lengths: (np.where(np.arange(x.shape[1])[None, :, None] == 2, np.inf, x), lengths), "infinite value"),
    (lambda x, lengths: (x, np.where(np.arange(len(lengths)) == 3, 0, lengths)), "length 0"),
])
def test_bad_series_are_one_line_errors_and_write_nothing(tmp_path, capsys, make, needle):
    x, lengths, y = _series(tmp_path / "good.npz", n=30)
    x, lengths = make(x, lengths)
    np.savez(tmp_path / "bad.npz", x=x, lengths=lengths, y=y)
    assert main(["train", "--dataset", str(tmp_path / "bad.npz"), "--epochs", "1", "--out", str(tmp_path / "r"),
                 *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_predicting_with_other_channels_is_refused(run, tmp_path, capsys):
    _series(tmp_path / "four.npz", n=4, c=4)
    assert main(["predict", str(run), str(tmp_path / "four.npz"), "--out", str(tmp_path / "p.csv")]) == 2
    assert "4 channels but the model was trained on 3" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_the_paper_preset_keeps_a_latent_and_pi_per_step(tmp_path):
    from semivae.runs import load_run

    _series(tmp_path / "s.npz", n=40)
    out = tmp_path / "paper"
    assert main(["train", "--dataset", str(tmp_path / "s.npz"), "--arch", "recurrent", "--preset", "paper",
                 "--labels-per-class", "3", "--epochs", "2", "--threads", "1", "--quiet", "--report",
                 "--out", str(out)]) == 0
    run = load_run(out)
    assert run.config.arch.sequence_latent == "per-step" and run.config.train.optimizer == "rmsprop"
    assert run.model.prior_shape == (14, 2)  # Table 15: a z of 2 at every step
    assert {"generate.png", "traverse.png", "latent.png", "step_error.png"} <= {p.name for p in (out / "figures").iterdir()}
