"""The anomaly protocol on a user's table: the held-out class goes to the test split, and what the
notes count of the carve is the normal classes' part."""

import numpy as np

from semivae.data import load_dataset
from semivae.data.anomaly import apply_anomaly


def test_the_carve_counts_only_the_normal_classes(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{rng.normal():.3f},{rng.normal():.3f},{['n1', 'n2', 'odd'][i % 3]}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    bundle = load_dataset(str(tmp_path / "t.csv"))
    odd = apply_anomaly(bundle, "odd")
    test_normal = int((bundle.test.labels[:, 0] != 2).sum())
    assert bundle.meta["test_carved"] == len(bundle.test) > odd.meta["test_carved"] == test_normal
    assert odd.meta["test_anomalous"].sum() == 20 and (odd.train.labels[:, 0] >= 0).sum() == 40 - test_normal


def test_a_class_is_named_or_placed_only_where_no_name_is_a_number():
    import pytest

    from semivae.data.anomaly import class_index
    from semivae.errors import UserError

    assert class_index(("3", "5", "7"), "7") == 2
    with pytest.raises(UserError, match="--class 1 is not a class name of this data; choose one of"):
        class_index(("3", "5", "7"), "1", "--class")  # "5" sits at place 1: a trap, refused
    assert class_index(("Bag", "Coat", "Dress"), "1") == 1  # names without numbers: a place, as for Fashion-MNIST
    with pytest.raises(UserError, match="is past the last class"):
        class_index(("Bag", "Coat"), "5")
