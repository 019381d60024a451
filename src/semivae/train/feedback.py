"""``semivae feedback``: teach an anomaly run from the user's false alarms and misses.

Berkhahn et al. 2019, section 5, proposed and built here: two classes are added to the run's
class layer, "false positive" (normal points the detector flagged) and "false negative"
(anomalies it missed), holding the points the user marked. The model is fine-tuned from the
run's weights on its own training data plus those labelled points (upsampled 1:1 like any
labels), and its scores are then adjusted x -> x (1 - p_fp) / (1 - p_fn) with the model's
probabilities of the two classes (see ``eval.anomaly``). A run without a class layer (a plain
VAE) gains one; this works with no other labels at all. The result is a new run directory;
the marked points are saved in it (``feedback.npz``).
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..data import ArrayData, load_inputs
from ..data.anomaly import load_for_config
from ..data.splits import TrainingData, apply_split
from ..errors import UserError
from ..eval.anomaly import FN, FP, evaluate_anomaly, load_anomaly
from ..models import build_model
from .run import RunWriter, check_out_dir, load_run, model_spec, write_atomic
from .trainer import fit


def grow_state(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old weights into a model with more classes: each tensor's overlap is copied; columns a
    weight gained on its input (the decoder's new pi entries) start at zero, so the decoder's
    output is unchanged at first; rows it gained on its output (new classes) keep their init."""
    out = {}
    for k, t in new.items():
        t = t.clone()
        if k in old:
            o = old[k]
            if o.dim() != t.dim():
                out[k] = t
                continue
            t[tuple(slice(0, s) for s in o.shape)] = o
            if t.dim() == 2 and t.shape[1] > o.shape[1]:
                t[:, o.shape[1]:] = 0.0
        out[k] = t
    return out


def feedback(run: str | Path, false_positives: str | None = None, false_negatives: str | None = None, *,
             out: str | Path, epochs: int = 5, lr: float | None = None, progress: bool = True) -> Path:
    loaded = load_run(run)
    if false_positives is None and false_negatives is None:
        raise UserError("give --false-positives and/or --false-negatives: files of the points you marked")
    if loaded.config.model.model != "semivae":
        raise UserError(f"feedback fine-tunes --model semivae runs; run {run} is {loaded.config.model.model}")
    if FP in loaded.classes:
        raise UserError(f"run {run} already has feedback classes; give more feedback to the run it came from")
    if epochs < 1:
        raise UserError(f"--epochs {epochs} must be >= 1")
    check_out_dir(str(out))
    anomaly = load_anomaly(loaded)
    cfg = loaded.config
    marked = [load_inputs(str(p), dict(loaded.data_info)) if p else None for p in (false_positives, false_negatives)]
    bundle = load_for_config(cfg.data)
    data = apply_split(bundle.train, loaded.split)
    k = len(loaded.classes)
    xs, ys = [data.train.x], [data.train.y]
    for cls, part in ((k, marked[0]), (k + 1, marked[1])):
        if part is not None:
            xs.append(part.x.to(data.train.x.dtype))
            ys.append(torch.full((len(part),), cls, dtype=torch.long))
    n0 = len(data.train)
    train = ArrayData(torch.cat(xs), torch.cat(ys), data.train.shift, data.train.scale)
    labelled = torch.cat([data.labelled, torch.arange(n0, len(train))])
    info = dict(loaded.data_info, classes=loaded.classes + [FP, FN], feedback={
        "from_run": str(loaded.path), "false_positives": 0 if marked[0] is None else len(marked[0]),
        "false_negatives": 0 if marked[1] is None else len(marked[1])})
    new_cfg = replace(cfg, model=replace(cfg.model, mode="semi"),
                      train=replace(cfg.train, epochs=epochs, lr=lr or cfg.train.lr, patience=0))
    torch.manual_seed(cfg.train.seed)
    model = build_model(model_spec(info), new_cfg.arch, new_cfg.model)
    model.load_state_dict(grow_state(loaded.model.state_dict(), model.state_dict()))

    path = Path(out)
    writer = RunWriter(path, new_cfg, info, loaded.split)
    buf = io.BytesIO()
    np.savez(buf, **{name: part.x.numpy() for name, part in zip(("false_positives", "false_negatives"), marked)
                     if part is not None})
    write_atomic(path / "feedback.npz", buf.getvalue())
    history = fit(model, TrainingData(train, data.val, labelled), new_cfg.train, label_ratio=cfg.data.label_ratio,
                  progress=progress, on_epoch=lambda row, save: writer.epoch({"stage": "feedback", **row}, model, True))
    writer.summary({"status": "completed", "epochs": len(history), "final": history[-1], "feedback": info["feedback"],
                    "n_labelled": int(len(labelled))})
    evaluate_anomaly(path, target_fpr=anomaly["target_fpr"], samples=anomaly["samples"], iwae_k=anomaly["iwae_k"])
    return path
