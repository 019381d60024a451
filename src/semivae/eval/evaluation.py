"""``evaluate`` a run on a split, and ``predict`` class probabilities for new data.

Each takes a loaded :class:`~semivae.runs.Run` or a run directory's path.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..data import ArrayData, load_inputs
from ..data.inputs import load_labelled
from ..data.arrays import as_array, class_name
from ..errors import UserError
from ..objectives.iwae import iwae_log_px
from ..models import model_device
from ..runs import SPLITS, Run, as_run, status
from .ensemble import average, evaluate_members, load_members, member_outputs, run_paths, same_carve, shared_reads
from .outputs import evaluate_split
from .unknown import unknown_flags


def evaluate(run: Run | str | Path | list, split: str = "test", *, x=None, y=None, data_dir: str | None = None,
             iwae_k: int = 0, iwae_points: int | None = None, seed: int = 0, device: str | None = None,
             label_column: str | None = None) -> dict:
    """Accuracy, log loss, calibration error and confusion matrix per head, and the ELBO, of a
    run on ``split``, or on given inputs ``x`` (a path, array or data frame) with labels ``y``
    (class names or values of the first head; -1 = unlabelled; a path's own labels when ``y`` is
    None: an image folder's sub-folders, a CSV's label column, the run's or ``label_column``, an ``.npz``'s ``y``);
    with ``iwae_k`` also the
    negative log-likelihood ``nll`` (nats per point, the IWAE bound with k samples, on the
    first ``iwae_points`` points or all). Given a list of runs, their ensemble (``ensemble.py``):
    the scores of the averaged probabilities, each member's accuracy and log loss in ``members``."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if y is not None and x is None:
        raise UserError("y= needs x=; pass the inputs the labels belong to as x=")
    if isinstance(run, (list, tuple)) and len(run) > 1:
        return _evaluate_ensemble(list(run), split, x, y, data_dir, iwae_k, device, label_column)
    run = as_run(_one(run), device)
    if x is not None:
        data, split = labelled_inputs(run, x, y, label_column), "given"
    else:
        data = run.split_data(split, data_dir)
    if not len(data):
        raise UserError(f"the {split} split of {run.config.data.dataset} is empty; evaluate labelled data (--data "
                        f"FILE) or another split (--split {'val' if split == 'test' else 'test'})")
    if iwae_k < 0 or (iwae_k and not run.model.has_importance_weights):
        raise UserError(f"--iwae-k {iwae_k} needs a model with a decoder and k >= 1; drop it for this run")
    torch.manual_seed(seed)
    res = evaluate_split(run.model, data, confusion=True, target_std=run.data_info.get("target_std"),
                         device=model_device(run.model), temperatures=run.temperatures)
    if "target_rmse" in res and run.data_info.get("target_names"):
        res["target_names"] = list(run.data_info["target_names"])  # as predict names its columns
    if iwae_k:
        n = min(len(data), iwae_points or len(data))
        res.update(nll=float(iwae_nll_terms(run.model, data, iwae_k, n).mean()), iwae_k=iwae_k, nll_points=n)
    spec = run.spec
    classes = {spec.key("classes", h.name): list(h.classes) for h in spec.heads}
    anomaly = run.config.data.anomaly_class
    held = res["n"] - res.get("n_labelled", res["n"]) if anomaly is not None and split == "test" else 0
    notes = [n for n in (status(run), f"the {split} split has only {len(data)} points: its figures are rough"
                         if len(data) < 100 else None,
                         f"accuracy is over the {res['n'] - held} points of the trained classes; the {held} others "
                         f"(anomaly class {anomaly}) have no class of the model (semivae anomaly scores them)"
                         if held else None) if n]
    return {"run": str(run.path), "split": split, "dataset": run.config.data.dataset, "model": run.config.model.model,
            "mode": run.config.model.run_name(), **classes, **res, **({"notes": notes} if notes else {})}


def _one(run):
    """The run of a one-element list (or the run itself); an empty list is refused."""
    if isinstance(run, (list, tuple)):
        if not run:
            raise UserError("no run given; pass a run directory, or several for an ensemble")
        return run[0]
    return run


