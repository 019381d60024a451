"""``evaluate`` a run on a split, and ``predict`` class probabilities for new data.

Each takes a loaded :class:`~semivae.runs.Run` or a run directory's path.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from ..data import ArrayData, load_inputs
from ..errors import UserError
from ..objectives.iwae import iwae_log_px
from ..models import model_device
from ..runs import SPLITS, Run, as_run, status
from .outputs import evaluate_split, model_outputs


def evaluate(run: Run | str | Path, split: str = "test", *, data_dir: str | None = None, iwae_k: int = 0,
             iwae_points: int | None = None, seed: int = 0, device: str | None = None) -> dict:
    """Accuracy, log loss and confusion matrix per head, and the ELBO, of a run on ``split``;
    with ``iwae_k`` also the negative log-likelihood ``nll`` (nats per point, the IWAE bound
    with k samples, on the first ``iwae_points`` points or all)."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    run = as_run(run, device)
    data = run.split_data(split, data_dir)
    if not len(data):
        raise UserError(f"the {split} split of {run.config.data.dataset} is empty; evaluate another split")
    if iwae_k < 0 or (iwae_k and not run.model.has_importance_weights):
        raise UserError(f"--iwae-k {iwae_k} needs a model with a decoder and k >= 1; drop it for this run")
    torch.manual_seed(seed)
    res = evaluate_split(run.model, data, confusion=True, target_std=run.data_info.get("target_std"),
                         device=model_device(run.model))
    if iwae_k:
        n = min(len(data), iwae_points or len(data))
        res.update(nll=float(iwae_nll_terms(run.model, data, iwae_k, n).mean()), iwae_k=iwae_k, nll_points=n)
    spec = run.spec
    classes = {spec.key("classes", h.name): list(h.classes) for h in spec.heads}
    notes = [n for n in (status(run), f"the {split} split has only {len(data)} points: its figures are rough"
                         if len(data) < 100 else None) if n]
    return {"run": str(run.path), "split": split, "dataset": run.config.data.dataset, "model": run.config.model.model,
            "mode": run.config.model.run_name(), **classes, **res, **({"notes": notes} if notes else {})}


def iwae_nll_terms(model, data: ArrayData, k: int, n: int, batch_size: int = 128) -> np.ndarray:
    """-L_k (the IWAE bound, nats) for the first ``n`` points of ``data``: (n,)."""
    out, dev = [], model_device(model)
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        mask = data.mask(idx)
        out.append(-iwae_log_px(model, data.inputs(idx).to(dev), k, None if mask is None else mask.to(dev)).cpu())
    return torch.cat(out).numpy()


def read_inputs(run: Run, inputs: str | Path) -> ArrayData:
    """New data of the run's training form (same files the loaders read), normalised alike."""
    return load_inputs(str(inputs), {**run.data_info, "n_heads": len(run.spec.heads)})


def _predictions(run: Run | str | Path, inputs: str | Path, device: str | None = None) -> tuple[Run, dict]:
    """The run and its model's outputs on ``inputs``; refuses a model without class heads."""
    run = as_run(run, device)
    if not run.model.heads:
        raise UserError(f"run {run.path} is an unsupervised model without a class layer; "
                        "train with --mode semi or supervised")
    return run, model_outputs(run.model, read_inputs(run, inputs), device=model_device(run.model))


def predict(run: Run | str | Path, inputs: str | Path, head: str | None = None,
            device: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Class probabilities (N, K) of one head (the only one, unless named) for the data in
    ``inputs`` (same formats as training), and that head's class names."""
    run, out = _predictions(run, inputs, device)
    names = [h.name for h in run.model.heads]
    if head is None and len(names) > 1:
        raise UserError(f"run {run.path} has heads {names}; name the one to predict with head=")
    name = names[0] if head is None else head
    if name not in names:
        raise UserError(f"run {run.path} has no head {name!r}; choose one of {names}")
    return out["proba"][name], list(run.model.heads[names.index(name)].classes)


def predict_all(run: Run | str | Path, inputs: str | Path, device: str | None = None) -> str:
    """CSV text of every prediction the run makes: classes per head and, for a model with a
    regression head, its continuous targets in the data's units."""
    run, out = _predictions(run, inputs, device)
    info = run.data_info
    targets = None
    if "targets" in out:
        targets = out["targets"] * np.asarray(info["target_std"]) + np.asarray(info["target_mean"])
    return proba_csv(run, out["proba"], targets, info.get("target_names"))


def proba_csv(run: Run, proba: dict[str, np.ndarray], targets: np.ndarray | None = None,
              target_names: list[str] | None = None) -> str:
    """CSV text: row, then per head its predicted class and one probability column per class
    (``predicted``, ``p_<class>``; with several heads ``predicted/<head>``, ``p_<class>/<head>``),
    then one column per predicted continuous target."""
    spec = run.spec
    heads = [h for h in spec.heads if h.name in proba]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(target_names or []) if targets is not None else []
    header = ["row"]
    for h in heads:
        header += [spec.key("predicted", h.name)] + [spec.key(f"p_{c}", h.name) for c in h.classes]
    w.writerow(header + names)
    n = len(next(iter(proba.values())))
    for i in range(n):
        row: list = [i]
        for h in heads:
            p = proba[h.name][i]
            row += [h.classes[int(p.argmax())]] + [f"{v:.6g}" for v in p]
        w.writerow(row + ([f"{v:.6g}" for v in targets[i]] if targets is not None else []))
    return buf.getvalue()
