"""Label budgets: which training points keep their label, drawn class-balanced from a seed."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError


def _by_class(y: np.ndarray, n_classes: int) -> list[np.ndarray]:
    return [np.flatnonzero(y == c) for c in range(n_classes)]


def _balanced_counts(total: int, sizes: list[int], rng: np.random.Generator) -> list[int]:
    """Split ``total`` as evenly as possible over classes; the remainder goes to random classes."""
    k = len(sizes)
    counts = [total // k] * k
    for c in rng.permutation(k)[: total % k]:
        counts[c] += 1
    return counts


def select_labelled(y: np.ndarray, n_classes: int, *, labels: str | int | None = None,
                    labels_per_class: int | None = None, label_fraction: float | None = None,
                    rng: np.random.Generator, classes: tuple[str, ...] | None = None) -> np.ndarray:
    """Indices (sorted) of the points whose labels the model may use.

    ``y`` is (N,) with -1 for points that have no label. With no budget given, or
    ``labels="all"``, every labelled point is used. ``labels`` is a total drawn
    class-balanced, ``labels_per_class`` a count per class, ``label_fraction`` a fraction
    of each class's labelled points (rounded). ``classes`` names the classes in errors.
    """
    pools = _by_class(y, n_classes)
    sizes = [len(p) for p in pools]
    if labels_per_class is not None:
        counts, what = [labels_per_class] * n_classes, f"--labels-per-class {labels_per_class}"
    elif labels is not None and labels != "all":
        n = int(labels)
        if n > sum(sizes):
            raise UserError(f"--labels {n} exceeds the {sum(sizes)} labelled training points (the test split and the "
                            "validation carve hold the data's other labels; --val-fraction 0 keeps the carve's); lower "
                            "it or use --labels all")
        counts, what = _balanced_counts(n, sizes, rng), f"--labels {n}"
    elif label_fraction is not None:
        counts, what = [int(round(label_fraction * s)) for s in sizes], f"--label-fraction {label_fraction}"
    else:
        return np.flatnonzero(y >= 0)
    for c, (want, have) in enumerate(zip(counts, sizes)):
        if want > have:
            name = repr(classes[c]) if classes else c
            raise UserError(f"{what} needs {want} labels of class {name} but the training split holds only {have}; "
                            "lower the budget")
    chosen = [rng.choice(pool, size=n, replace=False) for pool, n in zip(pools, counts) if n > 0]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def read_label_ids(path: str | Path, ids: np.ndarray | None, labels: np.ndarray,
                   heads: Sequence[tuple[str, Sequence[str]]] = (), carved: np.ndarray | None = None) -> np.ndarray:
    """The training-split rows (sorted, unique) that ``--label-ids FILE`` names.

    The file is what ``semivae suggest`` writes (a CSV with a ``row`` and an ``id`` column), or
    one entry per line: ids where the data names its rows (``ids``), else row numbers.
    ``labels`` (N, F) must hold a label for every named row: the file says which labels the
    model may see, the data holds them. A CSV column that gives labels (``label``, or a head's
    name among ``heads``, its (name, classes) pairs) is checked against the data, never used.
    ``carved``: the ids of a test split carved from the data, which a named id may have moved into.
    """
    p = Path(path).expanduser()
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read --label-ids {p} ({err}); give the file `semivae suggest` wrote") from None
    entries, by_id, given = lines, ids is not None, []
    if lines and ("," in lines[0] or lines[0] in ("row", "id")):
        rows = list(csv.reader(lines))
        header = [h.strip() for h in rows[0]]
        column = "id" if by_id and "id" in header else "row" if "row" in header else None
        if column is None and "id" in header:
            raise UserError(f"--label-ids {p} has an 'id' column but no 'row' column, and this data names no rows "
                            "by id; give row numbers of the training split in a 'row' column, as `semivae suggest` "
                            "writes")
        if column is None:
            raise UserError(f"--label-ids {p} has no 'row' or 'id' column (it has {header}); give the file "
                            "`semivae suggest` wrote, or one id per line")
        by_id = column == "id"
        body = [r for r in rows[1:] if len(r) > header.index(column)]
        entries = [r[header.index(column)].strip() for r in body]
        given = _given_labels(p, header, body, heads if heads else [("label", ())] * labels.shape[1])
    if not entries:
        raise UserError(f"--label-ids {p} names no rows; give at least one")
    if by_id:
        index = {str(v): i for i, v in enumerate(ids.tolist())}
        names = {}  # an image's file name, where the user has since moved it into a class folder
        for v, i in index.items():
            names.setdefault(Path(v).name, []).append(i)
        index |= {e: names[Path(e).name][0] for e in entries
                  if e not in index and len(names.get(Path(e).name, [])) == 1}
        unknown = [e for e in entries if e not in index]
        test = set() if carved is None else {str(v) for v in carved.tolist()} | {Path(str(v)).name for v in carved}
        held = [e for e in unknown if e in test or Path(e).name in test]
        if held:
            raise UserError(f"--label-ids {p} names {held[0]!r}, which the test split holds: the data has no test "
                            "split, so 20 % of its labelled points are carved off, and which ones changes as labels "
                            "are added; keep a labelled test file apart and give it as --test-data")
        several = [e for e in unknown if len(names.get(Path(e).name, [])) > 1]
        if several:
            paths = ", ".join(str(ids[i]) for i in names[Path(several[0]).name][:3])
            raise UserError(f"--label-ids {p} names {several[0]!r}, which several files are called ({paths}, ...); "
                            "give its path inside the folder, as `semivae suggest` wrote it")
        if unknown == [lines[0]] and "," not in lines[0]:  # a header of another name over one id per line
            raise UserError(f"--label-ids {p} starts with {lines[0]!r}, which is no id of the training data; if it "
                            "is the column's name, call it 'id' (or 'row' for row numbers), as `semivae suggest` "
                            "writes, or drop that line")
        if unknown:
            raise UserError(f"--label-ids {p} names {unknown[0]!r}, which is not an id of the training data; use "
                            "the ids `semivae suggest` wrote")
        rows_ = np.array([index[e] for e in entries], dtype=np.int64)
    else:
        try:
            rows_ = np.array([int(e) for e in entries], dtype=np.int64)
        except ValueError:
            raise UserError(f"--label-ids {p} holds {entries[0]!r}, not a row number, and the data has no ids; "
                            "give row numbers of the training split") from None
        if rows_.min() < 0 or rows_.max() >= len(labels):
            raise UserError(f"--label-ids {p} names row {int(rows_.max() if rows_.max() >= len(labels) else rows_.min())}"
                            f", outside the training split's 0..{len(labels) - 1}; use the rows `semivae suggest` wrote")
    missing = rows_[(labels[rows_] < 0).all(1)]
    if len(missing):
        name = f"{ids[int(missing[0])]!r}" if ids is not None else f"row {int(missing[0])}"
        raise UserError(f"--label-ids {p} names {name}, which has no label in the data; label it there first (an "
                        "image: move it into its class's sub-folder; a table: fill in its label cell)")
    for f, classes, values in given:
        _check_given(p, rows_, labels[:, f], classes, values, ids)
    return np.unique(rows_)


def _given_labels(p: Path, header: list[str], rows: list[list[str]], heads) -> list[tuple[int, tuple, list[str]]]:
    """The file's label columns as (head index, class names, one value per entry row): ``label``
    stands for the only head, a head's own name for that head."""
    index = {name: f for f, (name, _) in enumerate(heads) if name}
    if len(heads) == 1:
        index.setdefault("label", 0)
    out = []
    for i, name in enumerate(header):
        if name == "label" and name not in index:
            raise UserError(f"--label-ids {p} has a 'label' column, but the data has {len(heads)} label columns; "
                            f"name the column after one of them ({', '.join(h[0] for h in heads)}) or drop it")
        if name in index and name not in ("row", "id"):
            f = index[name]
            out.append((f, tuple(heads[f][1]), [r[i].strip() if len(r) > i else "" for r in rows]))
    return out


def _check_given(p: Path, rows: np.ndarray, data: np.ndarray, classes: tuple, values: list[str],
                 ids: np.ndarray | None = None) -> None:
    """Refuse a label in the file that differs from the data's label of its row (by class name
    or class index; an empty cell is no claim)."""
    for row, value in zip(rows.tolist(), values):
        if not value:
            continue
        have = int(data[row])
        names = {str(have)} | ({str(classes[have])} if 0 <= have < len(classes) else set())
        if value not in names:
            said = f"'{classes[have]}'" if 0 <= have < len(classes) else "no label" if have < 0 else str(have)
            name = f"{ids[row]!r}" if ids is not None else f"row {row}"  # a file's name where the data has them
            raise UserError(f"--label-ids {p} gives {name} the label {value!r}, but the data says {said}; labels "
                            "come from the data, not this file: correct the data (or drop the file's label column)")
