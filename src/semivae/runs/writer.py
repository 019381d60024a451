"""Writing a run directory as training goes; every file written whole (``semivae.atomic``).

The directory is created only when training is about to start, after the configuration,
the data and the budget have passed their checks, so bad input leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import yaml
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..atomic import write_atomic
from ..config import RunConfig
from ..data import DataBundle
from ..data.splits import Split
from ..errors import UserError


def save_weights(model: nn.Module | Mapping[str, torch.Tensor], path: Path) -> None:
    """A model's weights, or a state dict of one, as a safetensors file."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    write_atomic(path, safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in state.items()}))


def default_run_dir(cfg: RunConfig) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = Path(cfg.data.dataset).stem if os.sep in cfg.data.dataset else cfg.data.dataset
    base = Path("runs") / f"{stamp}-{name}-{cfg.model.run_name()}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def check_out_dir(out: str | Path | None) -> None:
    """Refuse a run directory that already holds something, before any work starts."""
    if out and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out {out} is a file; a run is a directory: choose a new --out")
    if out and Path(out).exists() and any(Path(out).iterdir()):
        raise UserError(f"output directory {out} already exists and is not empty; choose a new --out")


def check_writable(path: Path) -> None:
    """Refuse a run directory that cannot be made (a read-only place), before any file is written."""
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write the run directory {path}: {parent} is not a writable folder; choose another --out")


def _jsonable(v):
    return v.tolist() if isinstance(v, torch.Tensor) else float(v)


ELBO_VALIDATION = "none (early stopping on the unlabelled validation ELBO)"  # data.json's note without val labels


def data_info(bundle: DataBundle, cfg: RunConfig, split: Split, likelihood: str) -> dict:
    """data.json: what predict/evaluate need to read new inputs like the training ones."""
    n_val_lab = len(split.val_pool)
    if cfg.data.oracle_val_labels:
        val_note = f"oracle: {n_val_lab} validation labels beyond the budget"
    elif n_val_lab:
        val_note = f"{n_val_lab} labels taken from the budget"
    elif cfg.train.patience:
        val_note = ELBO_VALIDATION
    else:  # nothing stops early: the ELBO is only watched
        val_note = "none (the unlabelled validation ELBO is tracked; --patience N stops on it)"
    return {
        "dataset": bundle.name, "kind": bundle.kind, "shape": list(bundle.train.shape),
        "heads": [{"name": h.name, "classes": list(h.classes)} for h in bundle.heads], "likelihood": likelihood,
        "shift": _jsonable(bundle.train.shift), "scale": _jsonable(bundle.train.scale),
        "source": bundle.meta.get("source", bundle.name), "feature_names": bundle.meta.get("feature_names"),
        "channel_names": bundle.meta.get("channel_names"), "image_size": bundle.meta.get("image_size"),
        "label_column": bundle.meta.get("label_column") or cfg.data.label_column,  # a pack's own, where packed
        "id_column": cfg.data.id_column or bundle.meta.get("id_column"),
        **{k: bundle.meta.get(k) for k in ("target_names", "target_mean", "target_std")},
        "anomaly_class": bundle.meta.get("anomaly_class"), "n_train": len(bundle.train) - len(split.val),
        "n_val": len(split.val), "n_labelled": len(split.pool),
        "n_labelled_per_head": {h.name: len(a) for h, a in zip(bundle.heads, split.labelled)},
        "validation_labels": val_note, "train_rows": bundle.train.fingerprint(),
    }


class RunWriter:
    """Creates the run directory and writes its files as training goes."""

    def __init__(self, path: Path, cfg: RunConfig | None, info: dict | None, split: Split | None):
        self.path = path
        self._rows: list[str] = []
        if cfg is None:  # ``reopen``
            return
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot make the run directory {path} ({err.strerror}); choose another --out") from None
        self.config(cfg)
        write_atomic(path / "data.json", json.dumps(info, indent=1))
        write_atomic(path / "split.json", split.to_json())

    @classmethod
    def reopen(cls, path: Path, keep: Callable[[dict], bool] = lambda row: True) -> "RunWriter":
        """A writer that appends to an existing run (resuming it), with the rows ``keep`` accepts."""
        writer = cls(path, None, None, None)
        metrics = path / "metrics.jsonl"
        rows = metrics.read_text().splitlines() if metrics.is_file() else []
        writer._rows = [r for r in rows if keep(json.loads(r))]
        return writer

    def config(self, cfg: RunConfig) -> None:
        """Write ``config.yaml`` again (a resumed run asked for more epochs)."""
        write_atomic(self.path / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def rows(self) -> list[dict]:
        return [json.loads(r) for r in self._rows]

    def epoch(self, row: dict, weights: Mapping[str, torch.Tensor] | None = None) -> None:
        """Append a metrics row; ``weights`` (a state dict), where given, become the snapshot."""
        self._rows.append(json.dumps(row))
        write_atomic(self.path / "metrics.jsonl", "\n".join(self._rows) + "\n")
        if weights is not None:
            save_weights(weights, self.path / "model.safetensors")

    def summary(self, summary: dict) -> None:
        write_atomic(self.path / "summary.json", json.dumps(summary, indent=1))
