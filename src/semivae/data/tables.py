"""Reader for ``.csv`` tables with a header row: features, an optional label column, an
optional id column. An empty feature cell, or one that pandas reads as missing (``NA``,
``NaN``, ``null``, ...), is a missing value: NaN in the features, which the models read
around (data/dataset.py ``fill_missing``). Raises :class:`UserError` (one line: what is wrong,
then the fix) for anything malformed."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ..errors import UserError

# the cells pandas' read_csv takes for missing by default (its na_values), compared stripped
MISSING_CELLS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                           "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def read_csv(
    path: Path, label_column: str, feature_names: list[str] | None = None, need_label: bool = True,
    id_column: str | None = None, run_columns: bool = False, role: str = "",
) -> tuple[np.ndarray, list[str] | None, list[str], list[str] | None]:
    """Read a CSV with a header row -> (features float32 (N, D), NaN where missing; label cells
    or None, feature names, ids or None).

    Features are every column except ``label_column`` and ``id_column``, or exactly
    ``feature_names`` (matched by name) when given. Label cells are returned stripped; ``""``
    means unlabelled (so does a cell pandas reads as missing: ``NA``, ``NaN``, ...). ``id_column``
    names each row (its cells come back as the ids).
    ``run_columns``: ``feature_names`` are a trained run's, so a text cell is named as one, not
    answered with the training flags that would drop the column. ``role`` names a file that must
    hold the training table's label column ("--test-data", "--data") in the message that it lacks it.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(n, r) for n, r in _numbered_rows(csv.reader(f)) if not blank_line(r)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"cannot read {path} as CSV ({err}); save it as UTF-8 comma-separated text") from None
    if not rows:
        raise UserError(f"{path} is empty; add a header row and one row per sample")
    header = [c.strip() for c in rows[0][1]]
    rows = rows[1:]
    other = next((sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]), None)
    if other:
        raise UserError(f"{path} separates its columns with {other!r}, not commas; save it as comma-separated text")
    if label_column in header:
        label_idx: int | None = header.index(label_column)
    elif need_label and role:  # --test-data, or the labelled file evaluate scores a run on
        other = "; or name its column with --label-column" if role == "--data" else ""
        raise UserError(f"{role} {path} has no label column '{label_column}' (columns: {_listed(header)}); it needs "
                        f"its labels in a column named as the training table's, '{label_column}'{other}")
    elif need_label:
        raise UserError(f"{path} has no label column '{label_column}' (columns: {_listed(header)}); pass "
                        f"--label-column NAME (a table with no label yet: add an empty '{label_column}' column)")
    else:
        label_idx = None
    if id_column is not None and id_column == label_column:
        raise UserError(f"--id-column and --label-column both name '{id_column}'; a column holds either the rows' "
                        "names or their classes, give each its own column")
    if id_column is not None and id_column not in header:
        raise UserError(f"{path} has no id column '{id_column}' (columns: {_listed(header)}); pass --id-column NAME "
                        "or drop it")
    id_idx = header.index(id_column) if id_column is not None else None
    if feature_names is None:
        feature_names = [h for i, h in enumerate(header) if i not in (label_idx, id_idx)]
    missing = [c for c in feature_names if c not in header]
    if missing:
        fix = "use the training columns" if run_columns or role else "name columns it has in --feature-columns"
        raise UserError(f"{path} lacks feature columns {_listed(missing)} (columns: {_listed(header)}); {fix}")
    if not feature_names:
        raise UserError(f"{path} has no feature columns besides '{label_column}'; add numeric feature columns")
    for line, r in rows:
        if len(r) != len(header):
            raise UserError(f"{path} line {line} has {len(r)} cells, the header {len(header)}; fix that row")
    cols = [header.index(c) for c in feature_names]
    x = _parse_features(path, rows, cols, header, run_columns)
    labels = [_class_cell(r[label_idx]) for _, r in rows] if label_idx is not None else None
    ids = [r[id_idx].strip() for _, r in rows] if id_idx is not None else None
    return x, labels, list(feature_names), ids


def blank_line(cells: list[str]) -> bool:
    """A CSV line that is no row: empty or whitespace. A row of empty cells (",,,") is a row (refused
    for want of any value): skipped, it would shift the row numbers of every row after it."""
    return len(cells) <= 1 and not (cells and cells[0].strip())


def _listed(names: list[str], most: int = 8) -> str:
    """Column names for a one-line error: the first ``most``, then how many in all."""
    return ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _class_cell(cell: str) -> str:
    """A label cell as the class's name: stripped, and a whole number written as a float (pandas
    writes a label column with blanks as 1.0, 2.0) read as the whole number, as 3 and 3.0 are; a
    cell pandas reads as missing (NA, NaN, ...) is "", unlabelled."""
    cell = cell.strip()
    if cell in MISSING_CELLS:
        return ""
    return cell.split(".")[0] if re.fullmatch(r"-?\d+\.0+", cell) else cell


def _numbered_rows(reader):  # type: ignore[no-untyped-def]
    for row in reader:
        yield reader.line_num, row


def _why_not_a_number(cells: np.ndarray, j: int, cell: str, name: str) -> str:
    """The message for a feature cell that is not a number: a text column (one that names each
    row once: an id column), or one bad value."""
    numeric = sum(_is_number(v) for v in cells[:, j])
    if numeric == 0 and len(cells) > 2 and len(set(cells[:, j])) == len(cells):
        return (f"'{cell.strip()}' is text, and every row has its own: if the column names the rows, pass "
                f"--id-column {name}; else leave it out with --feature-columns")
    if numeric < len(cells) / 2:
        return (f"'{cell.strip()}' is text, as are most of that column's cells; encode the column as numbers "
                "(one 0/1 column per category) or leave it out with --feature-columns")
    return f"'{cell.strip()}' is not a number; fill in a numeric value or drop that row"


def _is_number(v: str) -> bool:
    if v.strip() in MISSING_CELLS:
        return True
    try:
        float(v)
    except ValueError:
        return False
    return True


def _parse_features(path: Path, rows: list, cols: list[int], header: list[str], run_columns: bool) -> np.ndarray:
    cells = np.array([[r[c] for c in cols] for _, r in rows], dtype=str).reshape(len(rows), len(cols))
    cells = np.char.strip(cells)
    missing = np.isin(cells, list(MISSING_CELLS))
    try:
        x = np.where(missing, "nan", cells).astype(np.float64)
    except ValueError:
        x = None
    if x is None:  # find the first bad cell to name it
        for line, r in rows:
            for c in cols:
                if not _is_number(r[c]):
                    why = (f"'{r[c].strip()}' is not a number, and the run reads this column as a feature; "
                           "fill in numbers, as in its training table") if run_columns else \
                        _why_not_a_number(cells, cols.index(c), r[c], header[c])
                    raise UserError(f"{path} line {line}, column '{header[c]}': {why}") from None
        raise UserError(f"{path} has feature values that are not numbers; make every feature cell numeric")
    bad = np.argwhere(np.isinf(x))
    if len(bad):
        i, j = bad[0]
        raise UserError(f"{path} line {rows[i][0]}, column '{header[cols[j]]}' is infinite; fill in a finite value, "
                        "leave the cell empty (missing) or drop that row")
    empty = np.flatnonzero(np.isnan(x).all(1))
    if len(empty):
        raise UserError(f"{path} line {rows[empty[0]][0]} has no feature value at all; drop that row")
    return x.astype(np.float32)
