"""Distillation: trained runs teach a new run on its unlabelled points (``--teacher``).

    semivae train --teacher RUN[,RUN,...] --model classifier --arch conv ...     (or `semivae distill`)

Each teacher's class probabilities on every training point, calibrated by its own temperature
where it has one, are averaged over the teachers (an ensemble teaches as one):

    p_T(y | x_n) = 1/M sum_m p_m(y | x_n)           # (N, K), column 0's classes

and ride along with the data as each point's soft target; the model's teacher hook
(models/hooks.py) adds CE(p_T(y|x), pi(x')) on the points whose label is withheld, x' being the
input as the batch feeds it (perturbed only where the model perturbs it). A student that sees
its inputs through noise (a conv classifier with dropout, batch norm and shifts) can end above
its teacher (self-training with a noisy student, Xie et al. 2020; docs/benchmarks.md section 11).

The student trains on the teachers' dataset and label draw: a teacher's probabilities carry the
labels it learned from, so a student with other labels would learn from more than its budget.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data import DataBundle
from ..data.packed import PackedData
from ..data.splits import Split
from ..errors import UserError
from ..eval.ensemble import average, member_outputs
from ..runs import Run, as_run

# what data.json says of the data itself: equal for teacher and student, the student's reading of
# the training points is the teacher's (same file, classes and normalisation), so it is read once
DATA_KEYS = ("dataset", "source", "kind", "shape", "heads", "shift", "scale", "label_column", "anomaly_class",
             "n_train", "n_val")


def _same_draw(a: Split, b: Split) -> bool:
    return (np.array_equal(a.val, b.val) and np.array_equal(a.pool, b.pool)
            and np.array_equal(a.val_pool, b.val_pool))


def check_teacher(run: Run, info: dict, split: Split) -> None:
    """Refuses a teacher without classes, one that read other data (``info``: the student's
    data.json) or one that knew other labels."""
    if not run.model.heads:
        raise UserError(f"teacher {run.path} has no class layer; a teacher (--teacher, or a run given to distill) "
                        "must be a run trained with labels")
    differ = [k for k in DATA_KEYS if run.data_info.get(k) != info.get(k)]
    if differ:
        raise UserError(f"--teacher {run.path} trained on other data (its {', '.join(differ)} differ from this run's); "
                        "give the student the teacher's --dataset and data options, or use `semivae distill`")
    if not _same_draw(run.split, split):
        raise UserError(f"--teacher {run.path} drew other labels or another validation carve than this run, so it "
                        "would teach labels beyond this run's budget; keep the teacher's --labels, --val-labels and "
                        "--split-seed (or its --seed): `semivae distill` copies them unless you override them")


def teacher_targets(paths: list[str], bundle: DataBundle, split: Split, info: dict) -> torch.Tensor:
    """The teachers' averaged, calibrated probabilities of column 0's classes on every point of
    ``bundle.train`` (which every teacher read alike: ``check_teacher``): (N, K) float32."""
    if isinstance(bundle.train, PackedData):
        raise UserError("--teacher works on data held in memory, not on a packed set on disk; drop --teacher")
    teachers = [as_run(p) for p in paths]
    for t in teachers[1:]:
        if not _same_draw(t.split, teachers[0].split):
            raise UserError(f"teachers {teachers[0].path} and {t.path} drew different labels; train an ensemble's "
                            "members with one --split-seed")
    for t in teachers:
        check_teacher(t, info, split)
    probas = [member_outputs(t, bundle.train)["proba"] for t in teachers]
    return torch.from_numpy(average(probas)[bundle.heads[0].name]).float()  # (N, K)


def check_student(model: torch.nn.Module, cfg) -> None:
    """Refuses a run that cannot learn from a teacher, before the teachers are read."""
    if not cfg.data.unlabelled:
        raise UserError("--teacher teaches on the unlabelled points, which --no-unlabelled drops; drop one of them")
    if not any(getattr(m, "teacher_weight", None) is not None for m in model.modules()):
        raise UserError(f"--teacher: model {cfg.model.model} has no class layer to teach here; use --model classifier "
                        "(the student `semivae distill` trains) or a semi-supervised model")


def with_teacher(bundle: DataBundle, split: Split, info: dict, paths: list[str] | None) -> DataBundle:
    """``bundle`` with the teachers' soft targets on its training points (unchanged without)."""
    if not paths:
        return bundle
    return replace(bundle, train=replace(bundle.train, soft=teacher_targets(paths, bundle, split, info)))
