"""New inputs for a trained model: a file, an array or a data frame -> :class:`ArrayData`
in the training form (normalisation, shape, padding), every label missing.

``info`` is the run's ``data.json`` (plus ``n_heads``): ``kind``, ``shape`` (per sample),
``shift``/``scale`` (training normalisation, floats or lists), ``label_column``,
``feature_names`` and ``id_column`` (CSV data); ``any_length``: the model reads series longer than
its training ones. Arrays follow the ``.npz`` rules
(:func:`files.check_inputs`): uint8 images in 0..255 (in 0..16 for a model trained on the
bundled digits, their own units) or floats in [0, 1], (N, D) vectors (NaN or an empty CSV
cell = a missing feature), (N, T, C) sequences. A CSV or data frame's id column comes back as ``ArrayData.ids``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from .dataset import ArrayData, data_kind, fill_missing
from .files import check_inputs, read_npz_inputs, read_npz_labels, read_npz_series
from .images import IMAGE_EXTS, UNLABELLED_DIRS, input_image_files, read_images
from .tables import read_csv
from .sequences import fill_series, is_har_folder, load_har_folder, pad, sequence_inputs

FORMS = {"image": ("dir", ".npz", *IMAGE_EXTS), "vector": (".csv", ".npz"), "sequence": (".npz",)}
FORM_NAMES = {"image": "a folder of images, one image file or a .npz", "vector": "a .csv or a .npz",
              "sequence": "a .npz"}


def load_inputs(source: Any, info: dict[str, Any]) -> ArrayData:
    """Read new inputs of the training data's form (see the module docstring).

    ``source`` is a path (``.npz`` with key ``x``, a folder of images, directly in it else in
    its sub-folders, sorted; one image file; or a ``.csv``), an array-like (NumPy, torch, nested lists), a
    mapping with the arrays of an ``.npz`` (``{"x": ..., "lengths": ...}`` for series of many lengths), a
    pandas data frame (columns matched by name) or an :class:`ArrayData` (returned as is).
    """
    if isinstance(source, ArrayData):
        shape = _shape(info)
        if data_kind(info["kind"]) == "sequence" and info.get("any_length") and source.x.dim() == 3:
            shape = (max(shape[0], source.x.shape[1]), shape[1])  # longer series, read whole
        _check_shape(source.x.numpy(), shape, "the data")
        return source
    if isinstance(source, (str, Path)):
        return _from_path(Path(source).expanduser(), info)
    if isinstance(source, Mapping):
        if "x" not in source:
            raise UserError(f"the inputs name {sorted(source)} but no 'x'; give {{'x': ..., 'lengths': ...}}")
        lengths = source.get("lengths")
        if lengths is not None and data_kind(info["kind"]) != "sequence":
            raise UserError("'lengths' is for series; the model was trained on "
                            f"{data_kind(info['kind'])} data, give 'x' alone")
        return _wrap(np.asarray(source["x"]), None if lengths is None else np.asarray(lengths), info,
                     from_folder=False, what="the inputs' x")
    ids = None
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):  # a pandas data frame
        source, ids = _from_frame(source, info)
    if (data_kind(info["kind"]) == "sequence" and isinstance(source, (list, tuple)) and len(source)
            and all(np.ndim(s) == 2 for s in source)):  # a list of (T_i, C) series of any lengths
        x, lengths = pad([np.asarray(s, dtype=np.float32) for s in source], "the list of series")
        return _wrap(x, lengths, info, from_folder=False, what="the list of series")
    try:
        x = source.detach().cpu().numpy() if isinstance(source, torch.Tensor) else np.asarray(source)
    except ValueError:
        raise UserError("the inputs are nested lists of uneven lengths; give an array of one shape (series of many "
                        "lengths: a list of (T_i, C) arrays, or {'x': ..., 'lengths': ...})") from None
    return _wrap(x, None, info, from_folder=False, what="the array", ids=ids)


def load_labelled(source: str | Path, info: dict[str, Any]) -> tuple[ArrayData, list[str]]:
    """A labelled file's inputs (:func:`load_inputs`) and the class of each row ("" where
    unknown): an image folder's sub-folder names (``unlabelled/`` none), a ``.csv``'s label
    column (the file read once), or an ``.npz``'s ``y`` (named by its ``classes`` where it has
    them; -1 none). Refuses a file without one labelled row."""
    p = Path(source).expanduser()
    if p.suffix.lower() == ".csv" and p.is_file() and data_kind(info["kind"]) == "vector":
        data, cells = _from_table(p, info, need_label=True)
        labels = list(cells or [])
    elif p.is_dir() and data_kind(info["kind"]) == "sequence" and is_har_folder(p):  # read once: data and labels
        data, labels = _har_test_split(p, info)
    else:
        data, labels = _from_path(p, info), _labels_in(p, info)
    if not any(labels):
        raise UserError(f"{source} holds no labelled point to score; put images into one sub-folder per class, or "
                        "fill in the label column or y")
    return data, labels


def _labels_in(p: Path, info: dict[str, Any]) -> list[str]:
    if not p.exists():
        raise UserError(f"no such file or folder: {p}; check the path")
    kind = data_kind(info["kind"])
    if p.is_dir() and kind == "image":
        files = input_image_files(p)
        names = [f.relative_to(p).parts[0] if len(f.relative_to(p).parts) > 1 else "" for f in files]
        return ["" if n.lower() in UNLABELLED_DIRS else n for n in names]
    if p.suffix.lower() == ".npz" and p.is_file():
        y, classes = read_npz_labels(p)
        if classes and y.max() >= len(classes):
            raise UserError(f"y in {p} holds class {int(y.max())} but its classes name {len(classes)}; "
                            "fix y or classes")
        return [("" if v < 0 else classes[v] if classes else str(v)) for v in y.tolist()]
    raise UserError(f"cannot read labels from {p}; give an image folder with one sub-folder per class, a .csv with "
                    "the label column or a .npz with y")


def _har_test_split(p: Path, info: dict[str, Any]) -> tuple[ArrayData, list[str]]:
    """A UCI-HAR folder's test split (what a run trained on the folder has not seen) and its classes."""
    bundle = load_har_folder(p)
    test, classes = bundle.test, bundle.heads[0].classes
    lengths = None if test.lengths is None else test.lengths.numpy()
    data = _wrap(test.x.numpy(), lengths, info, from_folder=False, what=f"{p}/test")
    return data, [classes[int(k)] if k >= 0 else "" for k in test.labels[:, 0].tolist()]


