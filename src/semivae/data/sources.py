"""The public loading API: named data sets and user data files -> :class:`DataBundle`.

``load_dataset`` looks the name up in :data:`DATASETS` (``digits``, ``mnist``,
``fashion-mnist``); anything else must be an existing path, read by its form: an ``.npz``
file, a ``.csv`` file or a folder of images (new inputs for a trained model: ``inputs.py``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from .dataset import ArrayData, DataBundle, LabelColumn, fill_missing
from .download import locate_or_download
from .files import npz_holds_series, read_npz
from .images import images_in_both, labelled_twice, read_image_folder
from .tables import read_csv
from .factor_files import find_norb, is_dsprites_file, read_dsprites, read_smallnorb
from .factors import load_sprites
from .packed import is_packed, load_packed, packed_kind
from .sequences import (is_har_folder, load_aeon, load_har_folder, load_sequential_images, npz_sequences)
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


SEQUENCE_SETS = ("sequential-mnist", "sequential-fashion-mnist", "basic-motions", "japanese-vowels")


def holds_series(name_or_path: str | None) -> bool:
    """Whether a data source holds series, judged without loading it: a named sequence set, a
    folder in the UCI-HAR layout, a packed folder of series (``semivae data pack``), or an ``.npz``
    with ``lengths`` or ``kind = "sequence"``.
    False where it cannot tell (a missing file: the loader then names the problem)."""
    if not name_or_path:
        return False
    if name_or_path.strip().lower() in SEQUENCE_SETS:
        return True
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return is_har_folder(path) or packed_kind(path) == "sequence"
    return path.suffix.lower() == ".npz" and path.is_file() and npz_holds_series(path)


def load_dataset(
    name_or_path: str, data_dir: str | None = None, *, label_column: str = "label", download: bool = True,
    id_column: str | None = None, feature_columns: list[str] | None = None, image_size: list[int] | None = None,
    test_data: str | None = None,
) -> DataBundle:
    """Load a named data set (see :data:`DATASETS`) or user data from a path.

    Paths are read by form: ``.npz`` (``x``, optional ``y``/``x_test``/``y_test``/``classes``;
    with ``lengths`` the rows are sequences), ``.csv`` (numeric features plus
    ``label_column``), a folder in the UCI-HAR layout, or a folder with one sub-folder of
    images per class (plus optional ``unlabelled/``; ``image_size`` (H, W) or (S,) resizes
    them as they are read). Without a test split in the data (or ``test_data``: a folder or
    ``.csv`` of the same form, for those two), a stratified 20 % of the labelled points is
    held out with a fixed seed.
    """
    loader = DATASETS.get(name_or_path.strip().lower())
    if loader is not None or Path(name_or_path).suffix.lower() != ".csv":  # an .npz's label columns: by name
        npz = loader is None and Path(name_or_path).suffix.lower() == ".npz"
        _refuse_csv_options(name_or_path, "label" if npz else label_column, id_column, feature_columns)
    path = Path(name_or_path).expanduser()
    exists = loader is not None or path.exists()  # else the error below names the path
    folder = loader is None and path.is_dir() and not (is_packed(path) or is_har_folder(path) or find_norb(path))
    is_csv = loader is None and path.is_file() and path.suffix.lower() == ".csv"
    if image_size is not None and exists and not folder:
        raise UserError(f"--image-size resizes the images of a folder as they are read, but {name_or_path!r} is not an "
                        "image folder; drop --image-size (or resize the images before saving them)")
    test = _test_path(name_or_path, test_data, folder, is_csv) if test_data is not None and exists else None
    if loader is not None:
        return loader(data_dir, download, label_column)
    if folder:
        return _load_image_folder(path, label_column, image_size, test)
    if path.is_dir():
        if is_packed(path):
            return load_packed(path)
        return load_har_folder(path) if is_har_folder(path) else read_smallnorb(path)
    if path.is_file() and is_dsprites_file(path):
        return read_dsprites(path)
    if path.is_file():
        file_loader = FILE_LOADERS.get(path.suffix.lower())
        if file_loader is None:
            raise UserError(f"{path} is not a .npz or .csv file or an image folder; convert it to one of those forms")
        if is_csv:
            return _load_csv(path, label_column, id_column, feature_columns, test)
        return file_loader(path, label_column)
    raise UserError(
        f"unknown data set '{name_or_path}' and no such file or folder; "
        f"use one of {', '.join(DATASETS)} or a path to a .npz file, .csv file or image folder"
    )


def _test_path(source: str, test_data: str, folder: bool, is_csv: bool) -> Path:
    """``--test-data``'s path, refused unless the training data is an image folder or a .csv and it has that form."""
    if not (is_csv or folder):
        raise UserError(f"--test-data gives the test split of an image folder or a .csv, but {source!r} is neither; "
                        "drop it (a .npz holds its own x_test / y_test)")
    test = Path(test_data).expanduser()
    if (test.is_dir(), test.suffix.lower() == ".csv" and test.is_file()) != (not is_csv, is_csv):
        raise UserError(f"--test-data {test_data} must be {'a .csv file' if is_csv else 'an image folder'}, the form "
                        "of the training data; check the path")
    if test.resolve() == Path(source).expanduser().resolve():
        raise UserError(f"--test-data {test_data} is the training data itself, so the test figures would score what "
                        "the model trained on; keep a labelled test set apart and give that")
    return test


