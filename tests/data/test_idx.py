"""IDX reader: valid files (raw and gzip) and every kind of corruption."""

import gzip
import struct

import numpy as np
import pytest

from semivae.data import read_idx
from semivae.errors import UserError


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


@pytest.fixture
def images() -> np.ndarray:
    return np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)


def test_raw_and_gzip_roundtrip(tmp_path, images):
    raw = tmp_path / "train-images-idx3-ubyte"
    raw.write_bytes(idx_bytes(images))
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_bytes(images)))
    for path in (raw, gz):
        out = read_idx(path)
        assert out.dtype == np.uint8 and out.shape == (5, 4, 3)
        np.testing.assert_array_equal(out, images)
        assert out.flags.writeable


def test_labels_and_big_endian_dtype(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "l").write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "l"), labels)
    ints = np.array([1, -2, 300], dtype=">i4")
    (tmp_path / "i").write_bytes(idx_bytes(ints, code=0x0C))
    np.testing.assert_array_equal(read_idx(tmp_path / "i"), [1, -2, 300])


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b"\x12\x34" + b[2:], "not an IDX file"),
        (lambda b: b[:2] + b"\x07" + b[3:], "dtype code 0x07"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:6], "truncated inside its header"),
        (lambda b: b + b"\x00\x00", "trailing bytes"),
        (lambda b: b"", "not an IDX file"),
    ],
)
def test_corrupt_files(tmp_path, images, mutate, match):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mutate(idx_bytes(images)))
    with pytest.raises(UserError, match=match) as err:
        read_idx(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg and ";" in msg


def test_bad_gzip(tmp_path, images):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="not a valid gzip"):
        read_idx(path)
    path.write_bytes(gzip.compress(idx_bytes(images))[:-20])  # truncated stream
    with pytest.raises(UserError, match="not a valid gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read IDX file"):
        read_idx(tmp_path / "nope")
