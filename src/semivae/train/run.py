"""A run directory: everything needed to re-load, re-evaluate or re-make a training.

    config.yaml        the resolved configuration (usable again with --config)
    data.json          what the model was trained on: shape, classes, preprocessing
    split.json         validation and labelled indices into the training split
    model.safetensors  weights (no pickle anywhere)
    metrics.jsonl      one row per epoch
    summary.json       final status and figures

Every file is written whole (temporary file, then rename), so a reader never sees half
of one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import RunConfig
from ..data.splits import Split
from ..errors import UserError
from ..models import ModelSpec, build_model

FILES = ("config.yaml", "data.json", "split.json", "model.safetensors", "metrics.jsonl", "summary.json")


def write_atomic(path: Path, text: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, path)


def save_weights(model: nn.Module, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp))
    os.replace(tmp, path)


def default_run_dir(cfg: RunConfig) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = Path(cfg.data.dataset).stem if os.sep in cfg.data.dataset else cfg.data.dataset
    kind = cfg.model.mode if cfg.model.model == "semivae" else cfg.model.model
    base = Path("runs") / f"{stamp}-{name}-{kind}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def check_out_dir(out: str | None) -> None:
    """Refuse a run directory that already holds something, before any work starts."""
    if out and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise UserError(f"output directory {out} already exists and is not empty; choose a new --out")


class RunWriter:
    """Creates the run directory and writes its files as training goes."""

    def __init__(self, path: Path, cfg: RunConfig, data_info: dict, split: Split):
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        write_atomic(path / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        write_atomic(path / "data.json", json.dumps(data_info, indent=1))
        tmp = path / ".split.json.tmp"
        split.to_json(tmp)
        os.replace(tmp, path / "split.json")
        self._rows: list[str] = []

    def epoch(self, row: dict, model: nn.Module, save: bool) -> None:
        self._rows.append(json.dumps(row))
        write_atomic(self.path / "metrics.jsonl", "\n".join(self._rows) + "\n")
        if save:
            save_weights(model, self.path / "model.safetensors")

    def summary(self, summary: dict) -> None:
        write_atomic(self.path / "summary.json", json.dumps(summary, indent=1))


@dataclass
class LoadedRun:
    path: Path
    config: RunConfig
    data_info: dict
    split: Split
    model: nn.Module

    @property
    def classes(self) -> list[str]:
        return self.data_info["classes"]


def model_spec(data_info: dict) -> ModelSpec:
    return ModelSpec(tuple(data_info["shape"]), len(data_info["classes"]), data_info["likelihood"],
                     len(data_info.get("target_names") or []))


def load_run(path: str | Path) -> LoadedRun:
    """Re-build the model of a run directory from its files alone."""
    p = Path(path)
    missing = [f for f in ("config.yaml", "data.json", "split.json", "model.safetensors") if not (p / f).is_file()]
    if missing:
        raise UserError(f"{path} is not a finished run directory (missing {', '.join(missing)}); pass the --out of a `semivae train`")
    cfg = RunConfig.from_dict(yaml.safe_load((p / "config.yaml").read_text()))
    info = json.loads((p / "data.json").read_text())
    model = build_model(model_spec(info), cfg.arch, cfg.model)
    model.load_state_dict(load_file(str(p / "model.safetensors")))
    model.eval()
    return LoadedRun(p, cfg, info, Split.from_json(p / "split.json"), model)


def preprocessing(data_info: dict) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """The (shift, scale) the run's inputs were normalised with."""
    def t(v):
        return torch.tensor(v, dtype=torch.float32) if isinstance(v, list) else float(v)
    return t(data_info["shift"]), t(data_info["scale"])
