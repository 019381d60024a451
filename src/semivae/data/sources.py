"""The public loading API: named data sets and user data files -> :class:`DataBundle`.

``load_dataset`` looks the name up in :data:`DATASETS` (``digits``, ``mnist``,
``fashion-mnist``); anything else must be an existing path, read by its form: an ``.npz``
file, a ``.csv`` file or a folder of images. ``load_inputs`` reads new data of the same
form for prediction, with the training normalisation.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import UserError
from .dataset import ArrayData, DataBundle, LabelColumn, data_kind
from .download import locate_or_download
from .files import input_image_files, read_csv, read_image_folder, read_images, read_npz, read_npz_inputs, read_npz_series
from .factor_files import find_norb, is_dsprites_file, read_dsprites, read_smallnorb
from .factors import load_sprites
from .packed import is_packed, load_packed
from .sequences import (is_har_folder, load_aeon, load_har_folder, load_sequential_images, npz_sequences,
                        sequence_inputs)
from .idx import read_idx
from .splits import carve_note, carve_test

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
STD_FLOOR = 1e-8

Loader = Callable[..., DataBundle]  # (data_dir, download, label_column) -> DataBundle


# ------------------------------------------------------------------ named data sets


def _load_digits(data_dir: str | None, download: bool, label_column: str) -> DataBundle:
    """scikit-learn's bundled 8x8 digits: uint8 values 0..16, fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)

    def part(idx: np.ndarray) -> ArrayData:
        return ArrayData(torch.from_numpy(x[idx]), torch.from_numpy(y[idx]), 0.0, 1.0 / 16.0)

    meta = {"source": "digits", "feature_names": None, "label_column": label_column}
    heads = [LabelColumn("label", tuple(str(i) for i in range(10)))]
    return DataBundle("digits", part(tr), part(te), heads, "image", "bernoulli", meta)


def _load_idx_dataset(
    name: str, classes: list[str], data_dir: str | None, download: bool, label_column: str
) -> DataBundle:
    """MNIST-style data set from its four IDX files (found locally or downloaded)."""
    files = locate_or_download(name, data_dir, download)
    parts = []
    for split in ("train", "t10k"):
        img_path, lab_path = files[f"{split}-images-idx3-ubyte"], files[f"{split}-labels-idx1-ubyte"]
        x, y = read_idx(img_path, expect=(0x08, 3)), read_idx(lab_path, expect=(0x08, 1))
        if x.ndim != 3 or x.dtype != np.uint8:
            raise UserError(f"{img_path} holds {x.dtype} of shape {x.shape}, not uint8 images; replace it")
        if y.ndim != 1:
            raise UserError(f"{lab_path} holds shape {y.shape}, not a label vector; replace it")
        if len(x) != len(y):
            raise UserError(f"{img_path} has {len(x)} images but {lab_path} {len(y)} labels; replace the mismatched file")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise UserError(f"{lab_path} has labels outside 0..{len(classes) - 1}; replace it with an intact copy")
        parts.append(ArrayData(torch.from_numpy(x[:, None]), torch.from_numpy(y.astype(np.int64)), 0.0, 1.0 / 255.0))
    if parts[0].shape != parts[1].shape:
        raise UserError(f"{name} train images are {parts[0].shape} but test images {parts[1].shape}; replace the files")
    meta = {"source": name, "feature_names": None, "label_column": label_column,
            "files": {k: str(v) for k, v in files.items()}}
    return DataBundle(name, parts[0], parts[1], [LabelColumn("label", tuple(classes))], "image", "bernoulli", meta)


DATASETS: dict[str, Loader] = {
    "digits": _load_digits,
    "mnist": partial(_load_idx_dataset, "mnist", MNIST_CLASSES),
    "fashion-mnist": partial(_load_idx_dataset, "fashion-mnist", FASHION_CLASSES),
    "sequential-mnist": lambda *a: load_sequential_images("mnist", _load_idx_dataset("mnist", MNIST_CLASSES, *a)),
    "sequential-fashion-mnist": lambda *a: load_sequential_images(
        "fashion-mnist", _load_idx_dataset("fashion-mnist", FASHION_CLASSES, *a)),
    "basic-motions": lambda *a: load_aeon("basic-motions", "load_basic_motions"),
    "japanese-vowels": lambda *a: load_aeon("japanese-vowels", "load_japanese_vowels"),
    "dsprites": lambda *a: load_sprites("dsprites"),
    "dsprites-small": lambda *a: load_sprites("dsprites-small"),
}