def _shape(info: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(s) for s in info["shape"])


def _from_path(p: Path, info: dict[str, Any]) -> ArrayData:
    kind, shape = data_kind(info["kind"]), _shape(info)
    suffix = "dir" if p.is_dir() else p.suffix.lower() if p.is_file() else None
    forms = FORMS.get(kind, ())
    if suffix is None:
        raise UserError(f"no such file or folder: {p}; check the path")
    if kind == "sequence" and suffix == "dir" and is_har_folder(p):
        return _har_test_split(p, info)[0]
    if suffix not in forms:
        raise UserError(f"cannot read {p} for a model trained on {kind} data; give {FORM_NAMES[kind]}")
    if kind == "sequence":
        x, lengths, ids = read_npz_series(p)
        return _wrap(x, lengths, info, from_folder=False, what=f"x in {p}", ids=ids)
    if suffix == "dir" or suffix in IMAGE_EXTS:
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise UserError(f"the model expects samples of shape {shape}, which image files cannot supply; give a .npz")
        files = input_image_files(p) if suffix == "dir" else [p]  # ids: paths inside the folder, or the file's name
        ids = [f.relative_to(p).as_posix() for f in files] if suffix == "dir" else [p.name]
        x = read_images(files, channels=shape[0], size=(shape[1], shape[2]), resize=bool(info.get("image_size")))
        return _wrap(x, None, info, from_folder=True, what=str(p), ids=ids)
    if suffix == ".npz":
        x, ids = read_npz_inputs(p)
        return _wrap(x, None, info, from_folder=False, what=f"x in {p}", ids=ids)
    return _from_table(p, info, need_label=False)[0]


def _from_table(p: Path, info: dict[str, Any], need_label: bool) -> tuple[ArrayData, list[str] | None]:
    """A CSV with the run's label, feature and id columns (new data may lack the id column): its
    inputs and its label cells (None without a label column)."""
    x, cells, _, ids = read_csv(p, info.get("label_column") or "label", info.get("feature_names"),
                                need_label=need_label, run_columns=info.get("feature_names") is not None,
                                role="--data" if need_label else "",
                                id_column=info.get("id_column") if _has_column(p, info.get("id_column")) else None)
    return _wrap(x, None, info, from_folder=False, what=str(p), ids=ids), cells


def _has_column(path: Path, column: str | None) -> bool:
    """Whether a CSV's header names ``column`` (new data may come without the id column)."""
    if column is None:
        return False
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    return column in [h.strip() for h in header]


