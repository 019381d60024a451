"""Ensembles: several runs' class probabilities averaged (a deep ensemble).

Train the members on the same labels, one ``--split-seed`` and a different ``--seed`` each (the
seed draws the initial weights, the batches and every random mask), then give ``evaluate`` or
``predict`` all their directories. For each head

    p(y | x) = 1/M sum_m p_m(y | x)        # (N, K), each member calibrated by its own temperature

Averaging members that err differently lowers the variance that one training run carries; it
costs M trainings and M forward passes. The members must predict the same heads with the same
classes; for the validation or training split they must share its carve too.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..data import ArrayData
from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from .outputs import apply_temperature, model_outputs, score_heads


def load_members(runs, device: str | None = None) -> list[Run]:
    """The runs of an ensemble, loaded and checked to agree: at least two, every one with the
    first one's heads and classes."""
    members = [as_run(r, device) for r in runs]
    if len(members) < 2:
        raise UserError("an ensemble needs at least two runs; give several run directories")
    first = members[0]
    if not first.spec.heads:
        raise UserError(f"run {first.path} has no class layer to average; ensembles need --mode semi or supervised")
    heads = [(h.name, list(h.classes)) for h in first.spec.heads]
    for m in members[1:]:
        other = [(h.name, list(h.classes)) for h in m.spec.heads]
        if other != heads:
            raise UserError(f"run {m.path} predicts {_describe(other)} but run {first.path} {_describe(heads)}; "
                            "an ensemble's runs must share their heads and classes")
    return members


def _describe(heads: list[tuple[str, list[str]]]) -> str:
    return "; ".join(f"{name} ({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''})"
                     for name, classes in heads) or "no classes"


def calibrated(run: Run, proba: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A run's class probabilities {head: (N, K)} through its temperatures, where it has them."""
    return {name: apply_temperature(p, run.temperatures[name]) if name in run.temperatures else p
            for name, p in proba.items()}


def member_outputs(run: Run, data: ArrayData) -> dict:
    """One run's outputs on ``data`` (``model_outputs`` without the ELBO), its class
    probabilities calibrated."""
    out = model_outputs(run.model, data, device=model_device(run.model), elbo=False)
    return {**out, "proba": calibrated(run, out.get("proba", {}))}


def shared_reads(members: list[Run], read: Callable[[Run], ArrayData]) -> list[ArrayData]:
    """``read(member)`` for each member, read once for all members whose data.json equals the
    first's (the same data, normalised alike): an ensemble's members reuse one reading."""
    first = read(members[0])
    return [first] + [first if m.data_info == members[0].data_info else read(m) for m in members[1:]]


def average(probas: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The members' probabilities averaged per head: [{head: (N, K)}] * M -> {head: (N, K)}."""
    return {name: np.mean([p[name] for p in probas], axis=0) for name in probas[0]}


def evaluate_members(members: list[Run], datas: list[ArrayData], split: str) -> dict:
    """Scores of the averaged probabilities on one split (each member's own reading of it, which
    must hold the same points and labels), with each member's accuracy and log loss beside."""
    first, data = members[0], datas[0]
    for m, d in zip(members[1:], datas[1:]):
        if len(d) != len(data) or not np.array_equal(d.labels.numpy(), data.labels.numpy()):
            fix = ("train the members on one dataset" if split in ("test", "given") else
                   "train the members with one --split-seed on one dataset, or evaluate on the test split")
            raise UserError(f"run {m.path} reads other points or labels in the {split} split ({len(d)} points) than "
                            f"run {first.path} ({len(data)}): an ensemble's members score the same points; {fix}")
    probas = [member_outputs(m, d)["proba"] for m, d in zip(members, datas)]
    each = [{"run": str(m.path), **{k: v for k, v in score_heads(m.spec, data, p).items()
                                   if k.split("/")[0] in ("accuracy", "log_loss")}}
            for m, p in zip(members, probas)]
    res = {"n": len(data), **score_heads(first.spec, data, average(probas), confusion=True)}
    return {**res, "members": each}


def same_carve(members: list[Run], split: str) -> None:
    """Refuses members whose validation carves differ, for the ``val`` and ``train`` splits."""
    if split == "test":
        return
    first = members[0]
    for m in members[1:]:
        if not np.array_equal(m.split.val, first.split.val):
            raise UserError(f"runs {first.path} and {m.path} carved different validation points, so their {split} "
                            "splits differ; train the members with one --split-seed, or evaluate on the test split")


def run_paths(members: list[Run]) -> str:
    return " + ".join(str(m.path) for m in members)