def load_dataset(
    name_or_path: str, data_dir: str | None = None, *, label_column: str = "label", download: bool = True
) -> DataBundle:
    """Load a named data set (see :data:`DATASETS`) or user data from a path.

    Paths are read by form: ``.npz`` (``x``, optional ``y``/``x_test``/``y_test``/``classes``;
    with ``lengths`` the rows are sequences), ``.csv`` (numeric features plus
    ``label_column``), a folder in the UCI-HAR layout, or a folder with one sub-folder of
    images per class (plus optional ``unlabelled/``). Without a test split in the data, a
    stratified 20 % of the labelled points is held out with a fixed seed.
    """
    loader = DATASETS.get(name_or_path.strip().lower())
    if loader is not None:
        return loader(data_dir, download, label_column)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if is_packed(path):
            return load_packed(path)
        if is_har_folder(path):
            return load_har_folder(path)
        return read_smallnorb(path) if find_norb(path) else _load_image_folder(path, label_column)
    if path.is_file() and is_dsprites_file(path):
        return read_dsprites(path)
    if path.is_file():
        file_loader = FILE_LOADERS.get(path.suffix.lower())
        if file_loader is None:
            raise UserError(f"{path} is not a .npz or .csv file or an image folder; convert it to one of those forms")
        return file_loader(path, label_column)
    raise UserError(
        f"unknown data set '{name_or_path}' and no such file or folder; "
        f"use one of {', '.join(DATASETS)} or a path to a .npz file, .csv file or image folder"
    )


# ----------------------------------------------------------------------- user files


def _load_npz(path: Path, label_column: str) -> DataBundle:
    a = read_npz(path)
    n_cols = len(a.label_names)
    y = a.y if a.y is not None else np.full((len(a.x), 0), -1, dtype=np.int64)
    heads = []
    for f, name in enumerate(a.label_names):
        columns = [v[:, f] for v in (y, a.y_test) if v is not None]
        labelled = [c[c >= 0] for c in columns]
        n_max = max((int(c.max()) + 1 for c in labelled if len(c)), default=0)
        classes = a.classes[f] if a.classes[f] is not None else [str(i) for i in range(n_max)]
        what = "y" if n_cols == 1 else f"label column {name!r} of y"
        if a.classes[f] is None and n_max:  # classes inferred from 0..max: a gap is a labelling mistake
            missing = sorted(set(range(n_max)) - set(np.concatenate(labelled).tolist()))
            if missing:
                raise UserError(f"{what} in {path} uses labels up to {n_max - 1} but none is {missing[0]}; "
                                "number the classes 0..K-1 without gaps or list every class name in 'classes'")
        for part, v in (("", y), (" (test)", a.y_test)):
            if v is not None:
                _check_labels(v[:, f], len(classes), f"{what}{part} in {path}")
        heads.append(LabelColumn(name, tuple(classes)))
    if a.sequence:
        test = None if a.x_test is None else (a.x_test, a.lengths_test, a.y_test)
        return npz_sequences(path, a.x, a.lengths, y, test, heads)
    return _assemble(path, a.x, y, a.x_test, a.y_test, heads, label_column, None,
                     targets=(a.t, a.t_test, a.target_names))


def _check_labels(y: np.ndarray, k: int, what: str) -> None:
    bad = y[(y < -1) | (y >= k)]
    if len(bad):
        raise UserError(
            f"{what} has label {int(bad[0])} outside 0..{k - 1} (-1 = unlabelled); "
            "fix the labels or list every class name in 'classes'"
        )


def _load_image_folder(path: Path, label_column: str) -> DataBundle:
    x, y, classes = read_image_folder(path)
    return _assemble(path, x, y[:, None], None, None, [LabelColumn("label", tuple(classes))], label_column, None)


