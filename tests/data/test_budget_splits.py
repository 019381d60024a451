import numpy as np
import pytest
import torch

from semivae.config import DataConfig
from semivae.data.budget import select_labelled
from semivae.data.dataset import ArrayData
from semivae.data.splits import apply_split, make_split
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
    split = make_split(Y, 10, DataConfig(labels="20", val_fraction=0.2), seed=0)
    assert len(split.val) == 60 and len(split.labelled) == 20 and len(split.val_labelled) == 0
    assert not set(split.val) & set(split.labelled)
    data = apply_split(_full(), split)
    assert len(data.train) == 240 and (data.val.y == -1).all()
    assert (data.train.y >= 0).sum() == 20
    # labelled positions point at the right rows of the training data
    rows = data.train.x[data.labelled, 0].long()
    assert set(rows.tolist()) == set(split.labelled.tolist())
    assert torch.equal(data.train.y[data.labelled], torch.from_numpy(Y[split.labelled]))


def test_val_labels_come_out_of_the_budget():
    split = make_split(Y, 10, DataConfig(labels="40", val_labels=10, val_fraction=0.1), seed=0)
    assert len(split.labelled) == 30 and len(split.val_labelled) == 10
    assert set(split.val_labelled) <= set(split.val) and not set(split.val) & set(split.labelled)
    data = apply_split(_full(), split)
    assert (data.val.y >= 0).sum() == 10


def test_oracle_val_labels_are_explicit():
    split = make_split(Y, 10, DataConfig(labels="20", oracle_val_labels=True, val_fraction=0.1), seed=0)
    assert split.oracle_val_labels and len(split.val_labelled) == 30
