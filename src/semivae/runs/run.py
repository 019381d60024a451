"""Loading a run directory into one :class:`Run`: everything evaluate, predict, score,
report and the figures need, read once (the dataset too, on first use).

    config.yaml        the resolved configuration (usable again with --config)
    data.json          what the model was trained on: kind, shape, heads, preprocessing
    split.json         validation and labelled indices into the training split
    model.safetensors  weights (no pickle anywhere)
    metrics.jsonl      one row per epoch
    summary.json       final status and figures
    calibration.json   optional: each head's temperature (``semivae calibrate`` / ``--calibrate``)
    unknown.json       optional: the score and threshold that flag inputs unlike the training data
    class_latents.safetensors  optional: each class's Gaussian mixture in z, used by generate (models/latents.py)
    feature_bank.safetensors   optional: the training points' top-layer features, for the knn anomaly
                               score (models/neighbours.py; written by ``semivae anomaly``)
    data.npz           optional: the arrays a run trained from in Python; the run reads its own copy
                       wherever the directory is moved

Runs written before the model contract (a single ``classes`` list, kind ``tabular``, one
``pi`` layer, every model's options in ``[model]``) load unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import yaml

from ..atomic import read_tensors
from ..config import RunConfig, check_device
from ..data import ArrayData, DataBundle, LabelColumn, data_kind
from ..data.anomaly import load_for_config
from ..data.splits import Split
from ..errors import UserError
from ..models import BaseModel, ModelConfig, ModelSpec, build_model, declare_heads
from ..models.latents import ClassLatents
from ..models.neighbours import FeatureBank

LATENTS = "class_latents.safetensors"
FEATURE_BANK = "feature_bank.safetensors"
ARRAYS = "data.npz"  # the arrays a run trained from in Python (``semivae.train(x=...)``), kept in its directory
REQUIRED = ("config.yaml", "data.json", "split.json", "model.safetensors")
SPLITS = ("test", "val", "train")


def label_columns(data_info: dict) -> list[LabelColumn]:
    """The label columns a run's ``data.json`` names (older runs: one ``classes`` list)."""
    if "heads" in data_info:
        return [LabelColumn(h["name"], tuple(h["classes"])) for h in data_info["heads"]]
    classes = data_info.get("classes") or []
    return [LabelColumn("label", tuple(classes))] if classes else []


def model_spec(data_info: dict, model_cfg: ModelConfig) -> ModelSpec:
    """The spec a run's model is built from: its data description and its declared heads."""
    columns = [(c.name, c.classes) for c in label_columns(data_info)]
    return ModelSpec(tuple(data_info["shape"]), declare_heads(columns, model_cfg.decoder_heads),
                     data_info["likelihood"], data_kind(data_info["kind"]), len(data_info.get("target_names") or []))


def check_same_rows(path: Path, data_info: dict, bundle: DataBundle, now: dict | None = None) -> None:
    """The training data as the run's ``split.json`` numbered it, or a one-line error: files added,
    removed or moved since (the labelling loop moves them) shift every row number after them.
    ``now``: the bundle's fingerprint, where the caller has it already."""
    then, now = data_info.get("train_rows"), now or bundle.train.fingerprint()
    if then is None or then == now:  # runs written before the fingerprint: not checked
        return
    what = (f"{then['n']} training rows then, {now['n']} now" if then["n"] != now["n"] else
            "the same number of rows, but other names (files renamed or moved between folders)")
    raise UserError(f"the training data of run {path} changed since it was trained ({what}; labels added move the "
                    "test split carved from them too), so its split no longer names the same rows; train a new run "
                    "(--init-from RUN starts it from these weights); predict and evaluate --data still read new data")


def preprocessing(data_info: dict) -> tuple[torch.Tensor | float, torch.Tensor | float]:
    """The (shift, scale) the run's inputs were normalised with."""
    def t(v):
        return torch.tensor(v, dtype=torch.float32) if isinstance(v, list) else float(v)
    return t(data_info["shift"]), t(data_info["scale"])


@dataclass
class Run:
    """A trained run, loaded: its files, its model (in eval mode), and its data on demand."""

    path: Path
    config: RunConfig
    data_info: dict
    split: Split
    model: BaseModel
    temperatures: dict[str, float] = field(default_factory=dict)  # head -> T (calibration.json)
    unknown: dict | None = None  # {score, threshold, target_fpr, ...} (unknown.json)
    _bundles: dict = field(default_factory=dict, repr=False)  # data_dir -> (DataBundle, its rows' fingerprint)

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def kind(self) -> str:
        """image, vector or sequence (semivae.data.KINDS)."""
        return self.spec.kind

    @property
    def classes(self) -> list[str]:
        """The class names of the first head (the only one, for most data)."""
        return list(self.spec.heads[0].classes) if self.spec.heads else []

    def dataset(self, data_dir: str | None = None, rows: bool = True) -> DataBundle:
        """The run's dataset as it trained on it (anomaly protocol applied), read once; ``rows``:
        checked to be the rows its split numbers (a test split of its own needs no such check)."""
        if data_dir not in self._bundles:
            source = Path(self.config.data.dataset)
            if source.name == ARRAYS and not source.is_file():
                raise UserError(f"run {self.path} trained from arrays, and their copy ({ARRAYS}) is not in its "
                                "directory (a pickled estimator keeps the model, not its data); evaluate it on given "
                                "data: --data FILE, or evaluate(run, x=..., y=...)")
            bundle = load_for_config(self.config.data, data_dir)
            self._bundles[data_dir] = bundle, bundle.train.fingerprint()  # hashed once: every id of the data
        bundle, rows_now = self._bundles[data_dir]
        if rows:
            check_same_rows(self.path, self.data_info, bundle, rows_now)
        return bundle

    def split_data(self, split: str, data_dir: str | None = None) -> ArrayData:
        """A split of the run's dataset, normalised as the run was trained; validation and
        training points carry every true label (evaluation scores against all of them)."""
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        bundle = self.dataset(data_dir, rows=split != "test")
        if split == "test" and bundle.meta.get("test_carved"):  # carved: the test split depends on the rows too
            self.dataset(data_dir)
        shift, scale = preprocessing(self.data_info)
        if split == "test":
            data = bundle.test
        else:
            keep = np.ones(len(bundle.train), dtype=bool)
            keep[self.split.val] = False
            data = bundle.train.take(torch.from_numpy(self.split.val if split == "val" else np.flatnonzero(keep)))
        return replace(data, shift=shift, scale=scale)