def _load_csv(path: Path, label_column: str) -> DataBundle:
    x, cells, names = read_csv(path, label_column)
    y, classes = encode_labels(cells or [])
    head = label_column.replace(".", "_").replace("/", "_")  # a head name is a layer name: no dots
    return _assemble(path, x, y[:, None], None, None, [LabelColumn(head, tuple(classes))], label_column, names)


FILE_LOADERS: dict[str, Callable[[Path, str], DataBundle]] = {".npz": _load_npz, ".csv": _load_csv}


def encode_labels(cells: list[str]) -> tuple[np.ndarray, list[str]]:
    """Label cells -> (int64 labels, class names). ``""`` (and ``-1`` for integer labels)
    means unlabelled; classes are the sorted distinct values, numerically if all integers."""
    values = {c for c in cells if c != ""}
    try:
        as_int = {c: int(c) for c in values}
    except ValueError:
        as_int = None
    if as_int is not None:
        values = {c for c in values if as_int[c] != -1}
        names = sorted(values, key=lambda c: as_int[c])
    else:
        names = sorted(values)
    index = {c: i for i, c in enumerate(names)}
    return np.array([index.get(c, -1) for c in cells], dtype=np.int64), names


def _assemble(
    path: Path, x: np.ndarray, y: np.ndarray, x_test: np.ndarray | None, y_test: np.ndarray | None,
    heads: list[LabelColumn], label_column: str, feature_names: list[str] | None,
    targets: tuple[np.ndarray | None, np.ndarray | None, list[str] | None] = (None, None, None),
) -> DataBundle:
    """Split (if no test given), normalise, and wrap user arrays (labels (N, F)) into a bundle.

    Continuous ``targets`` (t, t_test, names) are standardised with the training split's
    mean and std (saved in ``meta``), so a model's N(0, 1) prior on them fits.
    """
    if len(x) == 0:
        raise UserError(f"{path} holds no samples; add data to it")
    t, t_test, target_names = targets
    carve: dict = {}
    if x_test is None or y_test is None:
        tr, te = carve_test(y[:, 0] if y.shape[1] else np.full(len(y), -1))
        carve = carve_note(y[:, 0] if y.shape[1] else None, te, heads)
        x, y, x_test, y_test = x[tr], y[tr], x[te], y[te]
        t, t_test = (None, None) if t is None else (t[tr], t[te])
    t_mean = t_std = None
    if t is not None:
        if np.isnan(t).all(0).any():
            raise UserError(f"a target column in {path} has no observed value; drop it or observe it somewhere")
        t_mean, t_std = np.nanmean(t, 0), np.maximum(np.nanstd(t, 0), STD_FLOOR)
        t_test = t_test if t_test is not None else np.full((len(x_test), t.shape[1]), np.nan, np.float32)
    tabular = x.ndim == 2
    shift: torch.Tensor | float
    scale: torch.Tensor | float
    if tabular:
        mean, std = x.mean(axis=0, dtype=np.float64), x.std(axis=0, dtype=np.float64)
        shift = torch.from_numpy(mean.astype(np.float32))
        scale = torch.from_numpy((1.0 / np.maximum(std, STD_FLOOR)).astype(np.float32))
    else:
        shift, scale = 0.0, (1.0 / 255.0 if x.dtype == np.uint8 else 1.0)

    def part(xa: np.ndarray, ya: np.ndarray, ta: np.ndarray | None) -> ArrayData:
        tt = None if ta is None else torch.from_numpy(((ta - t_mean) / t_std).astype(np.float32))
        return ArrayData(torch.from_numpy(np.ascontiguousarray(xa)), torch.from_numpy(ya.astype(np.int64)), shift, scale, tt)

    meta = {"source": str(path.resolve()), "feature_names": feature_names, "label_column": label_column, **carve}
    if t is not None:
        meta.update(target_names=target_names, target_mean=t_mean.tolist(), target_std=t_std.tolist())
    kind, likelihood = ("vector", "gaussian") if tabular else ("image", "bernoulli")
    return DataBundle(path.stem, part(x, y, t), part(x_test, y_test, t_test), heads, kind, likelihood, meta)