def _test_split(x: np.ndarray, y: np.ndarray, test_classes: list[str], ids: list[str] | None,
                classes: list[str], test: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """``--test-data``'s labelled points -> (x, labels (N, 1) in the training classes' indices,
    matched by name; ids); its unlabelled points are dropped."""
    index = {c: k for k, c in enumerate(classes)}
    unknown = [c for c in test_classes if c not in index]
    if unknown:
        raise UserError(f"--test-data {test} has class {unknown[0]!r}, which the training data lacks ({classes}); "
                        "name the test classes as the training ones")
    keep = np.flatnonzero(y >= 0)
    if not len(keep):
        raise UserError(f"--test-data {test} has no labelled point; label the test points")
    labels = np.asarray([index[c] for c in test_classes], dtype=np.int64)[y[keep]]
    return x[keep], labels[:, None], None if ids is None else [ids[i] for i in keep]


def _refuse_csv_options(source: str, label_column: str, id_column: str | None,
                        feature_columns: list[str] | None) -> None:
    """The column options name a CSV file's columns; any other source would silently ignore them."""
    given = [flag for flag, on in (("--label-column", label_column != "label"), ("--id-column", id_column is not None),
                                   ("--feature-columns", feature_columns is not None)) if on]
    if given:
        raise UserError(f"{given[0]} names a column of a .csv file, but {source!r} is not one (its labels come "
                        f"with it); drop {given[0]}")


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
    if label_column != "label":  # one of several label columns picked by name
        if label_column not in a.label_names:
            raise UserError(f"--label-column {label_column}: {path} has the label columns {list(a.label_names)}; "
                            "name one of them, or drop --label-column")
        if n_cols > 1:
            f = list(a.label_names).index(label_column)
            y, heads = y[:, [f]], [heads[f]]
            a.y_test = None if a.y_test is None else a.y_test[:, [f]]
    if a.sequence:
        test = None if a.x_test is None else (a.x_test, a.lengths_test, a.y_test)
        return npz_sequences(path, a.x, a.lengths, y, test, heads, (a.ids, a.ids_test))
    return _assemble(path, a.x, y, a.x_test, a.y_test, heads, label_column, a.feature_names,
                     targets=(a.t, a.t_test, a.target_names), ids=(a.ids, a.ids_test))


def _check_labels(y: np.ndarray, k: int, what: str) -> None:
    bad = y[(y < -1) | (y >= k)]
    if len(bad):
        raise UserError(
            f"{what} has label {int(bad[0])} outside 0..{k - 1} (-1 = unlabelled); "
            "fix the labels or list every class name in 'classes'"
        )


def _load_image_folder(path: Path, label_column: str, image_size: list[int] | None = None,
                       test: Path | None = None) -> DataBundle:
    size = None if image_size is None else (image_size[0], image_size[-1])  # (H, W)
    mixed: dict = {}
    x, y, classes, ids = read_image_folder(path, size, mixed=mixed)
    twice = labelled_twice(x, y, classes, ids)
    x_t = y_t = ids_t = None
    if test is not None:  # read in the training images' colour (as predict reads new images)
        try:
            x_t, y_raw, test_classes, ids_t = read_image_folder(test, size, channels=x.shape[1])
        except UserError as err:  # say which folder: the test one
            raise UserError(f"--test-data: {err}") from None
        if x_t.shape[1:] != x.shape[1:]:
            raise UserError(f"--test-data {test} has images of shape {x_t.shape[1:]} (channels, height, width), the "
                            f"training data {x.shape[1:]}; give images of one size and colour (or --image-size H,W)")
        x_t, y_t, ids_t = _test_split(x_t, y_raw, test_classes, ids_t, classes, test)
    bundle = _assemble(path, x, y[:, None], x_t, y_t, [LabelColumn("label", tuple(classes))], label_column, None,
                       ids=(ids, ids_t))
    bundle.meta["image_size"] = None if size is None else list(size)  # predict resizes new images alike
    shared = None if x_t is None else images_in_both(x, x_t, ids_t)
    bundle.meta.update({k: v for k, v in (("labelled_and_not", twice), ("test_in_train", shared),  # notes say so
                                          ("mixed_colour", mixed)) if v})
    return bundle


def _load_csv(path: Path, label_column: str, id_column: str | None = None,
              feature_columns: list[str] | None = None, test: Path | None = None) -> DataBundle:
    x, cells, names, ids = read_csv(path, label_column, feature_columns, id_column=id_column)
    y, classes = encode_labels(cells or [])
    x_t = y_t = ids_t = None
    if test is not None:
        x_t, cells_t, _, ids_t = read_csv(test, label_column, names, id_column=id_column, role="--test-data")
        y_raw, test_classes = encode_labels(cells_t or [])
        x_t, y_t, ids_t = _test_split(x_t, y_raw, test_classes, ids_t, classes, test)
    head = label_column.replace(".", "_").replace("/", "_")  # a head name is a layer name: no dots
    bundle = _assemble(path, x, y[:, None], x_t, y_t, [LabelColumn(head, tuple(classes))], label_column, names,
                       ids=(ids, ids_t))
    bundle.meta["id_column"] = id_column  # a pack keeps it, so a run on the pack reads new CSVs' ids
    return bundle


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


def _check_observed(x: np.ndarray, feature_names: list[str] | None, path: Path) -> None:
    """Refuses a feature that no training row holds: nothing would say what it is."""
    never = np.flatnonzero(np.isnan(x).all(0))
    if len(never):
        name = feature_names[never[0]] if feature_names else f"feature {never[0]}"
        raise UserError(f"{name} in {path} is missing in every training row; drop that column "
                        "(from a CSV: --feature-columns)")


def _assemble(
    path: Path, x: np.ndarray, y: np.ndarray, x_test: np.ndarray | None, y_test: np.ndarray | None,
    heads: list[LabelColumn], label_column: str, feature_names: list[str] | None,
    targets: tuple[np.ndarray | None, np.ndarray | None, list[str] | None] = (None, None, None),
    ids: tuple[list[str] | None, list[str] | None] = (None, None),
) -> DataBundle:
    """Split (if no test given), normalise, and wrap user arrays (labels (N, F)) into a bundle.

    ``ids`` (train, test) name the rows (a CSV id column, image file names); they follow
    the rows into the splits (``ArrayData.ids``). Where a test split is carved, rows without a
    name are named by their row number in the data (0: the first), which they keep.

    Continuous ``targets`` (t, t_test, names) are standardised with the training split's
    mean and std (saved in ``meta``), so a model's N(0, 1) prior on them fits.
    """
    if len(x) == 0:
        raise UserError(f"{path} holds no samples; add data to it")
    t, t_test, target_names = targets
    id_arr, id_test = (None if v is None else np.asarray(v, dtype=object) for v in ids)
    carve: dict = {}
    if x_test is None or y_test is None:
        tr, te = carve_test(y[:, 0] if y.shape[1] else np.full(len(y), -1))
        carve = carve_note(y[:, 0] if y.shape[1] else None, te, heads)
        x, y, x_test, y_test = x[tr], y[tr], x[te], y[te]
        t, t_test = (None, None) if t is None else (t[tr], t[te])
        if id_arr is None:  # rows the data does not name keep their numbers in the file, which the carve would change
            id_arr = np.arange(len(tr) + len(te)).astype(str).astype(object)
        id_arr, id_test = id_arr[tr], id_arr[te]
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
        _check_observed(x, feature_names, path)
        mean, std = np.nanmean(x, axis=0, dtype=np.float64), np.nanstd(x, axis=0, dtype=np.float64)
        shift = torch.from_numpy(mean.astype(np.float32))
        # a feature constant in training keeps its units: new data's deviations stay finite
        scale = torch.from_numpy(np.where(std > STD_FLOOR, 1.0 / np.maximum(std, STD_FLOOR), 1.0).astype(np.float32))
    else:
        shift, scale = 0.0, (1.0 / 255.0 if x.dtype == np.uint8 else 1.0)

    def part(xa: np.ndarray, ya: np.ndarray, ta: np.ndarray | None, ia: np.ndarray | None) -> ArrayData:
        tt = None if ta is None else torch.from_numpy(((ta - t_mean) / t_std).astype(np.float32))
        xa, observed = fill_missing(xa, shift) if tabular else (xa, None)
        return ArrayData(torch.from_numpy(np.ascontiguousarray(xa)), torch.from_numpy(ya.astype(np.int64)), shift, scale, tt,
                         ids=ia, observed=observed)

    meta = {"source": str(path.resolve()), "feature_names": feature_names, "label_column": label_column, **carve}
    if t is not None:
        meta.update(target_names=target_names, target_mean=t_mean.tolist(), target_std=t_std.tolist())
    kind, likelihood = ("vector", "gaussian") if tabular else ("image", "bernoulli")
    return DataBundle(path.stem, part(x, y, t, id_arr), part(x_test, y_test, t_test, id_test), heads, kind, likelihood,
                      meta)
