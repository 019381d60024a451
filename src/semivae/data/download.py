"""Finding (and if need be downloading) the MNIST-style IDX files.

Lookup order for a data set ``name`` (``mnist`` or ``fashion-mnist``): the ``data_dir``
argument, then ``$SEMIVAE_DATA``, then the user cache (``$XDG_CACHE_HOME/semivae`` or
``~/.cache/semivae``). In each root both ``<root>/<name>/<file>`` and ``<root>/<file>``
are accepted, each file ``.gz`` or raw; the first location holding all four files wins.
Downloads go to ``<cache>/<name>/`` and are checked against the SHA-256 of the
*decompressed* IDX bytes, so any gzip re-compression of the same data also verifies.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from ..atomic import write_atomic
from ..errors import UserError

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

BASE_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}

# SHA-256 of the decompressed IDX files (computed once from the checked reference copy).
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

TIMEOUT_S = 15.0


def cache_dir() -> Path:
    """The user cache root: ``$XDG_CACHE_HOME/semivae`` or ``~/.cache/semivae``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "semivae"


def search_roots(data_dir: str | None) -> list[Path]:
    """Roots searched in order: ``data_dir``, ``$SEMIVAE_DATA``, the user cache."""
    roots = [data_dir, os.environ.get("SEMIVAE_DATA"), cache_dir()]
    return [Path(r).expanduser() for r in roots if r]


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def find_idx_files(name: str, data_dir: str | None) -> dict[str, Path] | None:
    """Paths of the four IDX files from the first location holding all of them, or None."""
    for root in search_roots(data_dir):
        for folder in (root / name, root):
            found = {stem: _find_file(folder, stem) for stem in IDX_FILES}
            if all(found.values()):
                return found  # type: ignore[return-value]
    return None


def locate_or_download(name: str, data_dir: str | None, download: bool) -> dict[str, Path]:
    """Find the IDX files of ``name``; download them into the cache if allowed and missing."""
    found = find_idx_files(name, data_dir)
    if found is not None:
        return found
    roots = " or ".join(str(r / name) for r in search_roots(data_dir))
    hint = (
        f"put {', '.join(f + '.gz' for f in IDX_FILES)} (or the raw files) into {roots}, "
        "or pass --data-dir / set SEMIVAE_DATA to a folder holding them"
    )
    if not download:
        raise UserError(f"{name} files not found and downloading is off; {hint}")
    target = cache_dir() / name
    return {stem: _download(name, stem, target, hint) for stem in IDX_FILES}


def _download(name: str, stem: str, target: Path, hint: str) -> Path:
    """Fetch ``<stem>.gz`` into ``target`` unless present; verify; write atomically."""
    dest = target / f"{stem}.gz"
    if dest.is_file():
        return dest
    url = BASE_URLS[name] + f"{stem}.gz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            payload = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"cannot download {url} ({reason}); {hint}") from None
    try:
        digest = hashlib.sha256(gzip.decompress(payload)).hexdigest()
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"download of {url} is not valid gzip ({err}); try again later, or {hint}") from None
    if digest != SHA256[name][stem]:
        raise UserError(f"download of {url} failed its SHA-256 check; try again later, or {hint}")
    _write_atomic(dest, payload)
    return dest


def _write_atomic(dest: Path, payload: bytes) -> None:
    """Write ``payload`` whole into the cache (``semivae.atomic``), or a one-line error."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(dest, payload)
    except OSError as err:
        raise UserError(f"cannot write {dest} ({err.strerror}); make {dest.parent} writable or set XDG_CACHE_HOME") from None