# ----------------------------------------------------------------------- prediction


def load_inputs(path: str, bundle_like: dict[str, Any]) -> ArrayData:
    """Read new inputs of the training data's form, for prediction (all labels -1).

    ``bundle_like`` gives ``kind``, ``shape`` (per sample), ``shift``/``scale`` (training
    normalisation, floats or lists), ``label_column`` and ``feature_names`` (CSV or None);
    the labels come back as one all-missing column per head (``n_heads``).
    Accepts a ``.npz`` (key ``x``), a folder of images (directly in it, else in its
    sub-folders; sorted order, see :func:`files.input_image_files`) or a ``.csv``.
    """
    p = Path(path).expanduser()
    kind, shape = data_kind(bundle_like["kind"]), tuple(int(s) for s in bundle_like["shape"])
    shift, scale = _param(bundle_like.get("shift", 0.0)), _param(bundle_like.get("scale", 1.0))
    suffix = "dir" if p.is_dir() else p.suffix.lower() if p.is_file() else None
    forms = {"image": ("dir", ".npz"), "vector": (".csv", ".npz"), "sequence": (".npz",)}.get(kind, ())
    if suffix is None:
        raise UserError(f"no such file or folder: {p}; check the path")
    if suffix not in forms:
        raise UserError(f"{p} is not a form for {kind} data; give a {' or '.join(f.replace('dir', 'folder') for f in forms)}")
    n_heads = int(bundle_like.get("n_heads", 1))
    if kind == "sequence":
        x, lengths = sequence_inputs(*read_npz_series(p), shape[0], shape[1], f"x in {p}")
        return ArrayData(torch.from_numpy(x), torch.full((len(x), n_heads), -1, dtype=torch.int64), shift, scale,
                         lengths=torch.from_numpy(lengths))
    if suffix == "dir":
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise UserError(f"the model expects samples of shape {shape}, which an image folder cannot supply; give a .npz")
        x = read_images(input_image_files(p), channels=shape[0], size=(shape[1], shape[2]))
    elif suffix == ".npz":
        x = read_npz_inputs(p)
    else:
        x, _, _ = read_csv(p, bundle_like.get("label_column") or "label", bundle_like.get("feature_names"), need_label=False)
    if tuple(x.shape[1:]) != shape:
        raise UserError(f"{p} has samples of shape {tuple(x.shape[1:])} but the model expects {shape}; give data of the training form")
    if kind == "image":
        x = _match_image_scale(x, from_folder=suffix == "dir", shift=shift, scale=scale)
    x_t = torch.from_numpy(np.ascontiguousarray(x))
    return ArrayData(x_t, torch.full((len(x), n_heads), -1, dtype=torch.int64), shift, scale)


def _param(v: Any) -> torch.Tensor | float:
    """A float stays a float; a list/array becomes a float32 tensor."""
    if isinstance(v, torch.Tensor):
        return v.float()
    if np.ndim(v) == 0:
        return float(v)
    return torch.tensor(np.asarray(v, dtype=np.float32))


def _match_image_scale(x: np.ndarray, from_folder: bool, shift: Any, scale: Any) -> np.ndarray:
    """Store images so that ``(x - shift) * scale`` gives pixel values in [0, 1].

    Raw uint8 of the training form is kept (e.g. digits' 0..16 with scale 1/16); image files
    hold 0..255; float inputs are already in [0, 1]. Anything else is converted to float32.
    """
    s = np.asarray(scale.numpy() if isinstance(scale, torch.Tensor) else scale, dtype=np.float64)
    b = np.asarray(shift.numpy() if isinstance(shift, torch.Tensor) else shift, dtype=np.float64)
    if x.dtype == np.uint8:
        if np.all(b == 0) and (np.allclose(s, 1 / 255) or (not from_folder and not np.allclose(s, 1.0))):
            return x
        v = x.astype(np.float64) / 255.0
    else:
        v = x.astype(np.float64)
    return (v / s + b).astype(np.float32)
