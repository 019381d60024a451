"""Reader for IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order. MNIST
images use magic ``0x00000803`` (uint8, 3 dims: N, rows, cols) and labels ``0x00000801``
(uint8, 1 dim). Files may be gzip-compressed (``.gz``) or raw. The whole payload is
turned into an array with one ``np.frombuffer`` call: no per-sample Python.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError

# IDX dtype code -> numpy dtype (multi-byte values are big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
_FIX = "replace it with an intact copy (delete it to have it downloaded again)"


def read_idx(path: str | Path, expect: tuple[int, int] | None = None) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a writable array of its declared shape.

    Raises :class:`UserError` naming the file if it is not valid gzip, not an IDX file,
    has an unknown dtype code, or holds fewer or more bytes than its header promises.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read IDX file {path} ({err.strerror}); check the path and permissions") from None
    data = _decompress(raw, path) if path.suffix == ".gz" or raw[:2] == GZIP_MAGIC else raw
    return parse_idx(data, str(path), expect)


def _decompress(raw: bytes, path: Path) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{path} is not a valid gzip file ({err}); {_FIX}") from None


def parse_idx(data: bytes, name: str = "<bytes>", expect: tuple[int, int] | None = None) -> np.ndarray:
    """Parse decompressed IDX bytes; ``name`` is used in error messages; ``expect`` = (dtype
    code, dimensions) the file must declare (its magic number, e.g. 0x08, 3 for MNIST images)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{name} is not an IDX file (bad magic number {data[:4].hex() or 'none'}); {_FIX}")
    code, ndim = data[2], data[3]
    if expect is not None and (code, ndim) != expect:
        raise UserError(f"{name} has magic number 0x{data[:4].hex()} but this file must have "
                        f"0x0000{expect[0]:02x}{expect[1]:02x}; {_FIX}")
    if code not in IDX_DTYPES:
        raise UserError(f"{name} has unknown IDX dtype code 0x{code:02x}; {_FIX}")
    if ndim == 0:
        raise UserError(f"{name} declares 0 dimensions, not a usable IDX array; {_FIX}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{name} is truncated inside its header ({len(data)} bytes); {_FIX}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise UserError(f"{name} is truncated: header promises {expected} data bytes, file has {got}; {_FIX}")
    if got > expected:
        raise UserError(f"{name} has {got - expected} trailing bytes after the data its header declares; {_FIX}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)
