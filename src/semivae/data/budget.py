"""Label budgets: which training points keep their label, drawn class-balanced from a seed."""

from __future__ import annotations

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
                    rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted) of the points whose labels the model may use.

    ``y`` is (N,) with -1 for points that have no label. With no budget given, or
    ``labels="all"``, every labelled point is used. ``labels`` is a total drawn
    class-balanced, ``labels_per_class`` a count per class, ``label_fraction`` a fraction
    of each class's labelled points (rounded).
    """
    pools = _by_class(y, n_classes)
    sizes = [len(p) for p in pools]
    if labels_per_class is not None:
        counts, what = [labels_per_class] * n_classes, f"--labels-per-class {labels_per_class}"
    elif labels is not None and labels != "all":
        n = int(labels)
        if n > sum(sizes):
            raise UserError(f"--labels {n} exceeds the {sum(sizes)} labelled training points; lower it or use --labels all")
        counts, what = _balanced_counts(n, sizes, rng), f"--labels {n}"
    elif label_fraction is not None:
        counts, what = [int(round(label_fraction * s)) for s in sizes], f"--label-fraction {label_fraction}"
    else:
        return np.flatnonzero(y >= 0)
    for c, (want, have) in enumerate(zip(counts, sizes)):
        if want > have:
            raise UserError(f"{what} needs {want} labels of class {c} but the training split holds only {have}; lower the budget")
    chosen = [rng.choice(pool, size=n, replace=False) for pool, n in zip(pools, counts) if n > 0]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