def run_dir(path: str | Path) -> Path:
    """``path`` as a run directory, or a one-line error naming the files it lacks."""
    p = Path(path)
    missing = [f for f in REQUIRED if not (p / f).is_file()]
    if missing:
        raise UserError(f"{path} is not a run directory (missing {', '.join(missing)}); "
                        "pass the --out of a `semivae train`")
    return p


def read_data_info(path: str | Path) -> dict:
    """A run's data.json (what its inputs are: kind, shape, classes), without building its model."""
    return _read_json(run_dir(path) / "data.json")


def load_run(path: str | Path, device: str | None = None) -> Run:
    """Re-build the model of a run directory from its files alone (on ``device``, default CPU)."""
    p = run_dir(path)
    try:
        cfg = RunConfig.from_dict(yaml.safe_load((p / "config.yaml").read_text()), saved=True)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{p / 'config.yaml'} is damaged ({str(err).splitlines()[0]}); restore it or train again") from None
    own = p / ARRAYS
    if own.is_file() and Path(cfg.data.dataset).name == ARRAYS:  # trained from arrays: their copy moves with the run
        cfg = replace(cfg, data=replace(cfg.data, dataset=str(own.resolve())))
    info = _read_json(p / "data.json")
    try:
        spec = model_spec(info, cfg.model)
        split = Split.from_json((p / "split.json").read_text(), len(spec.heads))
    except UserError:  # already one line, problem and fix
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{p} has a damaged data.json or split.json ({type(err).__name__}: {err}); restore it or "
                        "train again") from None
    model = build_model(spec, cfg.arch, cfg.model)
    try:
        model.load_state_dict(read_tensors(p / "model.safetensors")[0])
    except Exception as err:  # a truncated or foreign file: safetensors and torch raise several kinds
        raise UserError(f"{p / 'model.safetensors'} cannot be loaded ({type(err).__name__}); it is damaged or from "
                        "another model: restore it, resume the run, or train again") from None
    if device is not None:
        check_device(device)
        model.to(device)
    model.eval()
    calibration = _read_json(p / "calibration.json") if (p / "calibration.json").is_file() else {}
    temperatures = {name: float(v["temperature"]) for name, v in calibration.get("heads", {}).items()}
    unknown = _read_json(p / "unknown.json") if (p / "unknown.json").is_file() else None
    latents = _optional_tensors(p / LATENTS, "delete it (generation then draws z from N(0, I)) or train again")
    model.class_latents = ClassLatents.from_tensors(latents) if latents else None
    bank = _optional_tensors(p / FEATURE_BANK, "restore it or train again with `semivae anomaly`")
    model.feature_bank = FeatureBank(**bank) if bank else None
    return Run(p, cfg, info, split, model, temperatures, unknown)


def _optional_tensors(path: Path, fix: str) -> dict[str, torch.Tensor] | None:
    """The tensors of an optional safetensors file beside the weights, or None where it is absent."""
    if not path.is_file():
        return None
    try:
        return read_tensors(path)[0]
    except Exception as err:  # truncated or foreign: safetensors raises several kinds
        raise UserError(f"{path} cannot be loaded ({type(err).__name__}); {fix}") from None


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is damaged ({err}); restore it or train again") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is damaged (not a JSON object); restore it or train again")
    return value


def status(run: Run) -> str | None:
    """A line saying the run is unfinished, or None when it completed."""
    summary = run.path / "summary.json"
    if not summary.is_file():
        return f"run {run.path} has no summary.json: it is still training or was killed; its weights are the last saved"
    info = json.loads(summary.read_text())
    if info.get("status", "completed") != "completed":
        resume = f"; resume it with `{info['resume_command']}`" if info.get("resume_command") else ""
        return f"run {run.path} is unfinished (status {info['status']}){resume}"
    return None


def as_run(run: "Run | str | Path", device: str | None = None) -> Run:
    """A loaded run (its model on ``device`` when one is given), loading it if given a path."""
    if not isinstance(run, Run):
        return load_run(run, device)
    if device is not None:
        check_device(device)
        run.model.to(device)
    return run
