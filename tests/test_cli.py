"""The command line end to end on digits, as a user runs it."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import semivae
from semivae.cli import main
from semivae.data.tables import read_csv

FAST = ["--hidden", "64", "--latent-dim", "4", "--epochs", "2", "--batch-size", "64", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--labels", "50", "--out", str(out), *FAST]) == 0
    return out


def test_train_evaluate_predict(run_dir, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "test" and res["n"] == 360 and 0.0 <= res["accuracy"] <= 1.0
    assert np.array(res["confusion"]).sum() == 360 and res["elbo"] < 0
    assert main(["evaluate", str(run_dir), "--split", "val"]) == 0
    table = capsys.readouterr().out
    assert "accuracy" in table and "confusion matrix" in table

    from sklearn.datasets import load_digits

    np.savez(tmp_path / "new.npz", x=load_digits().images[:7].astype(np.float32) / 16, ids=[f"n{i}" for i in range(7)])
    out = tmp_path / "new" / "folder" / "pred.csv"  # folders made as train --out makes them
    assert main(["predict", str(run_dir), str(tmp_path / "new.npz"), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["id"] for r in rows] == [f"n{i}" for i in range(7)]  # the .npz's own ids
    assert len(rows) == 7 and rows[0].keys() == {"row", "id", "predicted", *(f"p_{k}" for k in range(10)),
                                               "unknown_score", "unknown"}
    assert abs(sum(float(rows[0][f"p_{k}"]) for k in range(10)) - 1) < 1e-4


def test_config_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nlabels_per_class = 3\n[arch]\nhidden = [32]\nlatent_dim = 2\n[train]\nepochs = 1\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--epochs", "2", "--out", str(out), "--quiet", "--threads", "1"]) == 0
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["data"]["labels_per_class"] == 3 and saved["arch"]["hidden"] == [32]
    assert saved["train"]["epochs"] == 2  # the flag beats the file
    # the saved, resolved config is itself a valid config file
    again = tmp_path / "again"
    assert main(["train", "--config", str(out / "config.yaml"), "--out", str(again), "--quiet"]) == 0
    assert (again / "split.json").read_text() == (out / "split.json").read_text()


@pytest.mark.parametrize("argv,needle", [
    (["train", "--dataset", "nope", "--quiet"], "unknown data set"),
    (["train", "--labels", "lots"], "not a count"),
    (["train", "--labels", "10", "--labels-per-class", "3"], "one label budget"),
    (["train", "--labels-per-class", "500"], "lower the budget"),
    (["train", "--config", "missing.toml"], "not found"),
    (["evaluate", "no-such-run"], "is not a run directory"),
])
def test_bad_input_is_one_line_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_predict_rejects_wrong_shape(run_dir, tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 5, 5), np.float32))
    assert main(["predict", str(run_dir), str(tmp_path / "bad.npz")]) == 2
    assert "shape" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "semivae", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--labels-per-class", "--label-fraction", "--mode", "--arch", "--preset", "--alpha", "--beta"):
        assert flag in out.stdout


def test_help_names_what_the_default_preset_sets_for_each_arch():
    from semivae.cli.parser import _default_text
    from semivae.config import PRESETS

    conv = PRESETS["default"]["conv"]
    channels = ",".join(map(str, conv["arch"]["channels"]))
    assert _default_text("arch", "channels") == f" (default: 16,32; --arch conv: {channels})"
    assert _default_text("train", "ema") == f" (default: 0.0; --arch conv: {conv['train']['ema']})"
    assert _default_text("arch", "rnn_hidden") == " (default: 64)"  # the recurrent preset's 64 is no news


def test_output_piped_into_a_reader_that_stops_is_no_traceback(run_dir):
    # `semivae evaluate RUN | head -1`: here the reader closes the pipe before anything is written
    p = subprocess.Popen([sys.executable, "-m", "semivae", "evaluate", str(run_dir)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 0 and "Traceback" not in err, err


def test_version_without_installed_metadata(monkeypatch, capsys):
    """--version reads semivae.__version__ (which the package metadata is built from), so the
    command also runs from a source checkout on PYTHONPATH, where no metadata is installed."""
    import importlib
    import importlib.metadata

    import semivae
    from semivae.cli import parser

    assert importlib.metadata.version("semivae") == semivae.__version__

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "version", missing)
    try:
        with pytest.raises(SystemExit) as e:
            importlib.reload(parser).build_parser().parse_args(["--version"])
        assert e.value.code == 0
        assert capsys.readouterr().out.strip() == f"semivae {semivae.__version__}"
    finally:
        monkeypatch.undo()
        importlib.reload(parser)


def test_tabular_csv_end_to_end(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + np.where(y[:, None] == 1, 3.0, -3.0) * [1.0, 10.0, 0.1]
    rows = ["f1,f2,f3,label"] + [f"{a:.4f},{b:.4f},{c:.4f},{'' if i % 3 else ['neg', 'pos'][t]}"
                                 for i, ((a, b, c), t) in enumerate(zip(x, y))]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(tmp_path / "d.csv"), "--hidden", "16", "--latent-dim", "2",
                 "--epochs", "15", "--out", str(out), "--quiet", "--threads", "1"]) == 0
    info = json.loads((out / "data.json").read_text())
    assert info["kind"] == "vector" and info["likelihood"] == "gaussian"
    assert info["heads"] == [{"name": "label", "classes": ["neg", "pos"]}]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.9  # two well separated blobs
    (tmp_path / "t.csv").write_text("\n".join(rows[:1] + [r for r in rows[1:61] if not r.endswith(",")]) + "\n")
    own = str(tmp_path / "own-test")
    assert main(["train", "--dataset", str(tmp_path / "d.csv"), "--test-data", str(tmp_path / "t.csv"), "--hidden",
                 "16", "--latent-dim", "2", "--epochs", "2", "--out", own, "--quiet", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", own, "--json"]) == 0
    test_split = json.loads(capsys.readouterr().out)
    assert test_split["n"] == 20  # the file's labelled rows; none of d.csv's held out
    assert main(["evaluate", own, "--data", str(tmp_path / "t.csv"), "--json"]) == 0
    given = json.loads(capsys.readouterr().out)  # the same file scored after training: the same figures
    assert given["split"] == "given" and given["accuracy"] == test_split["accuracy"]
    reads = []
    monkeypatch.setattr("semivae.data.inputs.read_csv", lambda *a, **k: reads.append(a[0]) or read_csv(*a, **k))
    assert semivae.evaluate(own, x=tmp_path / "t.csv")["log_loss"] == given["log_loss"]  # the file's own labels
    assert len(reads) == 1  # read once for inputs and labels
    (tmp_path / "renamed.csv").write_text((tmp_path / "t.csv").read_text().replace(",label\n", ",truth\n", 1))
    assert main(["evaluate", own, "--data", str(tmp_path / "renamed.csv"), "--label-column", "truth", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == given["accuracy"]  # its label column named
    (tmp_path / "new.csv").write_text("f3,f2,f1\n0.3,30,3\n-0.3,-30,-3\n")  # columns matched by name
    assert main(["predict", str(out), str(tmp_path / "new.csv")]) == 0
    pred = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["predicted"] for r in pred] == ["pos", "neg"]


def test_first_labels_for_a_folder_of_unlabelled_images(tmp_path, capsys):
    """Before any label: a VAE on a folder of loose images names the files to label first; once
    sorted into class folders, they train a classifier that predicts on one image file."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    (tmp_path / "pics").mkdir()
    for i in range(120):
        Image.fromarray((d.images[i] * 15).astype(np.uint8)).save(tmp_path / "pics" / f"img{i:03d}.png")
    assert main(["train", "--dataset", str(tmp_path / "pics"), "--mode", "unsupervised", *FAST,
                 "--out", str(tmp_path / "vae")]) == 0
    assert main(["suggest", str(tmp_path / "vae"), "--n", "10", "--out", str(tmp_path / "first.csv")]) == 0
    picked = [r["id"] for r in csv.DictReader(io.StringIO((tmp_path / "first.csv").read_text()))]
    assert len(set(picked)) == 10 and all((tmp_path / "pics" / f).is_file() for f in picked)
    for f in ("img000.png", "img001.png", "img010.png", "img011.png"):  # labelled: moved into class folders
        (tmp_path / "pics" / f"c{d.target[int(f[3:6])]}").mkdir(exist_ok=True)
        (tmp_path / "pics" / f).rename(tmp_path / "pics" / f"c{d.target[int(f[3:6])]}" / f)
    (tmp_path / "pics" / "unlabelled").mkdir()
    for f in (tmp_path / "pics").glob("*.png"):
        f.rename(tmp_path / "pics" / "unlabelled" / f.name)
    assert main(["train", "--dataset", str(tmp_path / "pics"), "--val-fraction", "0", *FAST,
                 "--out", str(tmp_path / "semi")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "semi"), str(tmp_path / "pics" / "unlabelled" / "img005.png")]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["id"] == "img005.png" and row["predicted"] in ("c0", "c1")
    assert main(["evaluate", str(tmp_path / "semi"), "--data", str(tmp_path / "pics"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)  # scored on the 4 labelled files, the sub-folders naming their classes
    assert res["n"] == 120 and res["confusion"] and np.array(res["confusion"]).sum() == 4
