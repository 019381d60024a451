"""Sequence data: padding and lengths, checks, standardisation, the UCI-HAR layout, aeon sets."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from semivae.data import load_dataset, load_inputs
from semivae.data.inputs import load_labelled
from semivae.data.sequences import HAR_SIGNALS, check_sequences, fill_series, from_concatenated, pad
from semivae.errors import UserError


def test_padding_keeps_lengths_and_zeroes_the_rest():
    x, lengths = pad([np.ones((3, 2)), 2 * np.ones((5, 2))], "s")
    assert x.shape == (2, 5, 2) and lengths.tolist() == [3, 5]
    assert (x[0, 3:] == 0).all() and (x[1] == 2).all()
    y, l2 = from_concatenated(np.concatenate([np.ones((3, 2)), 2 * np.ones((5, 2))]), np.array([3, 5]), "s")
    assert np.array_equal(x, y) and np.array_equal(lengths, l2)


@pytest.mark.parametrize("x,lengths,needle", [
    (np.zeros((2, 4, 3)), np.array([4, 0]), "length 0, outside 1..4"),
    (np.zeros((2, 4, 3)), np.array([4, 5]), "length 5, outside 1..4"),
    (np.full((1, 4, 2), np.nan), np.array([2]), "series 0 of x in f.npz has no value on its 2 steps"),
    (np.where(np.arange(4)[None, :, None] == 1, np.inf, np.zeros((1, 4, 2))), None, "infinite value at series 0, step 1"),
    (np.zeros((2, 4)), None, "(N, T, C)"),
])
def test_bad_series_are_one_line_errors(x, lengths, needle):
    with pytest.raises(UserError, match=None) as e:
        check_sequences(x, lengths, "x in f.npz")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_nan_in_padding_is_fine():
    x = np.zeros((1, 4, 2))
    x[0, 2:] = np.nan  # after the series' length: padding, never read
    out, _ = check_sequences(x, np.array([2]), "s")
    assert np.isfinite(out).all()


def test_a_missing_value_holds_the_interpolation_of_its_channel_and_is_not_observed():
    nan = np.nan
    x = np.array([[[1.0, nan], [nan, nan], [3.0, nan], [nan, nan], [7.0, 7.0]]], dtype=np.float32)  # (1, 5, 2)
    x, lengths = check_sequences(x, np.array([4]), "s")  # step 4 is padding
    filled, observed = fill_series(x, lengths, np.array([0.5, -2.0], dtype=np.float32))
    assert filled[0, :, 0].tolist() == [1, 2, 3, 3, 0]  # between, held at the end, padding 0
    assert filled[0, :, 1].tolist() == [-2, -2, -2, -2, 0]  # none in this series: the training mean
    assert observed[0].tolist() == [[True, False], [False, False], [True, False], [False, False], [False, False]]
    assert fill_series(np.ones((2, 3, 1), np.float32), np.array([3, 2]), np.zeros(1))[1] is None


def _npz_sequences(path, n=40, t=12, c=3, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, t + 1, n)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, t, c)).astype(np.float32) * 2 + 5
    x[np.arange(n), :, 0] += y[:, None] * 3  # channel 0 tells the class
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0
    np.savez(path, x=x, lengths=lengths, y=y)
    return x, lengths, y


def test_an_npz_with_lengths_is_a_sequence_set_standardised_per_channel(tmp_path):
    x, lengths, y = _npz_sequences(tmp_path / "s.npz")
    b = load_dataset(str(tmp_path / "s.npz"))
    assert b.kind == "sequence" and b.likelihood == "gaussian-hetero" and b.train.shape == (12, 3)
    assert len(b.train) + len(b.test) == 40 and b.train.lengths is not None
    idx = torch.arange(len(b.train))
    z, mask = b.train.inputs(idx), b.train.mask(idx)
    valid = z[mask]  # (steps, C): standardised over the valid steps of the training split
    torch.testing.assert_close(valid.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(valid.std(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def test_a_ragged_npz_without_lengths_is_refused(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 2)), np.zeros((5, 2))
    np.savez(tmp_path / "r.npz", x=ragged, y=np.array([0, 1]))
    with pytest.raises(UserError, match="ragged"):
        load_dataset(str(tmp_path / "r.npz"))
    x, lengths = np.zeros((6, 5, 2), np.float32), np.array([3, 5, 4, 5, 2, 5])  # zero-padded: lengths say where
    np.savez(tmp_path / "t.npz", x=x, lengths=lengths, y=np.arange(6) % 2, x_test=x, y_test=np.arange(6) % 2)
    with pytest.raises(UserError, match="has lengths for x but not for x_test; save lengths_test too"):
        load_dataset(str(tmp_path / "t.npz"))


def test_new_series_must_match_the_training_channels_and_a_dense_nets_length(tmp_path):
    info = {"kind": "sequence", "shape": [12, 3], "shift": [0.0] * 3, "scale": [1.0] * 3}
    np.savez(tmp_path / "ok.npz", x=np.ones((2, 7, 3)), lengths=np.array([7, 5]))
    d = load_inputs(str(tmp_path / "ok.npz"), info)
    assert d.x.shape == (2, 12, 3) and d.lengths.tolist() == [7, 5]  # padded to the training length
    np.savez(tmp_path / "chan.npz", x=np.ones((2, 7, 4)), lengths=np.array([7, 5]))
    with pytest.raises(UserError, match="4 channels but the model was trained on 3"):
        load_inputs(str(tmp_path / "chan.npz"), info)
    np.savez(tmp_path / "long.npz", x=np.ones((1, 20, 3)), lengths=np.array([20]))
    with pytest.raises(UserError, match="longer than the 12"):  # a dense net reads the training length
        load_inputs(str(tmp_path / "long.npz"), info)
    long = load_inputs(str(tmp_path / "long.npz"), {**info, "any_length": True})  # a recurrent one any length
    assert long.x.shape == (1, 20, 3) and long.lengths.tolist() == [20]


def _har_folder(root: Path, n=(6, 4), t=8):
    rng = np.random.default_rng(0)
    root.mkdir()
    (root / "activity_labels.txt").write_text("1 WALKING\n2 WALKING_UPSTAIRS\n3 SITTING\n")
    for split, size in zip(("train", "test"), n):
        (root / split / "Inertial Signals").mkdir(parents=True)
        np.savetxt(root / split / f"y_{split}.txt", rng.integers(1, 4, size), fmt="%d")
        for s in HAR_SIGNALS:
            np.savetxt(root / split / "Inertial Signals" / f"{s}_{split}.txt", rng.normal(size=(size, t)), fmt="%.6e")


def test_the_uci_har_layout_loads(tmp_path):
    _har_folder(tmp_path / "UCI HAR Dataset")
    b = load_dataset(str(tmp_path / "UCI HAR Dataset"))
    assert b.kind == "sequence" and b.train.x.shape == (6, 8, 9) and b.test.x.shape == (4, 8, 9)
    assert b.heads[0].classes == ("WALKING", "WALKING_UPSTAIRS", "SITTING")
    assert b.meta["channel_names"][:3] == ["body_acc_x", "body_acc_y", "body_acc_z"]
    assert b.train.labels.min() >= 0 and b.train.labels.max() <= 2
    info = {"kind": "sequence", "shape": [8, 9], "shift": [0.0] * 9, "scale": [1.0] * 9, "any_length": True}
    test, labels = load_labelled(tmp_path / "UCI HAR Dataset", info)  # a run on the folder reads its test split
    assert torch.equal(test.x, b.test.x) and labels == [b.heads[0].classes[k] for k in b.test.labels[:, 0].tolist()]
    (tmp_path / "UCI HAR Dataset" / "test" / "y_test.txt").write_text("1\n2\n")
    with pytest.raises(UserError, match="2 labels for 4 windows"):
        load_dataset(str(tmp_path / "UCI HAR Dataset"))


@pytest.mark.parametrize("name,shapes,classes,lengths", [
    ("basic-motions", ((40, 100, 6), (40, 100, 6)), 4, (100, 100)),
    ("japanese-vowels", ((270, 29, 12), (370, 29, 12)), 9, (7, 29)),
])
def test_the_aeon_sets_load_with_their_documented_shapes(name, shapes, classes, lengths):
    pytest.importorskip("aeon", reason="the timeseries extra (CI installs it)")
    b = load_dataset(name)
    assert (tuple(b.train.x.shape), tuple(b.test.x.shape)) == shapes and len(b.heads[0].classes) == classes
    all_lengths = torch.cat([d.lengths if d.lengths is not None else torch.full((len(d),), d.x.shape[1])
                             for d in (b.train, b.test)])
    assert (int(all_lengths.min()), int(all_lengths.max())) == lengths


def test_without_aeon_a_one_line_error_says_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_aeon(name, *a, **k):
        if name.startswith("aeon"):
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_aeon)
    with pytest.raises(UserError, match=r"pip install 'semivae\[timeseries\]'"):
        load_dataset("basic-motions")


@pytest.mark.skipif(not os.environ.get("SEMIVAE_DATA"), reason="needs SEMIVAE_DATA (CI points it at ../shared/datasets)")
def test_sequential_mnist_reads_images_row_by_row():
    b = load_dataset("sequential-mnist")
    images = load_dataset("mnist")
    assert b.kind == "sequence" and b.likelihood == "bernoulli" and b.train.x.shape == (60000, 28, 28)
    assert torch.equal(b.train.x[5], images.train.x[5, 0]) and b.train.x.dtype == torch.uint8
