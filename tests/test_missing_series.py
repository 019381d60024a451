"""Series with missing values (NaN on valid steps), as a user runs them: train, evaluate, predict
(with a ``missing`` count), anomaly and feedback, pack, the report; and the refusals (impute too)."""

import csv
import io
import json
from contextlib import redirect_stderr

import numpy as np
import pytest
import torch

from semivae.cli import main
from semivae.data import load_dataset
from tests.test_sequence_runs import FAST, _series, anomaly_run


def _gappy(path, share=0.2, seed=0, **kw):
    """Series whose valid steps miss ``share`` of their values: (x with NaN, lengths, y)."""
    x, lengths, y = _series(path, seed=seed, **kw)
    rng = np.random.default_rng(seed + 100)
    valid = np.arange(x.shape[1])[None, :, None] < lengths[:, None, None]
    gone = (rng.random(x.shape) < share) & valid
    gone[:, 0, 0] = False  # every series keeps a value
    gappy = np.where(gone, np.nan, x).astype(np.float32)
    np.savez(path, x=gappy, lengths=lengths, y=y)
    return gappy, lengths, y


@pytest.fixture(scope="module")
def gappy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gaps")
    _gappy(root / "s.npz", n=120)
    out = root / "run"
    with redirect_stderr(io.StringIO()) as err:
        assert main(["train", "--dataset", str(root / "s.npz"), "--labels-per-class", "10", "--epochs", "5",
                     "--out", str(out), "--report", *FAST]) == 0
    assert "training values (steps x channels)" in err.getvalue()  # the note says how much is missing
    return root, out


def test_a_run_on_series_with_gaps_trains_predicts_and_reports(gappy_run, tmp_path, capsys):
    root, run = gappy_run
    b = load_dataset(str(root / "s.npz"))
    gaps = b.train.gaps()
    assert b.train.observed.shape == b.train.x.shape and 0.15 < gaps.float().sum() / b.train.observed_mask().sum() < 0.3
    assert not (b.train.observed & ~b.train.valid_steps()[..., None]).any()  # padding is not observed
    x = load_dataset(str(root / "s.npz")).train.x
    assert torch.isfinite(x).all() and not (x[gaps] == b.train.shift.expand_as(x)[gaps]).all()  # interpolated
    assert np.isnan(b.train.stored()[gaps.numpy()]).all() and not np.isnan(b.train.stored()[~gaps.numpy()]).any()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["accuracy"] <= 1 and np.isfinite(res["elbo"])
    new, _, _ = _gappy(tmp_path / "new.npz", n=6, seed=5)
    assert main(["predict", str(run), str(tmp_path / "new.npz"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "p.csv").read_text())))
    assert [int(r["missing"]) for r in rows] == np.isnan(new).sum((1, 2)).tolist()
    assert {"reconstructions.png", "step_error.png"} <= {p.name for p in (run / "figures").iterdir()}


def test_impute_refuses_series_and_says_what_fills_them_better(gappy_run, tmp_path, capsys):
    root, run = gappy_run
    capsys.readouterr()
    assert main(["impute", str(run), str(root / "s.npz"), "--out", str(tmp_path / "f.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "linear interpolation" in err and "\n" not in err and not (tmp_path / "f.npz").exists()


def test_anomaly_feedback_and_pack_keep_the_gaps(tmp_path, capsys):
    _gappy(tmp_path / "s.npz", n=120)
    out = tmp_path / "a"
    res = anomaly_run(tmp_path / "s.npz", out)
    assert all(np.isfinite(v["auroc"]) for v in res["scores"].values())
    new, lengths, _ = _gappy(tmp_path / "new.npz", n=5, seed=4)
    assert main(["feedback", str(out), "--false-positives", str(tmp_path / "new.npz"), "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "fb")]) == 0
    with np.load(tmp_path / "fb" / "feedback.npz") as f:  # the marked series as given, with their lengths
        assert f["false_positives_lengths"].tolist() == lengths.tolist()
        assert np.array_equal(np.isnan(f["false_positives"]), np.isnan(new))
    assert main(["data", "pack", str(tmp_path / "s.npz"), str(tmp_path / "packed"), "--quiet"]) == 0
    mem, disk = load_dataset(str(tmp_path / "s.npz")), load_dataset(str(tmp_path / "packed"))
    idx = torch.arange(len(mem.train))
    assert torch.equal(disk.train.mask(idx), mem.train.mask(idx))


@pytest.mark.parametrize("channel_gone,needle", [
    (True, "channel 1 of"),  # a channel never recorded in training
    (False, "has no value on its"),  # a series with nothing in it
])
def test_gaps_that_leave_nothing_to_learn_from_are_one_line_errors(tmp_path, capsys, channel_gone, needle):
    x, lengths, y = _gappy(tmp_path / "s.npz", n=30)
    if channel_gone:
        x[:, :, 1] = np.nan
    else:
        x[3] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, lengths=lengths, y=y)
    capsys.readouterr()
    assert main(["train", "--dataset", str(tmp_path / "bad.npz"), "--epochs", "1", "--out", str(tmp_path / "r"),
                 *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_python_arrays_padded_with_nan_train_as_series(tmp_path):
    """A 3-D float x holding NaN cannot be images: semivae.train reads it as series ending where
    their padding begins, as the estimator does, instead of refusing NaN pixels."""
    import semivae
    from semivae.runs import load_run

    x, lengths, y = _series(tmp_path / "s.npz", n=60)
    x = np.where(np.arange(x.shape[1])[None, :, None] < lengths[:, None, None], x, np.nan).astype(np.float32)
    run = load_run(semivae.train(x=x, y=y, epochs=1, hidden=[8], rnn_hidden=8, latent_dim=2, threads=1,
                                 out=tmp_path / "r", progress=False))
    assert run.config.arch.arch == "recurrent"
    both = run.dataset()
    got = sorted(zip(both.train.ids.tolist() + both.test.ids.tolist(),
                     both.train.lengths.tolist() + both.test.lengths.tolist()), key=lambda t: int(t[0]))
    assert [n for _, n in got] == lengths.tolist()  # each series' own length, read from its padding
