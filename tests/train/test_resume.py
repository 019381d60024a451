"""Never lose work: SIGTERM in the middle of an epoch, then --resume, gives bitwise the weights
of an uninterrupted run; a diverged run keeps weights to look at."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from semivae.cli import main
from semivae.models import SemiVAE

FAST = ["--hidden", "32", "--latent-dim", "3", "--batch-size", "64", "--labels-per-class", "5", "--threads", "1",
        "--quiet"]


def _during(monkeypatch, cls, call: int, act) -> None:
    """Run ``act()`` during the ``call``-th training step of ``cls``."""
    original = cls.forward
    calls = {"n": 0}

    def forward(self, batch):
        calls["n"] += 1
        if calls["n"] == call:
            act()
        return original(self, batch)
    monkeypatch.setattr(cls, "forward", forward)


def _signal_during(monkeypatch, cls, call: int, signum=signal.SIGTERM):
    """Send ``signum`` to this process during the ``call``-th training step of ``cls``."""
    _during(monkeypatch, cls, call, lambda: os.kill(os.getpid(), signum))


def _crash() -> None:
    raise RuntimeError("the machine went away")


def _rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("model,extra,cls_name,call", [
    ("semivae", ["--checkpoint-every", "7"], "SemiVAE", 55),  # epoch 2 of 40-step epochs, step 15
    ("semivae", ["--lr-schedule", "cosine"], "SemiVAE", 55),  # the rate resumes on its curve
    ("semivae", ["--ema", "0.9", "--val-labels", "10", "--patience", "2"], "SemiVAE", 55),  # the average resumes
    ("semivae", ["--consistency-align"], "SemiVAE", 55),  # the running class means resume
    # channels-last conv weights on the CPU (train/loop.py) meet Adam moments read back in the plain layout
    ("semivae", ["--arch", "conv", "--channels", "4,8", "--strides", "2,2", "--fc", "16"], "SemiVAE", 55),
    ("m1m2", ["--m1-epochs", "2", "--m2-hidden", "16", "--m2-latent-dim", "3"], "M1M2", 50),  # stage 2, epoch 2
])
def test_a_run_stopped_mid_epoch_resumes_to_bitwise_the_same_weights(model, extra, cls_name, call, tmp_path,
                                                                      monkeypatch, capsys):
    import semivae.models as models

    fast = FAST[2:] if "conv" in extra else FAST  # a conv run reads no --hidden (and refuses it)
    args = ["train", "--model", model, "--epochs", "3", *fast, *extra]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    with monkeypatch.context() as m:
        _signal_during(m, getattr(models, cls_name), call)
        assert main([*args, "--out", str(tmp_path / "cut")]) == 128 + signal.SIGTERM
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["resume_command"].startswith("semivae train --resume")
    kept, state = (load_file(str(tmp_path / "cut" / f)) for f in ("model.safetensors", "checkpoint.safetensors"))
    source = next(p for p in ("best", "ema", "model") if any(k.startswith(p + "/") for k in state))  # conv: ema
    at_stop = {k[len(source) + 1:]: v for k, v in state.items() if k.startswith(source + "/")}
    at_stop = {k.removeprefix("module."): v for k, v in at_stop.items() if k != "n_averaged"}
    assert all(torch.equal(kept[k], at_stop[k]) for k in kept)  # what evaluate reads now: the weights at the stop
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "cut")]) == 0  # an unfinished run still evaluates, and says so
    assert "unfinished" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    cut = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)
    assert _rows(tmp_path / "whole") == _rows(tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "completed"


def test_a_crashed_run_resumes_from_its_last_checkpoint_and_runs_the_epochs_after_it_again(tmp_path, monkeypatch):
    """A process that dies without a signal (an error, a killed machine) leaves the checkpoint
    of the last epoch that wrote one (at most every --checkpoint-seconds) and metrics rows past
    it; resuming drops those rows, runs their epochs again and ends as an uninterrupted run."""
    from semivae.train.checkpoint import load_checkpoint

    args = ["train", "--epochs", "4", *FAST, "--checkpoint-seconds", "1e9"]  # after epochs 1 and 4 only
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    with monkeypatch.context() as m:
        _during(m, SemiVAE, 95, _crash)  # epoch 3 of 40-step epochs
        with pytest.raises(RuntimeError, match="went away"):
            main([*args, "--out", str(tmp_path / "cut")])
    assert [r["epoch"] for r in _rows(tmp_path / "cut")] == [1, 2]
    assert load_checkpoint(tmp_path / "cut").progress.epoch == 2  # epoch 2 runs again
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    cut = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)
    assert _rows(tmp_path / "whole") == _rows(tmp_path / "cut")


def test_sigint_stops_with_130_and_a_finished_run_extends_with_more_epochs(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _signal_during(m, SemiVAE, 3, signal.SIGINT)
        assert main(["train", "--epochs", "2", *FAST, "--out", str(tmp_path / "r")]) == 130
    assert main(["train", "--resume", str(tmp_path / "r"), "--quiet"]) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "--epochs", "3", "--quiet"]) == 0
    assert [r["epoch"] for r in _rows(tmp_path / "r")] == [1, 2, 3]
    from semivae.train import Interrupted, train  # from Python: a KeyboardInterrupt, past `except Exception`

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        _signal_during(m, SemiVAE, 3, signal.SIGINT)
        try:
            train(dataset="digits", epochs=2, hidden=[16], threads=1, out=tmp_path / "py", progress=False)
        except Exception:  # a loop over seeds that goes on after a failure
            pass
    assert issubclass(Interrupted, KeyboardInterrupt)


def test_resume_refuses_new_options_and_runs_without_a_checkpoint(tmp_path, capsys):
    assert main(["train", "--epochs", "1", *FAST, "--out", str(tmp_path / "r")]) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "--lr", "0.1"]) == 2
    assert "--resume continues the run" in capsys.readouterr().err
    (tmp_path / "r" / "checkpoint.safetensors").unlink()
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_a_diverged_run_keeps_its_last_good_weights(tmp_path, capsys):
    out = tmp_path / "r"  # the default model diverges within its first epoch at this rate
    assert main(["train", "--lr", "1e6", "--epochs", "2", "--labels-per-class", "5", "--threads", "1", "--quiet",
                 "--out", str(out)]) == 1
    assert "diverged" in capsys.readouterr().err
    weights = load_file(str(out / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())
    assert json.loads((out / "summary.json").read_text())["status"] == "diverged"
    assert main(["evaluate", str(out)]) == 0
