"""Readers for user data files: ``.npz`` arrays and the pixel checks every image input passes
(folders of images: :mod:`semivae.data.images`; ``.csv`` tables: :mod:`semivae.data.tables`).

Each reader turns one file form into plain numpy arrays and checks them, raising
:class:`UserError` (one line: what is wrong, then the fix) for anything malformed.
Splitting, label mapping and normalisation happen in :mod:`semivae.data.sources`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

# --------------------------------------------------------------------------- npz


@dataclass
class NpzArrays:
    """Arrays of an ``.npz`` file; images already (N, C, H, W), labels (N, F)."""

    x: np.ndarray  # images (N, C, H, W), vectors (N, D), or raw sequences (see ``lengths``)
    y: np.ndarray | None  # (N, F) int64, -1 = missing
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    label_names: list[str]  # one name per label column
    classes: list[list[str] | None]  # per column: class names, or None to number them
    t: np.ndarray | None = None  # (N, T) float continuous targets, NaN = unobserved
    t_test: np.ndarray | None = None
    target_names: list[str] | None = None
    sequence: bool = False  # x is (N, T, C) or (sum T_i, C): series, with lengths / lengths_test
    lengths: np.ndarray | None = None
    lengths_test: np.ndarray | None = None
    ids: list[str] | None = None  # (N,) names of the rows, or None
    ids_test: list[str] | None = None
    feature_names: list[str] | None = None  # (D,) names of vector features, or None


def _strings(a: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(a).tolist()]


def _marks_series(has_lengths: bool, kind: np.ndarray | None) -> bool:
    """An ``.npz`` holds series when it has ``lengths`` or says ``kind = "sequence"``."""
    return has_lengths or (kind is not None and _strings(kind) == ["sequence"])


def npz_holds_series(path: Path) -> bool:
    """Whether the ``.npz`` at ``path`` holds series, read from its small arrays alone; False
    where it is no readable ``.npz`` (reading it then says why)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return _marks_series("lengths" in npz.files, npz["kind"] if "kind" in npz.files else None)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def read_npz(path: Path, label_name: str = "label") -> NpzArrays:
    """Read ``x`` and the optional ``y``, ``x_test``, ``y_test``, ``classes``, and continuous
    targets ``t`` / ``t_test`` (N,) or (N, T) with NaN where unobserved, named by
    ``target_names`` (no pickle). ``y`` (N, F) with several label columns names them in
    ``factor_names`` and their classes in ``classes_<name>``; one column is named ``label_name``.
    ``ids`` / ``ids_test`` name the rows, ``feature_names`` the columns of (N, D) vectors."""
    arrays = _read_npz_arrays(path, ("x", "y", "x_test", "y_test", "classes", "t", "t_test", "target_names",
                                     "factor_names", "lengths", "lengths_test", "kind", "ids", "ids_test",
                                     "feature_names"), prefix="classes_")
    sequence = _marks_series(arrays["lengths"] is not None, arrays["kind"])
    x = arrays["x"] if sequence else check_inputs(arrays["x"], f"x in {path}")
    n = len(x) if not sequence or arrays["lengths"] is None or x.ndim == 3 else len(arrays["lengths"])
    y = _labels(arrays["y"], n, f"y in {path}")
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    if (x_test is None) != (y_test is None):
        raise UserError(f"{path} has only one of x_test / y_test; save both, or neither to split off a test set")
    if x_test is not None and sequence:
        if arrays["lengths"] is not None and arrays["lengths_test"] is None:  # else read at full length, padding too
            raise UserError(f"{path} has lengths for x but not for x_test; save lengths_test too (each test series' "
                            "number of valid steps)")
        n_test = len(x_test) if x_test.ndim == 3 or arrays["lengths_test"] is None else len(arrays["lengths_test"])
        y_test = _labels(y_test, n_test, f"y_test in {path}")
    elif x_test is not None:
        x_test = check_inputs(x_test, f"x_test in {path}")
        if x_test.shape[1:] != x.shape[1:] or x_test.dtype != x.dtype:
            raise UserError(
                f"x_test in {path} has samples of shape {x_test.shape[1:]} ({x_test.dtype}) but x has "
                f"{x.shape[1:]} ({x.dtype}); save both with the same sample shape and dtype"
            )
        y_test = _labels(y_test, len(x_test), f"y_test in {path}")
        if y is not None and y_test.shape[1] != y.shape[1]:
            raise UserError(f"y_test in {path} has {y_test.shape[1]} label columns but y {y.shape[1]}; save the same columns")
    n_cols = 0 if y is None else y.shape[1]
    names = [label_name] if n_cols == 1 else [f"factor{f}" for f in range(n_cols)]
    if arrays["factor_names"] is not None:
        names = _strings(arrays["factor_names"])
        if len(names) != n_cols:
            raise UserError(f"factor_names in {path} has {len(names)} names for {n_cols} label columns of y; "
                            "give one name per column")
    for name in names:
        if not name or "." in name or "/" in name or len(set(names)) != len(names):
            raise UserError(f"label column name {name!r} in {path} is empty, repeated or holds '.' or '/'; rename it")
    classes: list[list[str] | None] = [None] * n_cols
    if arrays["classes"] is not None:
        if n_cols > 1:
            raise UserError(f"{path} has 'classes' but y has {n_cols} columns; save classes_<name> per column")
        classes = [_strings(arrays["classes"])]
    for f, name in enumerate(names):
        if arrays.get(f"classes_{name}") is not None:
            classes[f] = _strings(arrays[f"classes_{name}"])
    if sequence and (arrays["t"] is not None or arrays["t_test"] is not None):
        raise UserError(f"{path} holds sequences and continuous targets t; targets are for images and vectors, "
                        "drop t")
    t = _targets(arrays["t"], n, f"t in {path}")
    t_test = _targets(arrays["t_test"], len(x_test) if x_test is not None else 0, f"t_test in {path}")
    if t_test is not None and (t is None or t_test.shape[1] != t.shape[1]):
        raise UserError(f"t_test in {path} does not match t; save t and t_test with the same number of columns")
    tn = arrays["target_names"]
    target_names = None if t is None else (_strings(tn) if tn is not None else [f"t{i}" for i in range(t.shape[1])])
    if t is not None and len(target_names) != t.shape[1]:
        raise UserError(f"target_names in {path} has {len(target_names)} names for {t.shape[1]} target columns; give one per column")
    ids = _row_names(arrays["ids"], n, f"ids in {path}")
    ids_test = _row_names(arrays["ids_test"], len(x_test) if x_test is not None else 0, f"ids_test in {path}")
    features = None if arrays["feature_names"] is None else _strings(arrays["feature_names"])
    if features is not None and (x.ndim != 2 or len(features) != x.shape[1]):
        raise UserError(f"feature_names in {path} has {len(features)} names but x has shape {x.shape}; give one name "
                        "per column of (N, D) vectors")
    return NpzArrays(x, y, x_test, y_test, names, classes, t, t_test, target_names, sequence,
                     arrays["lengths"], arrays["lengths_test"], ids, ids_test, features)


