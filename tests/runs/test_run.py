"""Run directories: loading once, legacy runs, atomic writes."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

import semivae
from semivae.atomic import read_tensors, write_atomic
from semivae.eval import evaluate, predict, predict_all
from semivae.runs import Run, as_run, load_run

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy"  # written by the code before the model contract


@pytest.mark.parametrize("name", ["semivae-semi", "m2"])
def test_runs_written_before_the_contract_load_and_predict_the_same(name):
    """Their data.json names one `classes` list, their weights hold one `pi` layer, their
    config.yaml lists every model's options in [model]."""
    expected = json.loads((LEGACY / "expected.json").read_text())[name]
    run = load_run(LEGACY / name)
    assert [h.name for h in run.spec.heads] == ["label"] and run.spec.kind == "image"
    proba, classes = predict(run, LEGACY / "new.npz")
    assert classes == [str(k) for k in range(10)]
    np.testing.assert_allclose(proba, np.array(expected["proba"]), rtol=1e-5, atol=1e-6)
    res = evaluate(run)
    assert res["accuracy"] == pytest.approx(expected["accuracy"])
    assert res["log_loss"] == pytest.approx(expected["log_loss"])


def test_a_legacy_tabular_run_is_a_vector_run():
    run = load_run(LEGACY / "vector-semi")
    assert run.kind == "vector"
    proba, _ = predict(run, LEGACY / "iris-new.npz")
    expected = json.loads((LEGACY / "expected.json").read_text())["vector-semi"]["proba"]
    np.testing.assert_allclose(proba, np.array(expected), rtol=1e-5, atol=1e-6)


def test_one_loaded_run_serves_every_command_and_reads_its_data_once(tmp_path, tiny, monkeypatch):
    path = semivae.train(tiny(epochs=1), out=tmp_path / "r", progress=False)
    run = load_run(path)
    assert isinstance(run, Run) and as_run(run) is run
    calls = []
    import semivae.runs.run as run_module

    original = run_module.load_for_config
    monkeypatch.setattr(run_module, "load_for_config", lambda *a, **k: calls.append(1) or original(*a, **k))
    from semivae.viz import write_report

    write_report(run)  # metrics, confusion, every figure
    evaluate(run, "val")
    assert len(calls) == 1
    np.savez(tmp_path / "new.npz", x=np.zeros((2, 8, 8), np.uint8))
    assert predict_all(run, tmp_path / "new.npz").splitlines()[0].startswith("row,id,predicted,p_0")


def test_atomic_writes_from_many_threads_never_mix_and_leave_no_temporaries(tmp_path):
    target = tmp_path / "f.bin"
    payloads = [bytes([i]) * 100_000 for i in range(16)]
    threads = [threading.Thread(target=write_atomic, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    write_atomic(target, "old")
    monkeypatch.setattr("os.replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(semivae.UserError, match="cannot write .*f.txt \\(disk full\\); choose a writable place"):
        write_atomic(target, "new")  # one line, as any bad input
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with pytest.raises(semivae.UserError, match="it is a folder"):
        write_atomic(tmp_path, "new")


def test_read_tensors_owns_its_memory_and_keeps_the_metadata(tmp_path):
    """safetensors' load_file memory-maps: a file overwritten in place (cp onto it) changed the
    tensors already loaded. read_tensors copies them out."""
    target = tmp_path / "w.safetensors"
    target.write_bytes(safetensors_bytes({"w": torch.zeros(64)}, metadata={"step": "7"}))
    tensors, meta = read_tensors(target)
    with open(target, "r+b") as f:  # in place: same inode, same length
        f.write(safetensors_bytes({"w": torch.ones(64)}, metadata={"step": "7"}))
    assert tensors["w"].abs().sum() == 0 and meta == {"step": "7"}
    target.write_bytes(safetensors_bytes({"w": torch.ones(2)}))
    assert read_tensors(target)[1] == {}


def test_run_files_are_readable_like_ordinary_files(tmp_path, tiny):
    path = semivae.train(tiny(epochs=1), out=tmp_path / "r", progress=False)
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert (path / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask
    assert torch.isfinite(torch.tensor(json.loads((path / "summary.json").read_text())["final"]["loss"]))


def test_a_training_folder_that_changed_is_refused_where_the_split_names_its_rows(tmp_path, capsys):
    """Files moved between folders (the labelling loop) renumber the rows split.json names: the
    validation split and resuming are refused in one line; a test split of its own still evaluates."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from semivae.cli import main

    x, y = load_digits(return_X_y=True)
    for i in range(120):
        folder = tmp_path / ("test" if i >= 100 else "pics") / (str(y[i]) if i < 30 or i >= 100 else "unlabelled")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i].reshape(8, 8) * 15).astype(np.uint8)).save(folder / f"im{i:03d}.png")
    run = tmp_path / "run"
    fast = ["--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--threads", "1", "--quiet"]
    assert main(["train", "--dataset", str(tmp_path / "pics"), "--test-data", str(tmp_path / "test"), *fast,
                 "--out", str(run)]) == 0
    assert json.loads((run / "data.json").read_text())["train_rows"]["n"] == 100
    (tmp_path / "pics" / "unlabelled" / "im050.png").rename(tmp_path / "pics" / str(y[50]) / "im050.png")
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0  # the test split is its own folder
    for argv in (["evaluate", str(run), "--split", "val"], ["train", "--resume", str(run), "--epochs", "2"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "changed since it was trained (the same number of rows, but other names" in err and "--init-from" in err
