"""``semivae distill RUN [RUN ...]``: a classifier taught by trained runs, as a new run.

The new run is the noisy student of train/teacher.py: it reads the teachers' data and label
draw (their dataset, budget, validation carve and split seed, so it knows exactly the labels
they knew), is a classifier (``--model classifier``) on a conv encoder for images (the conv
preset's) or the teachers' kind of encoder otherwise, and learns the teachers' averaged
probabilities on every unlabelled point, each input perturbed by shifts of up to 2 pixels
(``--augment-*``; add ``--augment-flip`` where mirrored images keep their class), with one
labelled point per eight taught ones in a batch (``--label-ratio 0.125``). Any train option
overrides these. Everything that reads runs reads it like any other, without its teachers.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..config import RunConfig, merge, nest, resolve
from ..errors import UserError
from ..runs import Run, as_run
from .training import train

# what the student starts from, measured in docs/benchmarks.md section 11 (Fashion-MNIST, 100 labels)
STUDENT = {"model": {"model": "classifier", "augment_shift": 2.0, "augment_rotate": 0.0, "augment_elastic": 0.0},
           "data": {"label_ratio": 0.125}}
STUDENT_OWN = ("teacher", "label_ratio", "unlabelled")  # the data options the student does not take over


def distill_config(teachers: list[Run], overrides: dict, file_cfg: dict | None = None) -> RunConfig:
    """The first teacher's data and label draw, the student's settings, then a config file's
    sections, then ``overrides`` (flat option names)."""
    if not teachers:
        raise UserError("distill needs at least one teacher run; give its run directory")
    first = teachers[0].config
    data = {k: v for k, v in asdict(first.data).items() if k not in STUDENT_OWN}
    data["split_seed"] = first.train.seed if first.data.split_seed is None else first.data.split_seed
    data["teacher"] = [str(t.path) for t in teachers]
    arch = "conv" if teachers[0].kind == "image" else first.arch.arch
    base = merge({"preset": "default", "arch": {"arch": arch}, "data": data}, STUDENT)
    return resolve(merge(base, file_cfg or {}), nest(overrides))


def distill(teachers, *, out: str | Path | None = None, progress: bool = True, **overrides) -> Path:
    """Train a classifier on the teachers' probabilities (one run or a list of runs, averaged);
    keyword overrides use the CLI's option names. Returns the new run directory."""
    runs = [as_run(t) for t in ([teachers] if isinstance(teachers, (str, Path, Run)) else teachers)]
    return train(distill_config(runs, overrides), out=out, progress=progress)
