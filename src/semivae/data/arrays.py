"""Arrays from Python -> the ``.npz`` a run trains on (``semivae.train(x=..., y=...)``).

A run must be reloadable from its directory alone, so arrays passed in memory are written
once as ``RUN/data.npz`` and read back by the same loader as any user file. Labels follow
scikit-learn's semi-supervised convention: ``-1`` (or ``None`` / ``""`` / NaN in an object or
float array) marks an unlabelled point; any other values are classes, numbered in sorted order.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..masks import steps
from .files import check_inputs

UNLABELLED = (-1, "-1", "", None)


def as_array(v: Any, what: str) -> tuple[np.ndarray, list[str] | None]:
    """An array-like (NumPy, torch, pandas, lists) -> (NumPy array, column names of a data frame or None)."""
    names = None
    if hasattr(v, "columns") and hasattr(v, "to_numpy"):  # a pandas data frame, duck-typed
        names = [str(c) for c in v.columns]
        v = v.to_numpy()
    elif hasattr(v, "to_numpy"):  # a pandas series
        v = v.to_numpy()
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    try:
        a = np.asarray(v)
    except (TypeError, ValueError) as err:
        raise UserError(f"{what} is not an array ({err}); pass a NumPy array, tensor or data frame") from None
    if a.ndim == 0 or len(a) == 0:
        raise UserError(f"{what} holds no rows; pass at least one")
    return a, names


def _is_unlabelled(v: Any) -> bool:
    if isinstance(v, float) and np.isnan(v):
        return True
    return any(v is u or (u is not None and not isinstance(v, bool) and v == u) for u in UNLABELLED)


def class_values(y: np.ndarray) -> list:
    """The classes of a label vector: its distinct labelled values, sorted."""
    values = {v for v in y.tolist() if not _is_unlabelled(v)}
    negative = sorted(v for v in values if isinstance(v, (int, float)) and v < 0)
    if negative:  # -1 marks an unlabelled row; another negative number is most likely a typo for it
        raise UserError(f"y holds the label {negative[0]!r}; mark unlabelled rows -1 (or NaN), and give classes as "
                        "numbers >= 0 or as text")
    try:
        return sorted(values)
    except TypeError:  # mixed types: sort by their text
        return sorted(values, key=str)


def encode(y: np.ndarray, classes: list, what: str) -> np.ndarray:
    """Labels -> class indices (int64, -1 = unlabelled); a value outside ``classes`` is an error."""
    index = {v: i for i, v in enumerate(classes)}
    out = np.full(len(y), -1, dtype=np.int64)
    for i, v in enumerate(y.tolist()):
        if _is_unlabelled(v):
            continue
        if v not in index:
            raise UserError(f"{what} holds the class {v!r}, which the training labels do not have; "
                            f"use the classes {classes[:10]}")
        out[i] = index[v]
    return out


def class_name(v: Any) -> str:
    """A class value as the run names it: 3 and 3.0 both read "3"."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _first_text_column(xa: np.ndarray, names: list[str] | None) -> str:
    """" (column 2, 'city': 'Paris')" for the first column of a 2-D object array holding a value that
    is no number; "" where there is none to name."""
    if xa.ndim != 2:
        return ""
    for j in range(xa.shape[1]):
        for v in xa[:, j]:
            try:
                float(v)
            except (TypeError, ValueError):
                name = f", {names[j]!r}" if names is not None else ""
                return f" (column {j}{name}: {v!r})"
    return ""


def training_npz(x: Any, y: Any = None, x_test: Any = None, y_test: Any = None, *, lengths: Any = None,
                 lengths_test: Any = None, carve_test: bool = True) -> bytes:
    """The bytes of an ``.npz`` holding these arrays (checked; see the module docstring).

    ``lengths`` (N,) marks ``x`` (N, T, C) as padded sequences (else a 3-D ``x`` is images).
    Without ``x_test``, 20 % of the labelled points become the test split unless
    ``carve_test`` is False (an empty test split: every label is trained on).
    """
    xa, names = as_array(x, "x")
    if not (np.issubdtype(xa.dtype, np.number) or xa.dtype == bool):
        raise UserError(f"x has dtype {xa.dtype}{_first_text_column(xa, names)}; pass numeric features (encode text "
                        "columns as numbers first)")
    if lengths is None:  # images or vectors: checked here, so an error names x= and not the run's copy of it
        check_inputs(xa, "x")
        never = np.flatnonzero(np.isnan(xa).all(0)) if xa.ndim == 2 and xa.dtype.kind == "f" and len(xa) else []
        if len(never):
            name = f" ({names[never[0]]!r})" if names is not None else ""
            raise UserError(f"column {never[0]}{name} of x has no value in any row (all NaN); drop that column")
    arrays: dict[str, np.ndarray] = {"x": xa}
    if names is not None:
        arrays["feature_names"] = np.asarray(names, dtype=str)
    if y is not None:
        ya, _ = as_array(y, "y")
        if ya.ndim != 1:
            raise UserError(f"y has shape {ya.shape}; give one label per row of x (-1 = unlabelled)")
        if len(ya) != len(xa):
            raise UserError(f"y has {len(ya)} labels but x has {len(xa)} rows; give one label per row")
        classes = class_values(ya)
        arrays["y"] = encode(ya, classes, "y")
        arrays["classes"] = np.asarray([class_name(c) for c in classes], dtype=str)
    if (x_test is None) != (y_test is None):
        raise UserError("give both x_test= and y_test=, or neither (a test split is then carved from x)")
    if x_test is not None:
        if y is None:
            raise UserError("y_test= needs y=; give the training labels too")
        arrays["x_test"] = as_array(x_test, "x_test")[0]
        if lengths is None:
            check_inputs(arrays["x_test"], "x_test")
        yt, _ = as_array(y_test, "y_test")
        if len(yt) != len(arrays["x_test"]):
            raise UserError(f"y_test has {len(yt)} labels but x_test has {len(arrays['x_test'])} rows; give one per row")
        arrays["y_test"] = encode(yt, classes, "y_test")
    elif not carve_test:
        arrays["x_test"], arrays["y_test"] = xa[:0], np.zeros(0, dtype=np.int64)
        if lengths is not None:
            arrays["lengths_test"] = np.zeros(0, dtype=np.int64)
    for key, v in (("lengths", lengths), ("lengths_test", lengths_test)):
        if v is not None:
            arrays[key] = as_array(v, key)[0].astype(np.int64)
    if lengths is None and lengths_test is not None:
        raise UserError("lengths_test= needs lengths=; give the training series' lengths too")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def series_lengths(series: np.ndarray) -> np.ndarray:
    """(N,) each series' steps of (N, T, C), through its last one holding a value (NaN after it is padding)."""
    return steps(torch.from_numpy(~np.isnan(series))).sum(1).numpy()


def nan_padded_lengths(x: Any, lengths: Any) -> Any:
    """``lengths`` as given; else, for a 3-D float array holding NaN (images cannot: series, NaN
    after each one's end), each series' steps; else None."""
    if lengths is not None or x is None:
        return lengths
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
    if not isinstance(a, np.ndarray) or a.ndim != 3 or a.dtype.kind != "f" or not np.isnan(a).any():
        return None
    return series_lengths(a)
