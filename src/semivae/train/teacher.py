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
from ..eval.ensemble import average, member_outputs, shared_reads
from ..runs import Run, as_run
from ..runs.run import preprocessing


def _training_points(run: Run):
    """A run's whole training file (validation carve included), normalised as it trained."""
    shift, scale = preprocessing(run.data_info)
    return replace(run.dataset().train, shift=shift, scale=scale)


def _same_draw(a: Split, b: Split) -> bool:
    return (np.array_equal(a.val, b.val) and np.array_equal(a.pool, b.pool)
            and np.array_equal(a.val_pool, b.val_pool))


def check_teacher(run: Run, bundle: DataBundle, split: Split) -> None:
    """Refuses a teacher that predicts other classes, read other data or knew other labels."""
    if not run.model.heads:
        raise UserError(f"--teacher {run.path} has no class layer; a teacher must be a run trained with labels")
    ours, theirs = list(bundle.heads[0].classes), list(run.spec.heads[0].classes)
    if ours != theirs:
        raise UserError(f"--teacher {run.path} predicts {theirs[:5]}... but this run's classes are {ours[:5]}...; "
                        "train the student on the teacher's data and label column")
    y = run.dataset().train.labels
    if len(y) != len(bundle.train) or not torch.equal(y[:, 0], bundle.train.labels[:, 0]):
        raise UserError(f"--teacher {run.path} trained on other data ({len(y)} training points, this run has "
                        f"{len(bundle.train)}); give the student the teacher's --dataset")
    if not _same_draw(run.split, split):
        raise UserError(f"--teacher {run.path} drew other labels or another validation carve than this run, so it "
                        "would teach labels beyond this run's budget; keep the teacher's --labels, --val-labels and "
                        "--split-seed (or its --seed): `semivae distill` copies them unless you override them")


def teacher_targets(paths: list[str], bundle: DataBundle, split: Split) -> torch.Tensor:
    """The teachers' averaged, calibrated probabilities of column 0's classes on every point of
    ``bundle.train``: (N, K) float32."""
    if isinstance(bundle.train, PackedData):
        raise UserError("--teacher works on data held in memory, not on a packed set on disk; drop --teacher")
    teachers = [as_run(p) for p in paths]
    for t in teachers[1:]:
        if not _same_draw(t.split, teachers[0].split):
            raise UserError(f"teachers {teachers[0].path} and {t.path} drew different labels; train an ensemble's "
                            "members with one --split-seed")
    for t in teachers:
        check_teacher(t, bundle, split)
    datas = shared_reads(teachers, _training_points)
    name = bundle.heads[0].name
    probas = [member_outputs(t, d)["proba"] for t, d in zip(teachers, datas)]
    return torch.from_numpy(average(probas)[name]).float()  # (N, K)


def check_student(model: torch.nn.Module, cfg) -> None:
    """Refuses a run that cannot learn from a teacher, before the teachers are read."""
    if not cfg.data.unlabelled:
        raise UserError("--teacher teaches on the unlabelled points, which --no-unlabelled drops; drop one of them")
    if not any(getattr(m, "teacher_weight", None) is not None for m in model.modules()):
        raise UserError(f"--teacher: model {cfg.model.model} has no class layer to teach here; use --model classifier "
                        "(the student `semivae distill` trains) or a semi-supervised model")


def with_teacher(bundle: DataBundle, split: Split, paths: list[str] | None) -> DataBundle:
    """``bundle`` with the teachers' soft targets on its training points (unchanged without)."""
    if not paths:
        return bundle
    return replace(bundle, train=replace(bundle.train, soft=teacher_targets(paths, bundle, split)))