def _row_names(a: np.ndarray | None, n: int, what: str) -> list[str] | None:
    if a is None:
        return None
    names = _strings(a)
    if len(names) != n:
        raise UserError(f"{what} has {len(names)} names for {n} rows; give one id per row")
    return names


def _targets(t: np.ndarray | None, n: int, what: str) -> np.ndarray | None:
    """Continuous targets -> (N, T) float32; NaN marks an unobserved value."""
    if t is None:
        return None
    if not np.issubdtype(t.dtype, np.number) or t.ndim not in (1, 2) or len(t) != n:
        raise UserError(f"{what} must be a numeric (N,) or (N, T) array with one row per sample ({n}); fix its shape")
    t = t.astype(np.float32).reshape(n, -1)
    if np.isinf(t).any():
        raise UserError(f"{what} holds an infinite value; use NaN to mark an unobserved target")
    return t


def read_npz_inputs(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """The ``x`` of an ``.npz`` file and its rows' ``ids`` if it names them (for prediction;
    ``inputs.load_inputs`` checks x against the run)."""
    arrays = _read_npz_arrays(path, ("x", "ids"))
    return arrays["x"], _row_names(arrays["ids"], len(arrays["x"]), f"ids in {path}")


def read_npz_labels(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """An ``.npz``'s first label column ``y`` (-1 = none) and its ``classes`` if it names them (for evaluation)."""
    arrays = _read_npz_arrays(path, ("y", "classes"))
    if arrays["y"] is None:
        raise UserError(f"{path} has no labels y to score against; save them under the key y")
    y = np.asarray(arrays["y"])
    y = y[:, 0] if y.ndim == 2 else y
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"y in {path} must be whole numbers (N,) or (N, F); save the class indices, -1 = none")
    return y.astype(np.int64), None if arrays["classes"] is None else [str(c) for c in arrays["classes"]]


def read_npz_series(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """``x``, ``lengths`` and ``ids`` (None where absent) of an ``.npz`` of sequences (for prediction)."""
    arrays = _read_npz_arrays(path, ("x", "lengths", "ids"))
    x, lengths = arrays["x"], arrays["lengths"]
    n = len(x) if x.ndim == 3 or lengths is None else len(lengths)  # (N, T, C), or concatenated steps
    return x, lengths, _row_names(arrays["ids"], n, f"ids in {path}")


def _read_npz_arrays(path: Path, keys: tuple[str, ...], prefix: str | None = None) -> dict[str, np.ndarray | None]:
    """The arrays ``keys`` (None where absent) and every array whose name starts with ``prefix``."""
    fix = "save it with numpy.savez(path, x=..., y=...)"
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic[:2] != b"PK":
            raise UserError(f"{path} is not an .npz (zip) archive; {fix}")
        npz = np.load(path, allow_pickle=False)
    except UserError:  # already one line, problem and fix
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"cannot read {path} as .npz ({err}); {fix}") from None
    with npz:
        if "x" not in npz.files:
            raise UserError(f"{path} has no array 'x' (it has {sorted(npz.files)}); save the inputs under the key x")
        extra = tuple(k for k in npz.files if prefix and k.startswith(prefix))
        return {k: _npz_get(npz, k, path) for k in keys + extra}


def _npz_get(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray | None:
    if key not in npz.files:
        return None
    try:
        return npz[key]
    except ValueError:
        if key in ("x", "x_test"):
            raise UserError(f"'{key}' in {path} is a ragged (object) array; save series padded to (N, T, C) with "
                            "'lengths', or one after another as (sum of lengths, C) with 'lengths'") from None
        raise UserError(
            f"array '{key}' in {path} is a Python object array that needs pickle; "
            "save it as a numeric or string array (e.g. np.array(names, dtype=str))"
        ) from None


def check_inputs(x: np.ndarray, what: str, pixel_max: int = 255) -> np.ndarray:
    """Validate model inputs: (N, D) numeric -> float32; (N, H, W) or (N, C, H, W) images.

    Images are kept ``uint8`` (integer arrays with values in 0..``pixel_max`` become ``uint8``;
    ``pixel_max`` is 255 but for a model trained on other integer units, digits' 0..16) or
    ``float32`` with values in [0, 1]. NaN in a vector marks a missing feature (models read
    around it); other non-finite values are errors.
    """
    if x.dtype == bool:
        x = x.astype(np.float32)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise UserError(f"{what} has dtype {x.dtype}; save the inputs as a numeric array")
    if x.ndim == 2:
        x = x.astype(np.float32)
        _check_finite(x, what, nan_ok=True)
        empty = np.flatnonzero(np.isnan(x).all(1)) if x.shape[1] else []
        if len(empty):
            raise UserError(f"{what} row {empty[0]} has no feature value at all (every one NaN); drop that row")
        return x
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise UserError(f"{what} has shape {x.shape}; use (N, D) features, (N, H, W) or (N, C, H, W) images")
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > pixel_max):
            raise UserError(f"{what} has integer pixels in {x.min()}..{x.max()}, outside 0..{pixel_max}"
                            f"{_units(pixel_max)}; save images as integers in 0..{pixel_max} or floats in [0, 1]")
        return x.astype(np.uint8, copy=False)
    x = x.astype(np.float32, copy=False)
    _check_finite(x, what)
    whole = x.size and x.min() >= 0 and x.max() <= pixel_max and np.array_equal(x, np.round(x))
    if whole and x.max() > 1.0:  # the model's integer units, held as floats: say how to pass them
        raise UserError(f"{what} has float pixels in [0, {x.max():g}], outside [0, 1]; in the model's units "
                        f"(0..{pixel_max}) pass them as integers (x.astype('uint8')), else rescale (x / {pixel_max})")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise UserError(
            f"{what} has float pixels in [{x.min():g}, {x.max():g}], outside [0, 1]{_units(pixel_max)}; "
            f"rescale to [0, 1] or save the images as integers in 0..{pixel_max}"
        )
    return x


def _units(pixel_max: int) -> str:
    """A note for a model whose training images were integers in 0..pixel_max, not 0..255."""
    return "" if pixel_max == 255 else f" (the model was trained on pixels 0..{pixel_max}, its data's own units)"


def _check_finite(x: np.ndarray, what: str, nan_ok: bool = False) -> None:
    bad = np.argwhere(np.isinf(x) if nan_ok else ~np.isfinite(x))
    if len(bad):
        fix = "replace inf values (NaN marks a missing feature)" if nan_ok else "replace NaN/inf values" + (
            "; if x holds series (N, T, C), mark them so: save kind='sequence' or their lengths in the .npz"
            if x.ndim == 4 and x.shape[1] == 1 and np.isnan(x).any() else "")
        raise UserError(f"{what} has a non-finite value at index {tuple(bad[0].tolist())}; {fix}")


def _labels(y: np.ndarray | None, n: int, what: str) -> np.ndarray | None:
    """Labels as int64 (N, F), one column per label head; floats must be whole numbers."""
    if y is None:
        return None
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n:
        raise UserError(f"{what} has shape {y.shape} but there are {n} inputs; save one integer label per input "
                        "(or one row of labels per input, -1 where unknown)")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y) & (y == np.round(y))):
            raise UserError(f"{what} holds non-integer labels; save integer class indices (-1 = unlabelled)")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise UserError(f"{what} has dtype {y.dtype}; save integer class indices (-1 = unlabelled)")
    return y.astype(np.int64)
