"""One way to write a file: whole or not at all (arrays: :func:`write_npz`); and one way to read tensors back.

Every writer in semivae (run directories, figures, reports, CSV outputs, the download cache)
goes through :func:`write_atomic`: the bytes go to a uniquely named temporary file beside the
target, are flushed to disk (fsync), and the file is renamed into place. A reader never sees
half a file, two writers never share a temporary name, and a failure leaves the old file (or
nothing) behind.

:func:`read_tensors` reads a safetensors file into memory the program owns. safetensors' own
``load_file`` and ``safe_open`` memory-map the file, so the tensors they return change when the
file is overwritten in place (``cp`` onto it) and, on Windows, keep it locked against the
rename above (a resumed run could not write its next checkpoint).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as tensors_from_bytes

from .errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_public(path: str | Path, folder: bool = False) -> None:
    """Give a file (or folder) made by ``tempfile``, which keeps it private, the mode an ordinary
    new one would get under the user's umask."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def unwritable(path: str | Path, err: OSError) -> UserError:
    """The one-line error for a place the operating system would not let us write."""
    return UserError(f"cannot write {path} ({err.strerror or err}); choose a writable place")


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically, making its folder where it
    is missing (as ``train --out`` does); returns the path."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:  # a place that cannot be written: one line, as for any bad input
        raise unwritable(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        make_public(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):  # a full disk, a folder in the way
            raise unwritable(path, err) from None
        raise
    return path


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Arrays as an ``.npz`` file (no pickle), written atomically; returns the path."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_atomic(path, buf.getvalue())


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors, copied into memory (no mapping of the file survives the call),
    and its metadata ({} where it has none). The header is the file's first 8 bytes (its length,
    little-endian) then that much JSON, whose ``__metadata__`` holds the metadata."""
    data = Path(path).read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    return tensors_from_bytes(data), dict(header.get("__metadata__") or {})
