"""Every bad input a clean error: exit 2, one line naming the problem and the fix, no
traceback, and nothing written (no run directory, no half of a file)."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semivae.cli import main

FAST = ["--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "run"
    assert main(["train", *FAST, "--out", str(out)]) == 0
    return out


def _damaged(run: Path, tmp: Path, name: str, damage) -> Path:
    copy = tmp / "copy"
    shutil.copytree(run, copy)
    damage(copy / name)
    return copy


def _mnist_with_bad_magic(tmp: Path) -> Path:
    """MNIST-named IDX files whose images file declares 2 dimensions instead of 3."""
    root = tmp / "idx" / "mnist"
    root.mkdir(parents=True)
    images = np.zeros((4, 28, 28), np.uint8)
    bad = bytes([0, 0, 8, 2]) + np.array([4, 28 * 28], ">u4").tobytes() + images.tobytes()
    labels = bytes([0, 0, 8, 1]) + np.array([4], ">u4").tobytes() + bytes(4)
    for split in ("train", "t10k"):
        (root / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(bad))
        (root / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    return root.parent


CASES = {
    "negative lr": (["train", "--lr", "-1"], "--lr must be > 0"),
    "rho 1": (["train", "--optimizer", "rmsprop", "--rho", "1"], "--rho 1.0 is outside (0, 1)"),
    "dropout 2": (["train", "--dropout", "2"], "--dropout 2.0 is outside [0, 1)"),
    "label column on digits": (["train", *FAST, "--label-column", "y", "--out", "{tmp}/run"],
                               "--label-column names a column of a .csv file"),
    "latent dim 0": (["train", "--latent-dim", "0"], "--latent-dim"),
    "threads 0": (["train", "--threads", "0"], "--threads >= 1"),
    "patience -1": (["train", "--patience", "-1"], "--patience"),
    "seed -1": (["train", "--seed", "-1"], "--seed and --split-seed must be whole numbers >= 0"),
    "split seed -1": (["train", "--split-seed", "-1"], "--seed and --split-seed must be whole numbers >= 0"),
    "ensemble of one run and a missing one": (["evaluate", "{run}", "{tmp}/nothing"], "is not a run directory"),
    "cuda without a gpu": (["train", "--device", "cuda"], "no CUDA GPU"),
    "unknown device": (["train", "--device", "tpu"], "--device"),
    "unknown cell": (["train", "--arch", "recurrent", "--cell", "rnn"], "--cell"),
    "unknown flag": (["train", "--bogus", "1"],
                     "semivae train: unrecognized arguments: --bogus 1; see `semivae train --help`"),
    "ambiguous flag": (["train", "--data", "x.csv"], "ambiguous option: --data could match --dataset, --data-dir"),
    "not a number": (["evaluate", "{run}", "--iwae-points", "many"], "invalid int value: 'many'"),
    "label ids by id on data without ids": (["train", *FAST, "--label-ids", "{tmp}/byid.csv", "--out", "{tmp}/run"],
                                            "has an 'id' column but no 'row' column, and this data names no rows"),
    "conv strides short": (["train", "--arch", "conv", "--channels", "16,32"],
                           "--channels has 2 layer(s) but --strides 3; give one stride per conv layer"),
    "epochs as text": (["train", "--config", "{tmp}/c.toml"], "[train] epochs = 'ten' is not a whole number"),
    "yaml list": (["train", "--config", "{tmp}/c.yaml"], "holds a list at its top level"),
    "out under a file": (["train", *FAST, "--out", "{tmp}/file/run"], "not a writable folder"),
    "idx bad magic": (["train", "--dataset", "mnist", "--data-dir", "{idx}", *FAST], "must have 0x00000803"),
    "truncated weights": (["evaluate", "{truncated}"], "model.safetensors cannot be loaded"),
    "corrupt data.json": (["evaluate", "{corrupt}"], "data.json is damaged"),
    "predict on cuda": (["predict", "{run}", "{tmp}/x.npz", "--device", "cuda"], "no CUDA GPU"),
    "evaluate on cuda": (["evaluate", "{run}", "--device", "cuda:1"], "no CUDA GPU"),
    "resume with options": (["train", "--resume", "{run}", "--hidden", "8"], "--resume continues the run"),
    "embed to a png": (["embed", "{run}", "{tmp}/x.npz", "--out", "{tmp}/z.png"], "must end in .npz or .csv"),
    "export to a png": (["export", "{run}", "--out", "{tmp}/m.png"], "must end in .onnx"),
    "suggest none": (["suggest", "{run}", "--n", "0"], "--n 0 must be >= 1"),
    "calibrate without validation labels": (["calibrate", "{run}"], "no validation labels to calibrate on"),
    "train --calibrate without validation labels": (["train", *FAST, "--calibrate"], "add --val-labels K"),
    "lr schedule step": (["train", "--lr-schedule", "step"], "unknown --lr-schedule 'step'; choose constant or cosine"),
    "ema 1": (["train", "--ema", "1"], "--ema 1.0 is outside [0, 1)"),
    "cutout 0.9": (["train", "--augment-erase", "0.9"], "--augment-erase 0.9 must be in [0, 0.75] of the side"),
    "gain 1.5": (["train", "--augment-gain", "1.5"], "--augment-gain 1.5 must be in [0, 1)"),
    "adversarial -1": (["train", "--augment-adversarial", "-1"], "--augment-adversarial -1.0 must be >= 0"),
    "negative mixup": (["train", "--consistency-mix", "-1"], "--consistency-temperature and --consistency-mix must be >= 0"),
    "elastic 9 pixels": (["train", "--augment-elastic", "9"], "--augment-elastic 9.0 must be in [0, 5] pixels"),
    "unknown fpr 2": (["train", *FAST, "--unknown-fpr", "2"], "--unknown-fpr 2.0 is outside (0, 1)"),
    "two budgets": (["train", *FAST, "--labels", "10", "--label-ids", "{tmp}/ids.csv"], "give one label budget"),
    "label ids off the data": (["train", *FAST, "--label-ids", "{tmp}/ids.csv"], "outside the training split"),
    "id column missing": (["train", *FAST, "--dataset", "{tmp}/t.csv", "--id-column", "name"], "no id column 'name'"),
    "semi on images without labels": (["train", *FAST, "--dataset", "{tmp}/pics"],
                                      "mode semi needs a label column with at least 2 classes and the data has no "
                                      "labels; use --mode unsupervised"),
    "loose images beside class folders": (["train", *FAST, "--dataset", "{tmp}/mixed"],
                                          "lies directly in"),
    "image size 2": (["train", "--image-size", "2"], "--image-size 2 must be H,W (or one side) of 4 to 1024 pixels"),
    "evaluate missing data": (["evaluate", "{run}", "--data", "{tmp}/nope"], "no such file or folder: "),
    "evaluate threads 0": (["evaluate", "{run}", "--threads", "0"], "--threads 0 must be >= 1"),
    "anomaly score samples 0": (["anomaly", *FAST, "--anomaly-class", "3", "--score-samples", "0"],
                                "--score-samples 0 and --score-iwae-k 100 must be >= 1"),
    "evaluate label column without data": (["evaluate", "{run}", "--label-column", "y"], "give --data, or drop it"),
    "evaluate unlabelled images": (["evaluate", "{run}", "--data", "{tmp}/pics"], "holds no labelled point to score"),
    "id column is the label column": (["train", *FAST, "--dataset", "{tmp}/t.csv", "--id-column", "label"],
                                      "--id-column and --label-column both name 'label'"),
    "nproc 0": (["train", "--nproc", "0"], "--nproc 0 must be >= 1"),
    "bench without steps": (["bench", "speed", "--steps", "0"], "--steps 0 and --batch-size"),
    "frozen encoder with its own lr": (["finetune", "{run}", "--freeze", "--encoder-lr", "0.01", "--out", "{tmp}/ft"],
                                       "drop one of them"),
    "calibrate with a bad fpr": (["calibrate", "{run}", "--unknown-fpr", "1.5"], "--unknown-fpr 1.5 is outside"),
    "export with a missing check file": (["export", "{run}", "--out", "{tmp}/m.onnx", "--check", "{tmp}/nope.npz"],
                                         "no such file or folder"),
    "predict to an npz": (["predict", "{run}", "{tmp}/pics", "--out", "{tmp}/p.npz"], "writes CSV text; name a .csv"),
    "resume with nothing left": (["train", "--resume", "{run}", "--epochs", "1"],
                                 "so --epochs 1 leaves nothing to train"),
    "image bends on a table": (["train", *FAST, "--dataset", "{tmp}/t.csv", "--consistency", "5", "--augment-elastic",
                                "1"], "--augment-elastic perturbs images, but the data is a table; drop it (on a table "
                                      "the consistency term uses --augment-noise and --consistency-mix)"),
    "warp on images": (["train", *FAST, "--augment-warp", "0.1"], "--augment-warp perturbs series, but the data is "
                                                                    "images"),
    "noise where the term is off": (["train", *FAST, "--dataset", "{tmp}/t.csv", "--augment-noise", "0.3"],
                                    "--augment-noise shapes the consistency term, which is off for this run; add "
                                    "--consistency 10"),
    "conv channels on a dense run": (["train", *FAST, "--channels", "8,16"],
                                     "--channels is an option of --arch conv; this run's --arch dense does not read it"),
    "alpha without a class layer": (["train", *FAST, "--mode", "unsupervised", "--alpha", "50"],
                                    "--alpha changes nothing here: --mode unsupervised has no class layer to weigh"),
    "init from a run of another kind": (["train", *FAST, "--dataset", "{tmp}/t.csv", "--init-from", "{run}"],
                                        "was trained on image data of shape [1, 8, 8], this data is vector"),
    "rho under adam": (["train", *FAST, "--rho", "0.5"], "--rho changes nothing here: it is rmsprop's"),
    "patience without validation": (["train", *FAST, "--patience", "2", "--val-fraction", "0"],
                                    "--patience changes nothing here: it stops on the validation points"),
    "finetune from another run": (["finetune", "{run}", "--init-from", "{run}", "--out", "{tmp}/ft"],
                                  "finetune starts from RUN itself; drop --init-from"),
    "finetune with new sizes": (["finetune", "{run}", "--hidden", "8", "--out", "{tmp}/ft"],
                                "finetune reuses RUN's encoder as it is; drop --hidden"),
    "evaluate a split of other data": (["evaluate", "{run}", "--data", "{tmp}/x.npz", "--split", "val"],
                                       "--split val names one of the run's own splits, --data other data"),
    "iwae points without k": (["evaluate", "{run}", "--iwae-points", "10"], "--iwae-k K (>= 1) turns the NLL on"),
    "generate npz without suffix": (["generate", "{run}", "--npz", "{tmp}/gg"], "must end in .npz"),
    "bench on a missing gpu": (["bench", "speed", "--device", "cuda", "--steps", "1"], "no CUDA GPU"),
    "finetune on no labels": (["finetune", "{run}", "--labels", "0", "--out", "{tmp}/ft"],
                              "budget leaves none; raise the budget (--labels, --labels-per-class or --label-fraction)"),
    "a csv for an image model": (["predict", "{run}", "{tmp}/t.csv"],
                                 "for a model trained on image data; give a folder of images, one image file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text('[train]\nepochs = "ten"\n')
    (tmp_path / "c.yaml").write_text("- train\n- data\n")
    (tmp_path / "file").write_text("not a folder")
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 8, 8), np.uint8))
    (tmp_path / "ids.csv").write_text("row\n3\n99999\n")
    (tmp_path / "byid.csv").write_text("id,label\n7,3\n")
    (tmp_path / "t.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    for name in ("pics/a.png", "pics/b.png", "mixed/a.png", "mixed/cat/b.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8), 9, np.uint8)).save(tmp_path / name)
    places = {"tmp": tmp_path, "run": run, "idx": _mnist_with_bad_magic(tmp_path) if case == "idx bad magic" else "",
              "truncated": _damaged(run, tmp_path, "model.safetensors",
                                    lambda p: p.write_bytes(p.read_bytes()[:100])) if case == "truncated weights" else "",
              "corrupt": _damaged(run, tmp_path, "data.json",
                                  lambda p: p.write_text("{ broken")) if case == "corrupt data.json" else ""}
    argv, needle = CASES[case]
    argv = [a.format(**places) for a in argv]
    if argv[0] == "train" and "--out" not in argv and "--resume" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    run_files = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing new, nothing half
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == run_files


def test_a_run_on_a_relative_data_path_works_from_any_folder(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.savez(data / "d.npz", x=rng.normal(size=(120, 4)).astype(np.float32), y=np.arange(120) % 3)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "data/d.npz", *FAST, "--out", "r"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for argv in (["evaluate", "../r"], ["report", "../r"], ["traverse", "../r"], ["evaluate", "../r", "--device", "cpu"]):
        assert main(argv) == 0, argv


def test_a_small_budget_says_where_its_labels_went(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.full(300, -1)
    y[:50] = np.arange(50) % 5
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(300, 6)).astype(np.float32), y=y)
    assert main(["train", "--dataset", str(tmp_path / "d.npz"), *FAST, "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "of the 50 labelled points" in err and "went to the test split" in err and "--val-fraction 0" in err
    assert main(["evaluate", str(tmp_path / "r")]) == 0
    assert "only 10 points" in capsys.readouterr().err  # evaluate warns about a tiny test split
    assert main(["train", "--dataset", str(tmp_path / "d.npz"), "--mode", "unsupervised", *FAST,
                 "--out", str(tmp_path / "vae")]) == 0
    assert "labelled points" not in capsys.readouterr().err  # a plain VAE trains on no label: nothing to account for