def _evaluate_ensemble(runs: list, split: str, x, y, data_dir: str | None, iwae_k: int, device: str | None,
                       label_column: str | None) -> dict:
    if iwae_k:
        raise UserError("--iwae-k scores one model's likelihood; evaluate the ensemble's runs one at a time for it")
    members = load_members(runs, device)
    same_carve(members, split)
    if x is not None:
        datas, split = shared_reads(members, lambda m: labelled_inputs(m, x, y, label_column)), "given"
    else:
        datas = shared_reads(members, lambda m: m.split_data(split, data_dir))
    first = members[0]
    if not len(datas[0]):
        raise UserError(f"the {split} split of {first.config.data.dataset} is empty; evaluate labelled data (--data "
                        f"FILE) or another split (--split {'val' if split == 'test' else 'test'})")
    res = evaluate_members(members, datas, split)
    spec = first.spec
    classes = {spec.key("classes", h.name): list(h.classes) for h in spec.heads}
    notes = [n for n in [status(m) for m in members] if n]
    models = ", ".join(dict.fromkeys(m.config.model.model for m in members))
    return {"run": run_paths(members), "split": split, "dataset": first.config.data.dataset, "model": models,
            "mode": first.config.model.run_name(), "ensemble": len(members), **classes, **res,
            **({"notes": notes} if notes else {})}


def labelled_inputs(run: Run, x, y, label_column: str | None = None) -> ArrayData:
    """Inputs ``x`` with the first head's labels ``y`` (class names or values, -1 = unlabelled);
    without ``y``, a path's own labels (its sub-folders, label column (the run's, or
    ``label_column``) or ``y``: ``load_labelled``)."""
    if label_column is not None and not (y is None and isinstance(x, (str, Path))):
        raise UserError("label_column names the label column of a CSV given as x=; drop it, or give the CSV's path")
    if y is None and isinstance(x, (str, Path)) and not run.spec.heads:  # a plain VAE: its ELBO on the data
        return read_inputs(run, x)
    if y is None and isinstance(x, (str, Path)):
        info = input_info(run)
        data, y = load_labelled(x, {**info, "label_column": label_column} if label_column else info)
    else:
        data = read_inputs(run, x)
    if y is None:
        return data
    if not run.spec.heads:
        raise UserError(f"run {run.path} has no class layer to score labels y against; drop y")
    ya, _ = as_array(y, "y")
    if ya.ndim != 1 or len(ya) != len(data):
        raise UserError(f"y has shape {ya.shape} but there are {len(data)} inputs; give one label per input")
    names = list(run.spec.heads[0].classes)
    known = {n: i for i, n in enumerate(names)}
    values = [str(v) if isinstance(v, str) else class_name(v) for v in ya.tolist()]
    bad = [v for v in values if v not in known and v not in ("-1", "", "None", "nan")]
    if bad:
        where = f"{x} holds" if isinstance(x, (str, Path)) else "y holds"  # a file's labels, or the caller's y
        raise UserError(f"{where} the class {bad[0]!r}, which run {run.path} does not have; use its classes "
                        f"{names[:10]}")
    labels = data.labels.clone()
    labels[:, 0] = torch.tensor([known.get(v, -1) for v in values], dtype=torch.int64)
    return replace(data, labels=labels)


def iwae_nll_terms(model, data: ArrayData, k: int, n: int, batch_size: int = 128) -> np.ndarray:
    """-L_k (the IWAE bound, nats) for the first ``n`` points of ``data``: (n,)."""
    out, dev = [], model_device(model)
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        mask = data.mask(idx)
        out.append(-iwae_log_px(model, data.inputs(idx).to(dev), k, None if mask is None else mask.to(dev)).cpu())
    return torch.cat(out).numpy()


def read_inputs(run: Run, inputs) -> ArrayData:
    """New data of the run's training form, normalised alike: a path (the files the loaders
    read), an array, a tensor, a mapping of arrays (``{"x": ..., "lengths": ...}``), a data frame or an
    ArrayData (``semivae.data.load_inputs``)."""
    return load_inputs(inputs, input_info(run))


def input_info(run: Run) -> dict:
    """What the loaders need to read new data in the run's training form (``data/inputs.py``)."""
    return {**run.data_info, "n_heads": len(run.spec.heads), "any_length": run.config.arch.any_length}