def _from_frame(frame: Any, info: dict[str, Any]) -> tuple[np.ndarray, list[str] | None]:
    """A data frame -> (features in the training columns' order, ids: the id column's, else the index's)."""
    columns = [str(c) for c in frame.columns]
    id_column = info.get("id_column")
    ids = [str(v) for v in (frame[id_column] if id_column in columns else frame.index).tolist()]  # else its index
    names = info.get("feature_names")
    if names is None:  # trained on an array: every column but the label and id
        keep = [c for c in frame.columns if str(c) not in (info.get("label_column"), id_column)]
    else:
        missing = [c for c in names if c not in columns]
        if missing:
            raise UserError(f"the data frame lacks feature columns {missing} (it has {columns}); use the training columns")
        keep = [frame.columns[columns.index(c)] for c in names]
    try:
        return frame[keep].to_numpy(dtype=np.float32), ids
    except (TypeError, ValueError) as e:
        raise UserError(f"the data frame's feature columns are not all numeric ({e}); encode them as numbers") from None


def _wrap(x: np.ndarray, lengths: np.ndarray | None, info: dict[str, Any], *, from_folder: bool, what: str,
          ids: list[str] | None = None) -> ArrayData:
    """Checked, shaped and scaled inputs -> ArrayData with one all-missing label column per head."""
    kind, shape = data_kind(info["kind"]), _shape(info)
    if np.ndim(x) == 0 or len(x) == 0:
        raise UserError(f"{what} holds no inputs; give at least one row")
    shift, scale = _param(info.get("shift", 0.0)), _param(info.get("scale", 1.0))
    n_heads = int(info.get("n_heads", 1))
    if kind == "sequence":
        x, lengths = sequence_inputs(np.asarray(x), lengths, shape[0], shape[1], what, bool(info.get("any_length")))
        x, observed = fill_series(x, lengths, shift)  # NaN = a missing value: interpolated, as in training
        return ArrayData(torch.from_numpy(np.ascontiguousarray(x)), _missing(len(x), n_heads), shift, scale,
                         lengths=torch.from_numpy(lengths), ids=_ids(ids), observed=observed)
    if kind == "vector" and np.ndim(x) != 2:
        raise UserError(f"{what} has shape {tuple(np.shape(x))}, but the model reads tables of {shape[0]} features, "
                        f"one row per point: give an (N, {shape[0]}) array or a CSV with the training columns")
    if kind == "image" and np.ndim(x) == 2 and np.shape(x)[1] == int(np.prod(shape)):  # flattened images
        x = np.asarray(x).reshape(len(x), *shape)
    x = check_inputs(x, what, 255 if from_folder else _pixel_max(info))
    _check_shape(x, shape, what)
    observed = None
    if kind == "image":
        x = _match_image_scale(x, from_folder=from_folder, shift=shift, scale=scale)
    else:  # vectors: NaN = a missing feature, filled with the training mean
        x, observed = fill_missing(x, shift)
    return ArrayData(torch.from_numpy(np.ascontiguousarray(x)), _missing(len(x), n_heads), shift, scale, ids=_ids(ids),
                     observed=observed)


def _check_shape(x: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape[1:]) != shape:
        raise UserError(f"{what} has samples of shape {tuple(x.shape[1:])} but the model expects {shape}; "
                        f"give data of the training form, e.g. an array of shape (N, {', '.join(map(str, shape))})")


def _missing(n: int, heads: int) -> torch.Tensor:
    return torch.full((n, heads), -1, dtype=torch.int64)


def _ids(ids: list[str] | None) -> np.ndarray | None:
    return None if ids is None else np.asarray(ids, dtype=object)


def _param(v: Any) -> torch.Tensor | float:
    """A float stays a float; a list/array becomes a float32 tensor."""
    if isinstance(v, torch.Tensor):
        return v.float()
    if np.ndim(v) == 0:
        return float(v)
    return torch.tensor(np.asarray(v, dtype=np.float32))


def _pixel_max(info: dict[str, Any]) -> int:
    """The largest integer pixel of the training form: 255, or n for images stored as 0..n
    (scale 1/n, no shift: the bundled digits' 0..16)."""
    shift, scale = info.get("shift", 0.0), info.get("scale", 1.0)
    if data_kind(info["kind"]) != "image" or np.ndim(shift) or np.ndim(scale) or shift or not 0 < scale < 1:
        return 255
    n = 1.0 / float(scale)
    return int(round(n)) if abs(n - round(n)) < 1e-6 and n < 255 else 255


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
