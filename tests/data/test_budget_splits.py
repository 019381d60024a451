import json

import numpy as np
import pytest
import torch

from semivae.config import DataConfig
from semivae.data.budget import select_labelled
from semivae.data.dataset import ArrayData
from semivae.data.splits import Split, apply_split, make_split
from semivae.errors import UserError

Y = np.repeat(np.arange(10), 30)  # 10 classes x 30 points


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_total_budget_is_class_balanced_and_reproducible():
    idx = select_labelled(Y, 10, labels="100", rng=_rng())
    assert np.bincount(Y[idx], minlength=10).tolist() == [10] * 10
    assert np.array_equal(idx, select_labelled(Y, 10, labels="100", rng=_rng()))
    assert not np.array_equal(idx, select_labelled(Y, 10, labels="100", rng=_rng(1)))
    counts = np.bincount(Y[select_labelled(Y, 10, labels=23, rng=_rng())], minlength=10)
    assert counts.sum() == 23 and counts.max() - counts.min() <= 1


def test_per_class_fraction_all_and_zero():
    assert np.bincount(Y[select_labelled(Y, 10, labels_per_class=3, rng=_rng())]).tolist() == [3] * 10
    assert len(select_labelled(Y, 10, label_fraction=0.1, rng=_rng())) == 30
    assert len(select_labelled(Y, 10, labels="all", rng=_rng())) == 300
    assert len(select_labelled(Y, 10, rng=_rng())) == 300
    assert len(select_labelled(Y, 10, labels="0", rng=_rng())) == 0
    y = Y.copy()
    y[::2] = -1  # points without labels are never chosen
    assert (y[select_labelled(y, 10, labels="all", rng=_rng())] >= 0).all()


def test_budget_larger_than_a_class_is_a_user_error():
    with pytest.raises(UserError, match="class 0"):
        select_labelled(Y, 10, labels_per_class=31, rng=_rng())
    with pytest.raises(UserError, match="exceeds"):
        select_labelled(Y, 10, labels="301", rng=_rng())


def _full():
    x = torch.arange(300, dtype=torch.float32)[:, None]
    return ArrayData(x, torch.from_numpy(Y).long())


def test_split_hides_labels_outside_the_budget():
    split = make_split(Y[:, None], [10], DataConfig(labels="20", val_fraction=0.2), seed=0)
    (lab,), (val_lab,) = split.labelled, split.val_labelled
    assert len(split.val) == 60 and len(lab) == 20 and len(val_lab) == 0
    assert not set(split.val) & set(lab)
    data = apply_split(_full(), split)
    assert len(data.train) == 240 and (data.val.labels == -1).all()
    assert (data.train.labels >= 0).sum() == 20
    # labelled positions point at the right rows of the training data
    rows = data.train.x[data.labelled, 0].long()
    assert set(rows.tolist()) == set(lab.tolist())
    assert torch.equal(data.train.labels[data.labelled, 0], torch.from_numpy(Y[lab]))


def test_val_labels_come_out_of_the_budget():
    split = make_split(Y[:, None], [10], DataConfig(labels="40", val_labels=10, val_fraction=0.1), seed=0)
    (lab,), (val_lab,) = split.labelled, split.val_labelled
    assert len(lab) == 30 and len(val_lab) == 10
    assert set(val_lab) <= set(split.val) and not set(split.val) & set(lab)
    data = apply_split(_full(), split)
    assert (data.val.labels >= 0).sum() == 10


def test_every_named_row_trains_wherever_the_validation_carve_falls():
    rows = np.arange(0, 300, 7)  # 43 rows, some of them in any 10 % carve
    cfg = DataConfig(val_fraction=0.1, val_labels=0)
    carve = make_split(Y[:, None], [10], cfg, seed=0).val
    assert set(rows) & set(carve)
    split = make_split(Y[:, None], [10], cfg, seed=0, label_rows=rows)
    assert split.labelled[0].tolist() == rows.tolist() and not set(split.val) & set(rows)
    split = make_split(Y[:, None], [10], DataConfig(val_fraction=0.1, val_labels=5), seed=0, label_rows=rows)
    assert len(split.labelled[0]) == 38 and set(split.val_labelled[0]) <= set(rows)  # --val-labels K: K of them


def test_oracle_val_labels_are_explicit():
    split = make_split(Y[:, None], [10], DataConfig(labels="20", oracle_val_labels=True, val_fraction=0.1), seed=0)
    assert split.oracle_val_labels and len(split.val_labelled[0]) == 30


def test_each_head_draws_its_own_budget_among_its_own_labels():
    rng = np.random.default_rng(1)
    second = np.where(rng.random(300) < 0.5, rng.integers(0, 3, 300), -1)  # a 3-class column, half missing
    labels = np.stack([Y, second], 1)
    split = make_split(labels, [10, 3], DataConfig(labels_per_class=2, val_fraction=0.1), seed=0)
    assert [len(a) for a in split.labelled] == [20, 6]
    assert (second[split.labelled[1]] >= 0).all()  # drawn only where that head has a label
    assert set(split.pool) == set(split.labelled[0]) | set(split.labelled[1])
    data = apply_split(ArrayData(torch.zeros(300, 1), torch.from_numpy(labels)), split)
    visible = data.train.labels
    assert ((visible >= 0).sum(0) == torch.tensor([20, 6])).all()
    assert len(data.labelled) == len(split.pool)  # a point labelled for any head is in the labelled pool
    again = Split.from_json(split.to_json(), n_heads=2)
    assert all((a == b).all() for a, b in zip(again.labelled, split.labelled))


def test_one_head_split_json_keeps_the_format_of_older_runs():
    split = make_split(Y[:, None], [10], DataConfig(labels="20"), seed=0)
    d = json.loads(split.to_json())
    assert isinstance(d["labelled"], list) and all(isinstance(v, int) for v in d["labelled"])
    assert (Split.from_json(split.to_json(), n_heads=1).labelled[0] == split.labelled[0]).all()
