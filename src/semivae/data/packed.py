"""Data larger than memory: a data set packed into memory-mapped ``.npy`` files on disk.

``semivae data pack INPUT OUT`` writes any data set the project reads, read as ``train`` reads
it (``--image-size``, ``--test-data``, ... ; and, with ``--augment-shifts K``, images shifted by
up to K pixels each way), as

    OUT/meta.json                 name, kind, heads, likelihood, normalisation, source
    OUT/{train,test}/x.npy        (N, *shape) inputs, uint8 or float32
    OUT/{train,test}/labels.npy   (N, F) int64, -1 = missing
    OUT/{train,test}/lengths.npy  (N,) valid steps of padded sequences (sequences only)
    OUT/{train,test}/observed.npy (N, *shape) bool observed values (tables, sequences with missing ones only)
    OUT/{train,test}/ids.npy      (N,) str the rows' names (id column, file names, row numbers), where they have them

chunk by chunk (the data need never be in memory at once), into a temporary folder renamed
into place at the end, so an interrupted pack leaves nothing. ``--dataset OUT`` reads it back
as ``PackedData``: the inputs stay on disk, memory-mapped, and training reads each batch's
rows through a ``torch.utils.data.DataLoader`` with ``--workers`` processes, behind the same
1:1 sampler. Data that fits in memory is better left unpacked (the whole split then lives
on the device).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..atomic import make_public, unwritable
from ..errors import UserError
from .batch import Batch
from .dataset import ArrayData, DataBundle, LabelColumn


@dataclass
class PackedData(ArrayData):
    """Rows ``rows`` of memory-mapped inputs ``x`` (the whole file); labels in memory."""

    rows: np.ndarray = field(default=None)  # (N,) indices into x

    def __post_init__(self) -> None:
        if self.rows is None:
            self.rows = np.arange(len(self.x))
        if self.labels.dim() == 1:
            self.labels = self.labels[:, None]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        rows = self.rows[np.asarray(idx.cpu())]
        order = np.argsort(rows, kind="stable")  # read the file in order, then put the rows back
        block = np.asarray(self.x[rows[order]])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return (torch.from_numpy(block[back]).float() - self.shift) * self.scale

    def mask(self, idx: torch.Tensor) -> torch.Tensor | None:
        return super().mask(idx.cpu())

    def batch(self, idx: torch.Tensor, hide: torch.Tensor | None = None) -> Batch:
        cpu = idx.cpu()
        labels = self.labels[cpu]
        if hide is not None:
            labels = labels.masked_fill(hide.cpu()[:, None], -1)
        return Batch(self.inputs(cpu), labels, None, self.mask(cpu))

    def to(self, device: torch.device | str) -> "PackedData":
        return self  # stays on disk; batches move

    def take(self, idx, labels: torch.Tensor | None = None) -> "PackedData":
        sel = np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx)
        lengths = None if self.lengths is None else self.lengths[idx]
        observed = None if self.observed is None else self.observed[idx]
        return PackedData(self.x, self.labels[idx] if labels is None else labels, self.shift, self.scale, None, lengths,
                          observed=observed, rows=self.rows[sel], ids=None if self.ids is None else self.ids[sel])


def is_packed(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / "train" / "x.npy").is_file()


def packed_kind(path: Path) -> str | None:
    """The data kind a packed folder's meta.json names (image, vector, sequence); None where it is
    no readable packed folder (loading it then says why)."""
    try:
        return json.loads((path / "meta.json").read_text()).get("kind") if is_packed(path) else None
    except (OSError, ValueError, AttributeError):
        return None


def load_packed(path: Path) -> DataBundle:
    try:
        meta = json.loads((path / "meta.json").read_text())
        parts = []
        for split in ("train", "test"):
            d = path / split
            x = np.load(d / "x.npy", mmap_mode="r")
            labels = torch.from_numpy(np.load(d / "labels.npy"))
            lengths = torch.from_numpy(np.load(d / "lengths.npy")) if (d / "lengths.npy").is_file() else None
            observed = torch.from_numpy(np.load(d / "observed.npy")) if (d / "observed.npy").is_file() else None
            ids = np.load(d / "ids.npy").astype(object) if (d / "ids.npy").is_file() else None  # the rows' names
            if len(labels) != len(x) or any(v is not None and len(v) != len(x) for v in (lengths, observed, ids)):
                raise ValueError(f"{split}: {len(x)} inputs but {len(labels)} label rows")
            parts.append(PackedData(x, labels, _param(meta["shift"]), _param(meta["scale"]), None, lengths,
                                    observed=observed, ids=ids))
    except UserError:  # already one line, problem and fix
        raise
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is a damaged packed data set ({err}); pack it again with `semivae data pack`") from None
    heads = [LabelColumn(h["name"], tuple(h["classes"])) for h in meta["heads"]]
    return DataBundle(meta["name"], parts[0], parts[1], heads, meta["kind"], meta["likelihood"],
                      {**meta.get("meta", {}), "source": str(path.resolve()), "packed": True})


def _param(v):
    return torch.tensor(v, dtype=torch.float32) if isinstance(v, list) else float(v)


def _shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images (N, C, H, W) moved by (dy, dx) pixels, zeros shifted in."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = \
        x[..., max(-dy, 0): h + min(-dy, 0), max(-dx, 0): w + min(-dx, 0)]
    return out


def pack(bundle: DataBundle, out: Path, augment_shifts: int = 0, chunk: int = 4096,
         progress: bool = False) -> Path:
    """Write ``bundle`` (training images shifted by up to ``augment_shifts`` pixels each way,
    every shift a new image with the same labels) as a packed data set at ``out``."""
    if out.exists():
        raise UserError(f"{out} already exists; choose a new OUT for the packed data")
    if augment_shifts and bundle.kind != "image":
        raise UserError(f"--augment-shifts shifts images; {bundle.name} holds {bundle.kind} data, drop it")
    shifts = [(dy, dx) for dy in range(-augment_shifts, augment_shifts + 1)
              for dx in range(-augment_shifts, augment_shifts + 1)]
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as err:
        raise unwritable(out, err) from None
    try:
        for split, data, sh in (("train", bundle.train, shifts), ("test", bundle.test, [(0, 0)])):
            (tmp / split).mkdir()
            raw = type(data) is ArrayData  # stored inputs, copied as they are (else drawn or read: their values)
            dtype = np.asarray(data.x[:1]).dtype if raw else np.float32
            x = np.lib.format.open_memmap(tmp / split / "x.npy", mode="w+", dtype=dtype,
                                          shape=(len(data) * len(sh), *data.shape))
            for i, (dy, dx) in enumerate(sh):
                for start in _chunks(len(data), chunk, progress, f"{split} {i + 1}/{len(sh)}"):
                    idx = torch.arange(start, min(start + chunk, len(data)))
                    block = np.asarray(data.x[idx]) if raw else data.inputs(idx).numpy()
                    x[i * len(data) + start: i * len(data) + start + len(idx)] = _shifted(block, dy, dx) if (dy or dx) else block
            x.flush()
            del x
            np.save(tmp / split / "labels.npy", np.tile(data.labels.numpy(), (len(sh), 1)))
            if data.lengths is not None:
                np.save(tmp / split / "lengths.npy", np.tile(data.lengths.numpy(), len(sh)))
            if data.observed is not None:  # tables and sequences: one view (the shifts are for images)
                np.save(tmp / split / "observed.npy", data.observed.numpy())
            if data.ids is not None:  # a CSV's id column, image file names, row numbers a carve kept: a shift keeps it
                np.save(tmp / split / "ids.npy", np.tile(np.asarray(data.ids, dtype=str), len(sh)))
        norm = (bundle.train.shift, bundle.train.scale) if type(bundle.train) is ArrayData else (0.0, 1.0)
        meta = {"name": bundle.name, "kind": bundle.kind, "likelihood": bundle.likelihood,
                "heads": [{"name": h.name, "classes": list(h.classes)} for h in bundle.heads],
                "shift": _jsonable(norm[0]), "scale": _jsonable(norm[1]), "augment_shifts": augment_shifts,
                "meta": {k: v for k, v in bundle.meta.items() if isinstance(v, (str, int, float, list, type(None)))}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        make_public(tmp, folder=True)  # readable as any folder made there would be (mkdtemp makes it private)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _chunks(n: int, chunk: int, progress: bool, desc: str) -> Iterator[int]:
    from tqdm.auto import tqdm

    return iter(tqdm(range(0, n, chunk), desc=desc, disable=not progress, leave=False))


def _jsonable(v):
    return v.tolist() if isinstance(v, torch.Tensor) else float(v)


class _Rows(Dataset):
    """One item per sampler step: the batch of its (unlabelled, labelled) draws, read from disk."""

    def __init__(self, data: PackedData):
        self.data = data

    def __getitem__(self, draw: tuple[torch.Tensor, torch.Tensor]) -> tuple:
        unl, lab = draw
        idx = torch.cat([unl, lab])
        b = self.data.batch(idx, torch.arange(len(idx)) < len(unl))
        return b.x, b.labels, b.mask

    def __len__(self) -> int:
        return len(self.data)


def disk_batches(data: PackedData, draws, workers: int) -> Iterator[Batch]:
    """Batches of ``draws`` read by a DataLoader with ``workers`` processes (0: in this one)."""
    loader = DataLoader(_Rows(data), sampler=draws, batch_size=None, num_workers=workers,
                        persistent_workers=False, prefetch_factor=4 if workers else None,
                        generator=torch.Generator().manual_seed(0))  # its own seed: the model's noise stream untouched
    for x, labels, mask in loader:
        yield Batch(x, labels, None, mask)
