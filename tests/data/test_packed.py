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
    (tmp_path / "beside").mkdir()  # the packed folder's mode is an ordinary new folder's, not mkdtemp's 0700
    assert (tmp_path / "packed").stat().st_mode == (tmp_path / "beside").stat().st_mode
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


def test_pack_reads_a_file_as_train_does(tmp_path):
    """`data pack` takes train's reading options: a folder of mixed sizes packs at --image-size,
    and a run trained from the packed set resizes new images for predict alike."""
    from PIL import Image

    for i, (w, h) in enumerate([(20, 30), (40, 40), (33, 12), (16, 16), (9, 9), (25, 14)]):
        (tmp_path / "pics" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w), 40 * i, np.uint8)).save(tmp_path / "pics" / f"c{i % 2}" / f"{i}.png")
    assert main(["data", "pack", str(tmp_path / "pics"), str(tmp_path / "p"), "--image-size", "8,12", "--quiet"]) == 0
    b = load_dataset(str(tmp_path / "p"))
    assert b.train.shape == (1, 8, 12) and b.meta["image_size"] == [8, 12]
    run = semivae.train(dataset=str(tmp_path / "p"), out=tmp_path / "r", **{**FAST, "labels_per_class": None})
    proba, _ = semivae.predict(run, tmp_path / "pics" / "c1" / "1.png")  # 40x40, resized as the pack was
    assert proba.shape == (1, 2)
    names = sorted(b.train.ids.tolist() + b.test.ids.tolist())  # the files' names survive the pack
    assert names == sorted(f"c{i % 2}/{i}.png" for i in range(6))
    assert b.train.take(torch.tensor([1])).ids.tolist() == [b.train.ids[1]]
    assert main(["data", "pack", "digits", str(tmp_path / "q"), "--image-size", "4"]) == 2  # not a folder
    assert not (tmp_path / "q").exists()


def test_a_run_on_a_packed_table_keeps_its_id_and_label_columns(tmp_path):
    rng = np.random.default_rng(0)
    rows = [f"p{i},{rng.normal():.3f},{rng.normal():.3f},{i % 2 if i < 30 else ''}" for i in range(80)]
    (tmp_path / "t.csv").write_text("name,a,b,y\n" + "\n".join(rows) + "\n")
    (tmp_path / "new.csv").write_text("name,a,b\nq0,0.1,0.2\nq1,0.3,0.4\n")
    assert main(["data", "pack", str(tmp_path / "t.csv"), str(tmp_path / "p"), "--id-column", "name",
                 "--label-column", "y", "--quiet"]) == 0
    run = semivae.train(dataset=str(tmp_path / "p"), out=tmp_path / "r", **{**FAST, "labels_per_class": None})
    assert semivae.embed(run, tmp_path / "new.csv")["ids"].tolist() == ["q0", "q1"]  # named as the table names them
