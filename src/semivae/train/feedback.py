"""``semivae feedback``: teach an anomaly run from the user's false alarms and misses.

Berkhahn et al. 2019, section 5, proposed and built here: two classes are added to the run's
class layer, "false positive" (normal points the detector flagged) and "false negative"
(anomalies it missed), holding the points the user marked. The model is fine-tuned from the
run's weights on its own training data plus those labelled points (upsampled 1:1 like any
labels, each mark repeated so that its class weighs as much as an old one: ``mark_indices``),
and its scores are then adjusted x -> f + (x - f) (1 - p_fp) / (1 - p_fn) with the model's
probabilities of the two classes, f the lowest normal validation score (see
``eval.anomaly``). A run without a class layer (a plain VAE) gains one, [normal, false
positive, false negative], with ``NORMAL_PER_MARK`` of its training points (normal by the anomaly
protocol) labelled "normal" per marked point: it learns from no label of the data. The result is
a new run directory; the marked points are saved in it (``feedback.npz``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_npz
from ..data.splits import TrainingData, apply_split
from ..errors import UserError
from ..eval.anomaly import FN, FP, evaluate_anomaly, load_anomaly
from ..eval.evaluation import read_inputs
from ..models import build_model
from ..runs import Run, RunWriter, as_run, check_out_dir, model_spec, save_weights
from .loop import fit
from .training import postfit

NORMAL = "normal"  # the one class a plain VAE's training points get when feedback gives it a class layer
NORMAL_PER_MARK = 20  # of them labelled per marked point (a semi-supervised detector on 10 % of the digits: ~20)


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


def mark_indices(first: int, n: int, per_class: float) -> torch.Tensor:
    """The labelled stream's indices of ``n`` marked points stored from ``first`` on, each repeated
    so that a new class weighs as much as an old one (``per_class`` labelled points on average),
    however few its marks: (n * r,). Measured in docs/benchmarks.md section 11 (session 49)."""
    return torch.arange(first, first + n).repeat(max(1, round(per_class / n)))


def marked_in_test(test, marked: list[np.ndarray]) -> int:
    """How many of the test split's points the user marked (``marked``: the marks' stored values):
    the AUROC printed after feedback counts them as the user labelled them, so it reads high."""
    rows = test.stored().reshape(len(test), -1)
    seen = {row.tobytes() for part in marked if part.dtype == rows.dtype for row in part.reshape(len(part), -1)}
    return sum(row.tobytes() in seen for row in rows)


def feedback(run: Run | str | Path, false_positives: str | None = None, false_negatives: str | None = None, *,
             out: str | Path, epochs: int = 5, lr: float | None = None, progress: bool = True,
             device: str | None = None) -> Path:
    run = as_run(run, device)
    if false_positives is None and false_negatives is None:
        raise UserError("give --false-positives and/or --false-negatives: files of the points you marked")
    model_cfg = type(run.model).feedback_config(run.config.model)
    if model_cfg is None:
        raise UserError(f"feedback fine-tunes --model semivae runs; run {run.path} is {run.config.model.model}")
    if FP in run.classes:
        raise UserError(f"run {run.path} already has feedback classes; give more feedback to the run it came from")
    if epochs < 1:
        raise UserError(f"--epochs {epochs} must be >= 1")
    if lr is not None and not lr > 0:
        raise UserError(f"--lr {lr} must be > 0, e.g. 0.001 (default: the run's)")
    check_out_dir(out)
    anomaly = load_anomaly(run)
    cfg = run.config
    marked = [read_inputs(run, p) if p else None for p in (false_positives, false_negatives)]
    data = apply_split(run.dataset().train, run.split)
    classes, train, labelled, val = list(run.classes), data.train, data.labelled, data.val
    if not run.model.heads:  # a plain VAE used no label: its training points (normal by the protocol) are one class,
        # taught by NORMAL_PER_MARK of them per marked point, so the marks are not lost among thousands
        n_marked = sum(len(part) for part in marked if part is not None)
        g = torch.Generator().manual_seed(cfg.train.seed)
        classes = [NORMAL]
        labelled = torch.randperm(len(train), generator=g)[: NORMAL_PER_MARK * n_marked].sort().values
        labels = torch.full((len(train), 1), -1, dtype=torch.long)
        labels[labelled] = 0
        train = replace(train, labels=labels)
        val = replace(val, labels=torch.full((len(val), 1), -1, dtype=torch.long))  # no data label, here either
    k, per_class = len(classes), len(labelled) / max(len(classes), 1)  # a class's share of the labelled stream
    for cls, part in ((k, marked[0]), (k + 1, marked[1])):
        if part is not None:
            n0 = len(train)
            train = train.append(part, torch.cat([train.labels, torch.full((len(part), 1), cls, dtype=torch.long)]))
            labelled = torch.cat([labelled, mark_indices(n0, len(part), per_class)])
    names = ("false_positives", "false_negatives")
    stored = {name: part.stored() for name, part in zip(names, marked) if part is not None}  # NaN where missing
    head = {"name": run.spec.heads[0].name if run.spec.heads else "label", "classes": classes + [FP, FN]}
    info = dict(run.data_info, heads=[head], feedback={
        "from_run": str(run.path), "false_positives": 0 if marked[0] is None else len(marked[0]),
        "false_negatives": 0 if marked[1] is None else len(marked[1]),
        "marked_in_test": marked_in_test(run.dataset().test, list(stored.values()))})
    info.pop("classes", None)  # a run from before heads existed names its classes there
    new_cfg = replace(cfg, model=model_cfg, train=replace(cfg.train, epochs=epochs, lr=lr or cfg.train.lr, patience=0,
                                                          device=device or cfg.train.device))
    torch.manual_seed(cfg.train.seed)
    model = build_model(model_spec(info, new_cfg.model), new_cfg.arch, new_cfg.model)
    model.load_state_dict(grow_state(run.model.state_dict(), model.state_dict()))

    path = Path(out)
    writer = RunWriter(path, new_cfg, info, run.split)
    lengths = {f"{name}_lengths": part.lengths.numpy() for name, part in zip(names, marked)
               if part is not None and part.lengths is not None}  # series: their valid steps
    write_npz(path / "feedback.npz", **stored, **lengths)
    history = fit(model, TrainingData(train, val, labelled), new_cfg.train, label_ratio=cfg.data.label_ratio,
                  progress=progress, on_epoch=lambda row, weights: writer.epoch({"stage": "feedback", **row}, weights))
    save_weights(model, path / "model.safetensors")
    writer.summary({"status": "completed", "epochs": len(history), "final": history[-1], "feedback": info["feedback"],
                    "n_labelled": int(len(labelled.unique())),
                    **postfit(path, new_cfg)})  # class latents, as training fits them
    parts = tuple(anomaly["combine"]) if anomaly.get("combine") else None  # `combined` means what it meant
    evaluate_anomaly(path, target_fpr=anomaly["target_fpr"], samples=anomaly["samples"], iwae_k=anomaly["iwae_k"],
                     device=device, parts=parts)
    return path
