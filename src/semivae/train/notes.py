"""The notes a run prints and keeps in summary.json: what the user's data or options did that they
may not expect (labels not trained on, pixels in other units, targets not learnt, missing values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..data import DataBundle
from ..data.splits import Split
from ..models import BaseModel
from ..runs.run import ARRAYS


def notes(bundle: DataBundle, split: Split, cfg: RunConfig, model: BaseModel) -> list[str]:
    """Every note of a run, in the order they print."""
    budget = budget_notes(bundle, split, cfg) if model.heads else []  # a plain VAE trains on no label
    return budget + anomaly_notes(bundle, cfg) + colour_notes(bundle) + pixel_notes(bundle) + missing_notes(bundle) + \
        target_notes(bundle, model, cfg)


def anomaly_notes(bundle: DataBundle, cfg: RunConfig) -> list[str]:
    """An --anomaly-class given as a place in the class names, not as a name: which class it is;
    unlabelled training points, which may hold the left-out class."""
    given, name = cfg.data.anomaly_class, bundle.meta.get("anomaly_class")
    if given is None:
        return []
    notes = [] if given == name else [f"--anomaly-class {given} is the class at place {given} of the sorted class "
                                      f"names (from 0): {name!r} is left out; give the name to be sure"]
    unknown = int((bundle.train.labels[:, 0] < 0).sum())
    if unknown:
        notes.append(f"{unknown} training points have no label, so points of class {name!r} among them stay in "
                     "training as normal ones (and in knn's bank); label them, or leave them out, for a clean detector")
    return notes


def budget_notes(bundle: DataBundle, split: Split, cfg: RunConfig) -> list[str]:
    """Where labelled points went when they are not trained on, and how to keep them."""
    notes = []
    d = cfg.data
    everything = d.every_label
    carved = bundle.meta.get("test_carved", 0)
    has_label = (bundle.train.labels >= 0).any(1).numpy()
    hidden = int(has_label[split.val].sum()) - len(split.val_pool)
    if everything and (carved or hidden > 0) and bundle.heads:
        keep = ("pass x_test= and y_test=, or carve_test=False" if Path(d.dataset).name == ARRAYS else  # from Python
                "give --test-data (a folder or .csv) or save x_test / y_test in the .npz")
        where = ([f"{carved} went to the test split (20 % of each class, as the data has none: to keep them, "
                  f"{keep})"] if carved else []) + \
                ([f"{hidden} to validation with their labels hidden (--val-fraction {d.val_fraction}: use "
                  "--val-fraction 0 to train on them, or --val-labels K to validate on K)"] if hidden > 0 else []) + \
                ([f"{len(split.val_pool)} to validation with their labels (--val-labels)"]
                 if len(split.val_pool) else [])
        total = len(split.pool) + carved + max(hidden, 0) + len(split.val_pool)
        notes.append(f"of the {total} labelled points, {len(split.pool)} are trained on: {' and '.join(where)}")
    unnamed = int(has_label.sum()) - len(np.union1d(split.pool, split.val_pool)) if d.label_ids else 0
    if unnamed > 0:
        notes.append(f"{unnamed} labelled points of the data are not named by --label-ids: they train as unlabelled "
                     "(name them in the file to train on their labels)")
    both = bundle.meta.get("labelled_and_not")
    if both:
        notes.append(f"{both['classes'] + both['unlabelled']} images are in two folders (first: {both['first']}): "
                     f"{both['classes']} in two classes (all but one label is wrong), {both['unlabelled']} in a class "
                     "and in unlabelled/ too (trained twice); keep each image in one folder")
    shared = bundle.meta.get("test_in_train")
    if shared:
        notes.append(f"{shared['n']} test images are also in the training folder (first: {shared['first']}), so "
                     "the test figures read high; keep the test set apart")
    if bundle.meta.get("test_empty"):
        notes.append(f"the test split is empty: {bundle.meta['test_empty']}, so no class can be held out; evaluate "
                     "needs a test split: label at least two points of every class, or give --test-data "
                     "(x_test / y_test in a .npz)")
    return notes


def colour_notes(bundle: DataBundle) -> list[str]:
    """A folder of images mostly in one colour kind with a few of the other: how they were read."""
    m = bundle.meta.get("mixed_colour")
    if not m:
        return []
    some = f"{m['odd']} of the {m['n']} training images {'is' if m['odd'] == 1 else 'are'}"
    if m["channels"] == 1:
        return [f"{some} in colour (first: {m['first']}), the rest grey: all are read as grey (the colour ones by "
                "their luminance)"]
    return [f"{some} grey (first: {m['first']}), the rest in colour: all are read as RGB"]


def pixel_notes(bundle: DataBundle) -> list[str]:
    """Integer images far darker than 0..255 allows: most likely pixels in other units (0..16)."""
    x = bundle.train.x
    if bundle.kind != "image" or x.dtype != torch.uint8 or not len(x) or bundle.train.scale != 1 / 255:
        return []
    top = int(x.max())
    if top >= 64:
        return []
    return [f"the training images' pixels are integers up to {top}, read as 0..255 (255 = white), so the images are "
            f"nearly black; if {top} is white, save x as floats in [0, 1] (x / {top})"]


def target_notes(bundle: DataBundle, model: BaseModel, cfg: RunConfig) -> list[str]:
    """Continuous targets in the data that the model does not learn."""
    if bundle.train.targets is None or model.n_targets:
        return []
    names = ", ".join(bundle.meta.get("target_names") or ["t"])
    return [f"the data's continuous targets ({names}) are not learnt by --model {cfg.model.model}; "
            "--model pspec learns them"]


def missing_notes(bundle: DataBundle) -> list[str]:
    """How much of a table or of the series is missing, and how the model reads around it."""
    gaps = bundle.train.gaps()
    if gaps is None:
        return []
    n, total = int(gaps.sum()), int(bundle.train.observed_mask().sum()) + int(gaps.sum())
    if bundle.kind == "vector":
        return [f"{n} of the {total} training feature cells ({n / total:.1%}) are missing; the model reads around "
                "them (README: Missing values in a table), and `semivae impute` fills them in"]
    return [f"{n} of the {total} training values (steps x channels) ({n / total:.1%}) are missing; the encoder reads "
            "them interpolated, the likelihood skips them (README: Missing values in series)"]
