"""The semi-unsupervised anomaly protocol (Berkhahn et al. 2019, sections 2.6, 3.1.3, 3.2.3).

One class of a labelled dataset is declared anomalous. The model trains on the other
("normal") classes only, with their labels renumbered 0..K-2; the test split becomes the
held-out normal test points plus every anomalous point (from the training and the test
split), flagged in ``meta["test_anomalous"]``. Anomalous points carry label -1 in the test
split, so classification metrics count the normal points only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..errors import UserError
from .dataset import ArrayData, DataBundle
from .sources import load_dataset


def class_index(classes: tuple[str, ...] | list[str], name: str, flag: str = "--anomaly-class") -> int:
    """A class given by name, or by its index in ``classes`` where no class name is a number (the
    index of a class named "7" would be a trap: folders 3/, 5/, 7/ hold "5" at index 1)."""
    if name in classes:
        return list(classes).index(name)
    numbered = any(c.lstrip("-").isdigit() for c in classes)
    if name.isdigit() and int(name) < len(classes) and not numbered:
        return int(name)
    why = "is not a class name" if numbered or not name.isdigit() else "is past the last class"
    raise UserError(f"{flag} {name} {why} of this data; choose one of {list(classes)[:20]}")


def apply_anomaly(bundle: DataBundle, anomaly_class: str) -> DataBundle:
    if len(bundle.heads) != 1:
        raise UserError(f"the anomaly protocol needs data with one label column, {bundle.name} has "
                        f"{len(bundle.heads)}; keep only the column whose class is anomalous")
    head = bundle.heads[0]
    a = class_index(head.classes, anomaly_class)
    if len(head.classes) < 3:
        raise UserError(f"the anomaly protocol needs at least 3 classes (2 normal), the data has {len(head.classes)}")
    remap = np.full(len(head.classes) + 1, -1, dtype=np.int64)  # index -1 (unlabelled) stays -1
    remap[[k for k in range(len(head.classes)) if k != a]] = np.arange(len(head.classes) - 1)
    tr, te = bundle.train, bundle.test
    y_tr, y_te = tr.labels[:, 0].numpy(), te.labels[:, 0].numpy()
    normal_tr, anomalous_tr = y_tr != a, y_tr == a
    if not anomalous_tr.any() and not (y_te == a).any():
        raise UserError(f"no point of class {head.classes[a]!r} is labelled; pick a class with labelled points")
    normal, keep = torch.from_numpy(normal_tr), torch.from_numpy(anomalous_tr)
    train = tr.take(normal, torch.from_numpy(remap[y_tr[normal_tr]]))

    def both(a_te, a_tr):
        return None if a_te is None else torch.cat([a_te, a_tr[keep]])
    flags = np.concatenate([y_te == a, np.ones(int(anomalous_tr.sum()), dtype=bool)])
    y_test = torch.from_numpy(np.where(flags, -1, remap[np.concatenate([y_te, y_tr[anomalous_tr]])]))
    gaps = te.observed is not None or tr.observed is not None
    observed = both(te.observed_mask(), tr.observed_mask()) if gaps else None
    test = ArrayData(both(te.x, tr.x), y_test, te.shift, te.scale, both(te.targets, tr.targets),
                     both(te.lengths, tr.lengths), observed=observed)
    meta = dict(bundle.meta, anomaly_class=head.classes[a], test_anomalous=flags)
    if meta.get("test_carved"):  # the labelled points the carve took, of the normal classes the notes count
        meta["test_carved"] = int(((y_te >= 0) & (y_te != a)).sum())
    heads = [replace(head, classes=tuple(c for k, c in enumerate(head.classes) if k != a))]
    return DataBundle(bundle.name, train, test, heads, bundle.kind, bundle.likelihood, meta)


def load_for_config(data_cfg, data_dir: str | None = None) -> DataBundle:
    """The dataset a run's ``[data]`` section describes, with the anomaly protocol applied."""
    bundle = load_dataset(data_cfg.dataset, data_dir or data_cfg.data_dir, label_column=data_cfg.label_column,
                          id_column=data_cfg.id_column, feature_columns=data_cfg.feature_columns,
                          image_size=data_cfg.image_size, test_data=data_cfg.test_data)
    return apply_anomaly(bundle, data_cfg.anomaly_class) if data_cfg.anomaly_class is not None else bundle
