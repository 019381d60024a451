"""Readers for the published factor data sets, when a user has their files.

- dSprites: ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` with ``imgs`` (N, 64, 64) and
  ``latents_classes`` (N, 6) (colour, shape, scale, orientation, x, y). Only those two numeric
  arrays are read (its pickled ``metadata`` is not).
- Small-NORB: the six ``smallnorb-*-{training,testing}-{dat,cat,info}.mat`` files: binary
  matrices, a little-endian int32 magic (0x1E3D4C55 bytes, 0x1E3D4C54 int32), the number of
  dimensions, max(3, ndim) int32 sizes, then the values. ``dat`` (N, 2, 96, 96) stereo pairs,
  ``cat`` (N,) category, ``info`` (N, 4) instance, elevation, azimuth (0, 2, ..., 34), lighting.
  The factors are the paper's four (category 5, elevation 9, azimuth 18, lighting 6); the
  instance varies at random under them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .dataset import ArrayData, DataBundle, LabelColumn
from .factors import SPRITE_FACTORS

NORB_MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32}
NORB_FACTORS = ("category", "elevation", "azimuth", "lighting")
NORB_CATEGORIES = ("animal", "human", "airplane", "truck", "car")


def is_dsprites_file(path: Path) -> bool:
    return path.suffix == ".npz" and path.name.startswith("dsprites_ndarray")


def read_dsprites(path: Path, test_fraction: float = 0.05, seed: int = 0) -> DataBundle:
    try:
        with np.load(path, allow_pickle=False) as z:
            if not {"imgs", "latents_classes"} <= set(z.files):
                raise UserError(f"{path} lacks imgs / latents_classes; give the dSprites file as published")
            imgs, classes = z["imgs"], z["latents_classes"]
    except UserError:  # already one line, problem and fix
        raise
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path} as the dSprites .npz ({err}); give the file as published") from None
    if imgs.ndim != 3 or classes.shape != (len(imgs), 6):
        raise UserError(f"{path} holds imgs {imgs.shape} and latents_classes {classes.shape}; expected (N, 64, 64) "
                        "and (N, 6)")
    factors = classes[:, 1:].astype(np.int64)  # drop the constant colour
    sizes = factors.max(0) + 1
    perm = np.random.default_rng(seed).permutation(len(imgs))
    n_test = int(round(test_fraction * len(imgs)))

    def part(idx):
        idx = np.sort(idx)
        return ArrayData(torch.from_numpy(imgs[idx, None].astype(np.uint8)), torch.from_numpy(factors[idx]), 0.0, 1.0)
    heads = [LabelColumn(n, tuple(str(v) for v in range(s))) for n, s in zip(SPRITE_FACTORS, sizes)]
    heads[0] = LabelColumn("shape", ("square", "ellipse", "heart")[: sizes[0]] if sizes[0] <= 3 else heads[0].classes)
    meta = {"source": str(path.resolve()), "feature_names": None, "factor_sizes": sizes.tolist()}
    return DataBundle("dsprites-file", part(perm[n_test:]), part(perm[:n_test]), heads, "image", "bernoulli", meta)


def read_norb_matrix(path: Path) -> np.ndarray:
    """One Small-NORB binary matrix (gzipped or raw)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path} ({err.strerror}); check the file") from None
    if len(raw) < 12:
        raise UserError(f"{path} is too short for a Small-NORB matrix; replace it")
    magic, ndim = np.frombuffer(raw[:8], "<i4")
    if int(magic) not in NORB_MAGIC or not 1 <= ndim <= 8:
        raise UserError(f"{path} has magic {int(magic):#x}, not a Small-NORB byte or int matrix; replace it")
    dims = np.frombuffer(raw[8: 8 + 4 * max(3, int(ndim))], "<i4")[: int(ndim)]
    dtype = np.dtype(NORB_MAGIC[int(magic)]).newbyteorder("<")
    start = 8 + 4 * max(3, int(ndim))
    n = int(np.prod(dims))
    if len(raw) - start != n * dtype.itemsize:
        raise UserError(f"{path} holds {len(raw) - start} bytes of values for shape {tuple(dims)}; replace it")
    return np.frombuffer(raw[start:], dtype).reshape(tuple(int(d) for d in dims)).copy()  # writable


def find_norb(folder: Path) -> dict[str, Path] | None:
    """The six files of a Small-NORB folder, by '<split>-<part>', or None."""
    found = {}
    for split in ("training", "testing"):
        for part in ("dat", "cat", "info"):
            hits = sorted(folder.glob(f"smallnorb-*-{split}-{part}.mat*"))
            if not hits:
                return None
            found[f"{split}-{part}"] = hits[0]
    return found


def read_smallnorb(folder: Path) -> DataBundle:
    files = find_norb(folder)
    if files is None:
        raise UserError(f"{folder} lacks the six smallnorb-*-{{training,testing}}-{{dat,cat,info}}.mat files; "
                        "give the folder holding them")
    splits = []
    for split in ("training", "testing"):
        dat, cat, info = (read_norb_matrix(files[f"{split}-{p}"]) for p in ("dat", "cat", "info"))
        if dat.ndim != 4 or cat.shape != (len(dat),) or info.shape != (len(dat), 4):
            raise UserError(f"Small-NORB {split} files disagree: dat {dat.shape}, cat {cat.shape}, info {info.shape}")
        factors = np.stack([cat, info[:, 1], info[:, 2] // 2, info[:, 3]], 1).astype(np.int64)
        splits.append(ArrayData(torch.from_numpy(np.ascontiguousarray(dat)), torch.from_numpy(factors), 0.0, 1 / 255))
    sizes = np.maximum(splits[0].labels.max(0).values.numpy(), splits[1].labels.max(0).values.numpy()) + 1
    heads = [LabelColumn("category", NORB_CATEGORIES[: sizes[0]] if sizes[0] <= 5 else tuple(map(str, range(sizes[0]))))]
    heads += [LabelColumn(n, tuple(str(v) for v in range(s))) for n, s in zip(NORB_FACTORS[1:], sizes[1:])]
    meta = {"source": str(folder.resolve()), "feature_names": None, "factor_sizes": sizes.tolist()}
    return DataBundle("smallnorb", splits[0], splits[1], heads, "image", "bernoulli", meta)
