"""Data larger than memory: a packed data set on disk trains exactly like the same data in memory."""

import json

import numpy as np
import pytest
import torch

import semivae
from semivae.cli import main
from semivae.data import load_dataset
from semivae.data.packed import PackedData, pack

FAST = dict(hidden=[16], latent_dim=2, epochs=2, batch_size=64, labels_per_class=5, threads=1, progress=False)


def _rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_from_disk_equals_training_in_memory(tmp_path, capsys):
    assert main(["data", "pack", "digits", str(tmp_path / "packed"), "--quiet"]) == 0
    b = load_dataset(str(tmp_path / "packed"))
    assert isinstance(b.train, PackedData) and isinstance(b.train.x, np.memmap)  # on disk, not in memory
    assert b.train.shape == (1, 8, 8) and [h.name for h in b.heads] == ["label"]
    ref = semivae.train(dataset="digits", out=tmp_path / "mem", **FAST)
    for workers in (0, 2):
        run = semivae.train(dataset=str(tmp_path / "packed"), workers=workers, out=tmp_path / f"disk{workers}", **FAST)
        assert _rows(run) == _rows(ref), workers
    assert semivae.evaluate(tmp_path / "disk2")["accuracy"] == semivae.evaluate(ref)["accuracy"]


def test_shift_augmentation_multiplies_the_training_images(tmp_path):
    out = pack(load_dataset("digits"), tmp_path / "aug", augment_shifts=1)
    b = load_dataset(str(out))
    base = load_dataset("digits")
    assert len(b.train) == 9 * len(base.train) and len(b.test) == len(base.test)
    first = b.train.inputs(torch.tensor([0]))  # shift (-1, -1): moved up and left
    original = base.train.inputs(torch.tensor([0]))
    torch.testing.assert_close(first[0, 0, :-1, :-1], original[0, 0, 1:, 1:])
    centre = b.train.inputs(torch.tensor([4 * len(base.train)]))  # shift (0, 0)
    torch.testing.assert_close(centre, original)
    assert torch.equal(b.train.labels[: len(base.train)], base.train.labels)


def test_an_interrupted_pack_leaves_nothing(tmp_path, monkeypatch):
    import semivae.data.packed as packed

    monkeypatch.setattr(packed.np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        pack(load_dataset("digits"), tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_packing_onto_an_existing_folder_is_refused(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    assert main(["data", "pack", "digits", str(tmp_path / "p")]) == 2
    assert "already exists" in capsys.readouterr().err