def _predictions(run: Run | str | Path | list, inputs, device: str | None = None) -> tuple[list[Run], ArrayData, dict]:
    """The run (or an ensemble's runs), the inputs and the outputs on them (calibrated where a
    run has temperatures; an ensemble's class probabilities and targets averaged); refuses a
    model without class heads."""
    runs = list(run) if isinstance(run, (list, tuple)) and len(run) > 1 else [_one(run)]
    members = load_members(runs, device) if len(runs) > 1 else [as_run(runs[0], device)]
    if not members[0].model.heads:
        raise UserError(f"run {members[0].path} is an unsupervised model without a class layer; "
                        "train with --mode semi or supervised")
    datas = shared_reads(members, lambda m: read_inputs(m, inputs))
    outs = [member_outputs(m, d) for m, d in zip(members, datas)]
    if len(outs) > 1:
        targets = [o["targets"] for o in outs if "targets" in o]
        outs[0] = {"proba": average([o["proba"] for o in outs]),
                   **({"targets": np.mean(targets, axis=0)} if len(targets) == len(outs) else {})}
    return members, datas[0], outs[0]


def predict(run: Run | str | Path | list, inputs, head: str | None = None,
            device: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Class probabilities (N, K) of one head (the only one, unless named) for ``inputs``
    (a path of the training formats; an array, tensor or nested list; a data frame, columns
    matched by name; series of many lengths as a list of (T_i, C) arrays or
    ``{"x": ..., "lengths": ...}``), and that head's class names (text, as the run names them).
    Given a list of runs, their ensemble's averaged probabilities."""
    members, _, out = _predictions(run, inputs, device)
    run = members[0]
    names = [h.name for h in run.model.heads]
    if head is None and len(names) > 1:
        raise UserError(f"run {run.path} has heads {names}; name the one to predict with head=")
    name = names[0] if head is None else head
    if name not in names:
        raise UserError(f"run {run.path} has no head {name!r}; choose one of {names}")
    return out["proba"][name], list(run.model.heads[names.index(name)].classes)


def predict_all(run: Run | str | Path | list, inputs, device: str | None = None) -> str:
    """CSV text of every prediction the run makes: classes per head, for a model with a
    regression head its continuous targets in the data's units, and where the run has an
    unknown-input threshold the score and the ``unknown`` flag (1 = unlike the training data);
    for a table or series with missing values, how many each row misses (``missing``). Given a list of
    runs, their ensemble's averages (no unknown flag: each run has its own)."""
    members, data, out = _predictions(run, inputs, device)
    run, info = members[0], members[0].data_info
    targets = None
    if "targets" in out:
        targets = out["targets"] * np.asarray(info["target_std"]) + np.asarray(info["target_mean"])
    gaps = data.gaps()
    missing = None if gaps is None else gaps.flatten(1).sum(1).numpy()
    return proba_csv(run, out["proba"], targets, info.get("target_names"), ids=row_ids(data),
                     unknown=unknown_flags(run, data) if len(members) == 1 else None, missing=missing)


def row_ids(data: ArrayData) -> list[str]:
    """Each row's id: the data's own (CSV id column, image file name), else its row number."""
    return [str(v) for v in data.ids] if data.ids is not None else [str(i) for i in range(len(data))]


def proba_csv(run: Run, proba: dict[str, np.ndarray], targets: np.ndarray | None = None,
              target_names: list[str] | None = None, ids: list[str] | None = None,
              unknown: tuple[np.ndarray, np.ndarray] | None = None, missing: np.ndarray | None = None) -> str:
    """CSV text: row and id, then per head its predicted class and one probability column per
    class (``predicted``, ``p_<class>``; with several heads ``predicted/<head>``,
    ``p_<class>/<head>``), then one column per predicted continuous target, then
    ``unknown_score`` and ``unknown`` when given, then ``missing`` (cells a row misses) when given."""
    spec = run.spec
    heads = [h for h in spec.heads if h.name in proba]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(target_names or []) if targets is not None else []
    header = ["row", "id"]
    for h in heads:
        header += [spec.key("predicted", h.name)] + [spec.key(f"p_{c}", h.name) for c in h.classes]
    w.writerow(header + names + (["unknown_score", "unknown"] if unknown is not None else []) +
               (["missing"] if missing is not None else []))
    n = len(next(iter(proba.values())))
    ids = ids or [str(i) for i in range(n)]
    for i in range(n):
        row: list = [i, ids[i]]
        for h in heads:
            p = proba[h.name][i]
            row += [h.classes[int(p.argmax())]] + [f"{v:.6g}" for v in p]
        row += [f"{v:.6g}" for v in targets[i]] if targets is not None else []
        row += [f"{unknown[0][i]:.6g}", int(unknown[1][i])] if unknown is not None else []
        row += [int(missing[i])] if missing is not None else []
        w.writerow(row)
    return buf.getvalue()
