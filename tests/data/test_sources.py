"""load_dataset / load_inputs: named data sets, IDX lookup and download, npz/folder/csv."""

import gzip
import io
import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semivae.data import ArrayData, DataBundle, load_dataset, load_inputs
from semivae.data import download as dl
from semivae.errors import UserError

SHARED = Path("/work/shared/datasets")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No real cache, no SEMIVAE_DATA, and no real network call in any test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SEMIVAE_DATA", raising=False)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_fake_mnist(folder: Path, label: int, n: int = 6, n_labels: int | None = None, gz: bool = True) -> None:
    """Tiny MNIST-layout files whose labels are all ``label``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        x = np.full((n, 28, 28), 7, dtype=np.uint8)
        y = np.full(n if n_labels is None else n_labels, label, dtype=np.uint8)
        for stem, arr in ((f"{split}-images-idx3-ubyte", x), (f"{split}-labels-idx1-ubyte", y)):
            data = idx_bytes(arr)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and ";" in msg
    return msg


# ----------------------------------------------------------------- named data sets


def test_digits_shapes_and_split():
    b = load_dataset("digits")
    assert isinstance(b, DataBundle) and b.kind == "image" and b.likelihood == "bernoulli"
    assert (len(b.train), len(b.test)) == (1437, 360)
    assert b.train.x.dtype == torch.uint8 and b.train.shape == (1, 8, 8)
    assert int(b.train.x.max()) == 16 and b.train.scale == pytest.approx(1 / 16)
    assert list(b.heads[0].classes) == [str(i) for i in range(10)]
    assert b.train.inputs(torch.arange(4)).max() <= 1.0


def shared_mnist_root() -> Path | None:
    for root in (os.environ.get("SEMIVAE_DATA"), SHARED):
        if root and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return Path(root)
    return None


_SHARED_ROOT = shared_mnist_root()  # read before the autouse fixture clears the env


@pytest.mark.skipif(_SHARED_ROOT is None, reason="MNIST files not available")
def test_real_mnist():
    b = load_dataset("mnist", str(_SHARED_ROOT), download=False)
    assert b.train.x.shape == (60000, 1, 28, 28) and b.test.x.shape == (10000, 1, 28, 28)
    counts = np.bincount(b.train.labels[:, 0].numpy(), minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert b.train.scale == pytest.approx(1 / 255) and list(b.heads[0].classes) == [str(i) for i in range(10)]


def test_lookup_order_and_layouts(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "arg" / "mnist", label=1)
    write_fake_mnist(tmp_path / "env", label=2, gz=False)  # files directly in the root, raw
    write_fake_mnist(tmp_path / "cache" / "semivae" / "mnist", label=3)
    monkeypatch.setenv("SEMIVAE_DATA", str(tmp_path / "env"))
    assert int(load_dataset("mnist", str(tmp_path / "arg")).train.labels[:, 0][0]) == 1
    assert int(load_dataset("mnist").train.labels[:, 0][0]) == 2
    assert int(load_dataset("mnist", str(tmp_path / "empty")).train.labels[:, 0][0]) == 2  # falls through
    monkeypatch.delenv("SEMIVAE_DATA")
    assert int(load_dataset("mnist").train.labels[:, 0][0]) == 3
    b = load_dataset("fashion-mnist", str(tmp_path / "arg" / "mnist"))  # <root>/<file> form
    classes = b.heads[0].classes
    assert classes[0] == "T-shirt/top" and classes[-1] == "Ankle boot" and len(classes) == 10


def test_label_count_mismatch_and_range(tmp_path):
    write_fake_mnist(tmp_path / "a", label=1, n=6, n_labels=5)
    with pytest.raises(UserError, match="6 images but .* 5 labels") as err:
        load_dataset("mnist", str(tmp_path / "a"), download=False)
    one_line(err)
    write_fake_mnist(tmp_path / "b", label=12)
    with pytest.raises(UserError, match="outside 0..9"):
        load_dataset("mnist", str(tmp_path / "b"), download=False)


def test_no_network_download_fails_cleanly(tmp_path):
    with pytest.raises(UserError, match="cannot download") as err:
        load_dataset("fashion-mnist")
    msg = one_line(err)
    assert "train-images-idx3-ubyte.gz" in msg and "SEMIVAE_DATA" in msg and "--data-dir" in msg
    with pytest.raises(UserError, match="downloading is off"):
        load_dataset("mnist", download=False)
    assert not (tmp_path / "cache" / "semivae" / "mnist").exists() or not any(
        (tmp_path / "cache" / "semivae" / "mnist").iterdir()
    )


def test_download_verifies_and_writes_cache(tmp_path, monkeypatch):
    src = tmp_path / "server"
    write_fake_mnist(src, label=4)
    for stem in dl.IDX_FILES:
        digest = __import__("hashlib").sha256(gzip.decompress((src / f"{stem}.gz").read_bytes())).hexdigest()
        monkeypatch.setitem(dl.SHA256["mnist"], stem, digest)
    urls = []

    def fake_urlopen(url, timeout):
        urls.append(url)
        assert timeout <= 30
        return io.BytesIO((src / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    b = load_dataset("mnist")
    assert int(b.train.labels[:, 0][0]) == 4 and len(urls) == 4 and urls[0].startswith(dl.BASE_URLS["mnist"])
    cached = sorted(p.name for p in (tmp_path / "cache" / "semivae" / "mnist").iterdir())
    assert cached == sorted(f"{s}.gz" for s in dl.IDX_FILES)  # no temporary files left
    monkeypatch.setitem(dl.SHA256["fashion-mnist"], dl.IDX_FILES[0], "0" * 64)
    with pytest.raises(UserError, match="SHA-256"):
        load_dataset("fashion-mnist")
    assert not (tmp_path / "cache" / "semivae" / "fashion-mnist").exists()


def test_unknown_name_lists_known():
    with pytest.raises(UserError, match="digits, mnist, fashion-mnist") as err:
        load_dataset("cifar-77")
    one_line(err)


# ------------------------------------------------------------------------------ npz


def test_npz_images_with_unlabelled_and_carving(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(130, 6, 5), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 40)
    y = np.concatenate([y, np.full(10, -1)])
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["a", "b", "c"]))
    b = load_dataset(str(tmp_path / "d.npz"))
    assert b.kind == "image" and list(b.heads[0].classes) == ["a", "b", "c"] and b.train.shape == (1, 6, 5)
    assert (len(b.train), len(b.test)) == (106, 24)
    assert np.bincount(b.test.labels[:, 0].numpy()).tolist() == [8, 8, 8]
    assert int((b.train.labels[:, 0] == -1).sum()) == 10
    assert b.train.scale == pytest.approx(1 / 255) and b.train.x.dtype == torch.uint8
    assert b.meta["source"].endswith("d.npz")
    b2 = load_dataset(str(tmp_path / "d.npz"))
    assert torch.equal(b.test.x, b2.test.x)  # fixed seed


def test_npz_float_images_and_test_arrays(tmp_path):
    x = np.random.default_rng(0).random((20, 2, 4, 4)).astype(np.float32)
    y = np.arange(20) % 2
    np.savez(tmp_path / "f.npz", x=x, y=y, x_test=x[:3], y_test=y[:3])
    b = load_dataset(str(tmp_path / "f.npz"))
    assert b.train.x.dtype == torch.float32 and b.train.scale == 1.0 and len(b.train) == 20 and len(b.test) == 3
    assert list(b.heads[0].classes) == ["0", "1"]
    np.savez(tmp_path / "g.npz", x=x * 2, y=y)
    with pytest.raises(UserError, match=r"outside \[0, 1\]") as err:
        load_dataset(str(tmp_path / "g.npz"))
    one_line(err)


def test_npz_tabular_standardised(tmp_path):
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(50, 4))
    x[:, 3] = 1.0  # constant column: std floored, no NaN
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(50) % 5)
    b = load_dataset(str(tmp_path / "t.npz"))
    assert b.kind == "vector" and b.likelihood == "gaussian" and b.train.x.dtype == torch.float32
    z = b.train.inputs(torch.arange(len(b.train)))
    assert torch.allclose(z[:, :3].mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z[:, :3].std(0, unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.isfinite(z).all()
    assert b.test.shift is b.train.shift and b.test.scale is b.train.scale


@pytest.mark.parametrize("y, classes, match", [
    (np.array([0, 1, 5, 1]), np.array(["a", "b"]), "label 5 outside 0..1"),
    (np.array([0, 1, -2, 1]), None, "label -2"),
])
def test_npz_bad_labels(tmp_path, y, classes, match):
    extra = {} if classes is None else {"classes": classes}
    np.savez(tmp_path / "b.npz", x=np.zeros((4, 3)), y=y, **extra)
    with pytest.raises(UserError, match=match) as err:
        load_dataset(str(tmp_path / "b.npz"))
    one_line(err)


def test_npz_pickled_classes_rejected(tmp_path):
    np.savez(tmp_path / "p.npz", x=np.zeros((4, 3)), y=np.zeros(4, int), classes=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="needs pickle"):
        load_dataset(str(tmp_path / "p.npz"))


def test_npz_too_few_labels_gives_empty_test(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((5, 8, 8), np.uint8), y=np.array([0, 1, 1, -1, -1]))
    b = load_dataset(str(tmp_path / "s.npz"))
    assert len(b.train) == 5 and len(b.test) == 0 and b.test.shape == (1, 8, 8)
    np.savez(tmp_path / "u.npz", x=np.zeros((5, 3)))  # no labels at all
    b = load_dataset(str(tmp_path / "u.npz"))
    assert len(b.test) == 0 and b.test.shape == (3,) and b.heads == [] and b.train.labels.shape == (5, 0)


# --------------------------------------------------------------------------- folder


def save_img(path: Path, value, size=(5, 4), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_image_folder_grey_and_unlabelled(tmp_path):
    root = tmp_path / "imgs"
    for c in ("cat", "dog"):
        for i in range(5):
            save_img(root / c / f"{i}.png", 10 * i)
    save_img(root / "unlabelled" / "u.bmp", 200)
    (root / "dog" / "notes.txt").write_text("ignored")
    b = load_dataset(str(root))
    assert list(b.heads[0].classes) == ["cat", "dog"] and b.train.shape == (1, 4, 5) and b.train.x.dtype == torch.uint8
    assert len(b.train) + len(b.test) == 11 and len(b.test) == 2
    assert int((b.train.labels[:, 0] == -1).sum()) == 1


def test_image_folder_rgb_and_errors(tmp_path):
    root = tmp_path / "rgb"
    save_img(root / "a" / "1.png", 3)
    save_img(root / "a" / "2.png", 4)
    save_img(root / "b" / "1.jpg", (255, 0, 0), mode="RGB")
    save_img(root / "b" / "2.png", 9)
    b = load_dataset(str(root))
    assert b.train.shape == (3, 4, 5)  # one colour image in four: at least 5 %, the folder reads as RGB
    save_img(root / "b" / "3.png", 1, size=(7, 7))
    with pytest.raises(UserError, match=r"3.png is 7x7") as err:
        load_dataset(str(root))
    one_line(err)
    (root / "b" / "3.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read image .*3.png"):
        load_dataset(str(root))


def test_image_folder_test_data_is_the_test_split(tmp_path):
    for c in ("cat", "dog"):
        for i in range(4):
            save_img(tmp_path / "train" / c / f"{i}.png", 10 * i)
    save_img(tmp_path / "test" / "dog" / "t1.png", 7)
    save_img(tmp_path / "test" / "dog" / "t2.png", 8)
    save_img(tmp_path / "test" / "unlabelled" / "u.png", 9)  # no label: not a test point
    b = load_dataset(str(tmp_path / "train"), test_data=str(tmp_path / "test"))
    assert len(b.train) == 8 and (b.train.labels >= 0).all()  # no training label held out
    assert b.test.labels[:, 0].tolist() == [1, 1] and b.test.ids.tolist() == ["dog/t1.png", "dog/t2.png"]
    save_img(tmp_path / "test" / "bird" / "b.png", 1)
    with pytest.raises(UserError, match="has class 'bird', which the training data lacks") as err:
        load_dataset(str(tmp_path / "train"), test_data=str(tmp_path / "test"))
    one_line(err)
    save_img(tmp_path / "big" / "cat" / "1.png", 1, size=(9, 9))
    with pytest.raises(UserError, match=r"of shape \(1, 9, 9\) .* \(or --image-size H,W\)"):
        load_dataset(str(tmp_path / "train"), test_data=str(tmp_path / "big"))
    with pytest.raises(UserError, match="must be an image folder, the form of the training data"):
        load_dataset(str(tmp_path / "train"), test_data=str(tmp_path / "train" / "cat" / "1.png"))


# ------------------------------------------------------------------------------ csv


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_string_labels_and_unlabelled(tmp_path):
    rows = ["f1,label,f2"] + [f"{i},{'yes' if i % 2 else 'no'},{i * 2}" for i in range(20)] + ["1.5,,2", "2.5,NA,3"]
    b = load_dataset(str(write_csv(tmp_path / "d.csv", "\n".join(rows) + "\n")))  # NA: unlabelled, as pandas reads it
    assert b.kind == "vector" and list(b.heads[0].classes) == ["no", "yes"] and b.meta["feature_names"] == ["f1", "f2"]
    assert b.meta["label_column"] == "label" and len(b.train) + len(b.test) == 22
    assert len(b.test) == 4 and int((b.train.labels[:, 0] == -1).sum()) == 2


def test_csv_test_data_matches_classes_and_columns_by_name(tmp_path):
    rows = ["f1,label,f2"] + [f"{i},{'yes' if i % 2 else 'no'},{i * 2}" for i in range(20)]
    train = write_csv(tmp_path / "d.csv", "\n".join(rows) + "\n")
    test = write_csv(tmp_path / "t.csv", "f2,f1,label\n4,2,no\n5,3,\n7,3,yes\n")  # columns in another order
    b = load_dataset(str(train), test_data=str(test))
    assert len(b.train) == 20 and b.test.labels[:, 0].tolist() == [0, 1]
    assert b.test.x[1].tolist() == [3.0, 7.0]  # raw values in the training columns' order (f1, f2)
    with pytest.raises(UserError, match="has class 'maybe'"):
        load_dataset(str(train), test_data=str(write_csv(tmp_path / "m.csv", "f1,f2,label\n1,2,maybe\n")))
    with pytest.raises(UserError, match="has no labelled point"):
        load_dataset(str(train), test_data=str(write_csv(tmp_path / "u.csv", "f1,f2,label\n1,2,\n")))
    with pytest.raises(UserError, match="must be a .csv file"):
        load_dataset(str(train), test_data=str(tmp_path))
    with pytest.raises(UserError, match="--test-data gives the test split of an image folder or a .csv"):
        load_dataset("digits", test_data=str(test))


def test_csv_int_labels_numeric_order(tmp_path):
    rows = ["x,y"] + [f"{i},{[2, 10, -1][i % 3]}" for i in range(12)]
    b = load_dataset(str(write_csv(tmp_path / "n.csv", "\n".join(rows))), label_column="y")
    assert list(b.heads[0].classes) == ["2", "10"]
    rows = ["x,y"] + [f"{i},{['2.0', '10.0', ''][i % 3]}" for i in range(12)]  # pandas' way with blanks
    b = load_dataset(str(write_csv(tmp_path / "f.csv", "\n".join(rows))), label_column="y")
    assert list(b.heads[0].classes) == ["2", "10"]


@pytest.mark.parametrize("text, match", [
    ("a,label\n1,x\ninf,y\n", r"line 3, column 'a' is infinite; fill in a finite value, leave the cell empty"),
    ("a,label\n1,x\nabc,y\n", r"line 3, column 'a': 'abc' is not a number"),
    ("a,b\n1,2\n", r"no label column 'label' \(columns: a, b\); pass --label-column NAME \(a table with no label yet"),
    ("a,label\n1,x,3\n", "line 2 has 3 cells"),
    ("a,b,label\n1,,x\nNA, ,y\n", "line 3 has no feature value at all; drop that row"),
    ("a,b,label\n1,,x\n2,NA,y\n", "b in .* is missing in every training row; drop that column"),
    ("a,b,label\n1,red,x\n2,blue,y\n3,4,y\n", "'red' is text, as are most of that column's cells; encode the column"),
    ("a;b;label\n1;2;x\n", "separates its columns with ';', not commas"),
    ("name,a,label\ns0,1,x\ns1,2,y\ns2,3,y\n", "every row has its own: if the column names the rows, pass "
                                             "--id-column name"),
])
def test_csv_errors(tmp_path, text, match):
    with pytest.raises(UserError, match=match) as err:
        load_dataset(str(write_csv(tmp_path / "e.csv", text)))
    one_line(err)


# ---------------------------------------------------------------------- load_inputs


def test_load_inputs_csv_by_name(tmp_path):
    path = write_csv(tmp_path / "new.csv", "f2,f1\n4,1\n6,2\n")
    like = {"kind": "tabular", "shape": (2,), "shift": [1.0, 2.0], "scale": [1.0, 0.5],
            "label_column": "label", "feature_names": ["f1", "f2"]}
    d = load_inputs(str(path), like)
    assert isinstance(d, ArrayData) and (d.labels == -1).all()
    assert torch.allclose(d.inputs(torch.arange(2)), torch.tensor([[0.0, 1.0], [1.0, 2.0]]))
    like["feature_names"] = ["f1", "f9"]
    with pytest.raises(UserError, match="f9"):
        load_inputs(str(path), like)


def test_load_inputs_images_and_shape_mismatch(tmp_path):
    save_img(tmp_path / "new" / "b.png", 255)
    save_img(tmp_path / "new" / "a.png", 0)
    like = {"kind": "image", "shape": (1, 4, 5), "shift": 0.0, "scale": 1 / 16,
            "label_column": "label", "feature_names": None}
    d = load_inputs(str(tmp_path / "new"), like)
    assert d.inputs(torch.arange(2)).flatten(1).mean(1).tolist() == pytest.approx([0.0, 1.0])  # sorted a, b
    like["shape"] = (1, 8, 8)
    with pytest.raises(UserError, match="5x4") as err:
        load_inputs(str(tmp_path / "new"), like)
    one_line(err)
    np.savez(tmp_path / "n.npz", x=np.full((3, 6, 6), 8, np.uint8))
    with pytest.raises(UserError, match=r"shape \(1, 6, 6\) but the model expects \(1, 8, 8\)"):
        load_inputs(str(tmp_path / "n.npz"), like)
    like["shape"] = (1, 6, 6)
    d = load_inputs(str(tmp_path / "n.npz"), like)  # same raw form as training (digits-like 0..16)
    assert d.x.dtype == torch.uint8 and d.inputs(torch.arange(1)).max() == pytest.approx(0.5)


def test_npz_labels_with_a_gap_are_a_user_error(tmp_path):
    import numpy as np
    import pytest

    from semivae.data import load_dataset
    from semivae.errors import UserError

    p = tmp_path / "gap.npz"
    np.savez(p, x=np.random.rand(6, 3).astype(np.float32), y=np.array([0, 1, 12, 0, 1, -1]))
    with pytest.raises(UserError, match="none is 2"):
        load_dataset(str(p))

