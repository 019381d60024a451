"""Run configuration: one small dataclass per concern, presets, config files.

Precedence, lowest first: dataclass defaults < preset (``--preset``) < config file
(``--config run.toml`` / ``.yaml``) < command-line flags. Every field carries its help
text in ``metadata["help"]``; the CLI builds its flags from these fields, so a flag, a
config-file key and a Python keyword always have the same name.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from .errors import UserError


def opt(default, help: str, **kw):
    """A dataclass field with its CLI help text."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class DataConfig:
    dataset: str = opt("digits", "dataset name (digits, mnist, fashion-mnist) or a path to a .npz, .csv or image folder")
    data_dir: str | None = opt(None, "folder holding the dataset files (else $SEMIVAE_DATA, then the user cache)")
    labels: str | None = opt(None, "label budget: a total count drawn class-balanced, or 'all' (default: all labels the data has)")
    labels_per_class: int | None = opt(None, "label budget: this many labelled points per class")
    label_fraction: float | None = opt(None, "label budget: this fraction of each class's labelled points (0..1)")
    val_fraction: float = opt(0.1, "fraction of the training images held out for validation (their labels stay hidden)")
    val_labels: int = opt(0, "labels taken from the budget for validation (early stopping on log loss); they are not trained on")
    oracle_val_labels: bool = opt(False, "use the validation split's labels beyond the budget (unrealistic; reported as such)")
    label_ratio: float = opt(1.0, "labelled points per unlabelled point in each batch (paper: 1 = 1:1)")
    label_column: str = opt("label", "name of the label column in a CSV file")
    anomaly_class: str | None = opt(None, "anomaly protocol: this class (name or index) is anomalous; train on the "
                                    "others, test on held-out normal points plus every anomalous one")


@dataclass
class ArchConfig:
    arch: str = opt("dense", "encoder/decoder family: dense or conv")
    hidden: list[int] = opt([512, 256], "dense: widths of the encoder layers (decoder mirrors them)")
    channels: list[int] = opt([16, 32], "conv: channels of the encoder conv layers (decoder mirrors them)")
    strides: list[int] = opt([2, 2], "conv: stride of each conv layer (3x3 kernels)")
    fc: int = opt(128, "conv: width of the fully connected layer after the convolutions")
    latent_dim: int = opt(16, "size of z")
    dropout: float = opt(0.5, "dropout rate after hidden layers")
    batch_norm: bool = opt(False, "batch normalisation after hidden layers")


@dataclass
class ModelConfig:
    model: str = opt("semivae", "model family: semivae (Berkhahn et al.), m2, m1m2 or pspec (partially specified)")
    mode: str = opt("semi", "semi (ELBO + alpha*CE), unsupervised (plain VAE, no pi) or supervised (encoder + pi, CE only)")
    alpha: float = opt(20.0, "weight of the cross-entropy on labelled points (paper: of the reconstruction's order)")
    beta: float = opt(0.25, "weight of KL(q(z|x) || N(0, I)); 1 = plain VAE, >1 = beta-VAE, <1 frees pi")
    likelihood: str | None = opt(None, "bernoulli, gaussian (learned scale) or gaussian-fixed (default: from the data)")
    kl_schedule: str = opt("constant", "KL term: constant (beta*KL), warmup (beta ramped up from 0) or capacity (gamma*|KL - C(t)|)")
    warmup_epochs: float = opt(10.0, "warmup: epochs over which the KL weight rises linearly from 0 to beta")
    gamma: float = opt(1000.0, "capacity: weight of |KL - C(t)| (Burgess et al. 2018)")
    capacity_max: float = opt(25.0, "capacity: final KL target C in nats")
    capacity_epochs: float = opt(20.0, "capacity: epochs over which C rises linearly from 0 to its final value")
    structure: str = opt("z|x,y", "m2/pspec inference graph: z|x,y (q(y|x) q(z|x,y)) or y|z,x (q(z|x) q(y|z,x))")
    samples: int = opt(1, "m2/pspec: importance samples S of z per labelled point (1 = plain ELBO)")
    discrete: str = opt("enumerate", "m2/pspec, unlabelled points: enumerate the K classes exactly, or relax (Gumbel-softmax)")
    temperature: float = opt(0.5, "relax: temperature of the Gumbel-softmax (concrete) sample of y")
    m1_epochs: int = opt(20, "m1m2: epochs of the first stage, the VAE M1 on all data")
    m2_hidden: list[int] = opt([500], "m1m2: hidden widths of the M2 networks stacked on M1's latent means")
    m2_latent_dim: int = opt(50, "m1m2: size of M2's z")


@dataclass
class TrainConfig:
    epochs: int = opt(20, "passes over the unlabelled training data (over the labels in supervised mode)")
    batch_size: int = opt(128, "points per batch, labelled and unlabelled together")
    optimizer: str = opt("adam", "adam or rmsprop")
    lr: float = opt(1e-3, "learning rate")
    momentum: float = opt(0.9, "rmsprop momentum")
    weight_decay: float = opt(0.0, "L2 weight decay")
    patience: int = opt(0, "early stopping: stop after this many epochs without validation improvement (0 = off)")
    seed: int = opt(0, "seed for the label draw, the split, initialisation and batches")
    device: str = opt("auto", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    precision: str = opt("fp32", "fp32 or bf16 (autocast)")
    compile: bool = opt(False, "torch.compile the loss and optimiser step (slower start, faster steps)")
    threads: int | None = opt(None, "CPU threads for PyTorch (default: PyTorch's choice)")
    tensorboard: bool = opt(False, "log metrics and a sample grid per epoch to RUN/tensorboard (needs the tensorboard extra)")


SECTIONS: dict[str, type] = {"data": DataConfig, "arch": ArchConfig, "model": ModelConfig, "train": TrainConfig}


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "default"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        preset = d.pop("preset", "default")
        parts = {}
        for name, klass in SECTIONS.items():
            section = d.pop(name, {}) or {}
            known = {f.name for f in fields(klass)}
            unknown = set(section) - known
            if unknown:
                raise UserError(f"unknown config key(s) {sorted(unknown)} in section [{name}]; valid keys: {sorted(known)}")
            parts[name] = klass(**section)
        if d:
            raise UserError(f"unknown config section(s) {sorted(d)}; valid sections: {sorted(SECTIONS)} and 'preset'")
        return cls(preset=preset, **parts)


# Presets: values that differ from the defaults, per architecture. The defaults (alpha 20,
# beta 0.25, dropout 0.5) are the best of a sweep on digits with 10 labels per class
# (docs/benchmarks.md). "paper" is Berkhahn et al. 2019, appendix A (Tables 13 and 14;
# RMSprop, momentum 0.9, lr 5e-4) with beta 1; the paper states no alpha or batch size:
# alpha 500 was the best of {10, 50, 500} on MNIST with 100 labels, batch 128 is ours.
_PAPER_TRAIN = {"optimizer": "rmsprop", "lr": 5e-4, "momentum": 0.9, "batch_size": 128}
_PAPER_MODEL = {"alpha": 500.0, "beta": 1.0}
# Per-model defaults, applied before the preset: the sizes the literature uses for each.
# m2 / pspec: one 500-unit hidden layer per network and z=50 (Pyro's SS-VAE tutorial);
# m1m2: Kingma et al. 2014's M1 (two 600-unit layers, z=50) under a 500-unit M2.
_LATENT_CLASS = {"arch": {"hidden": [500], "latent_dim": 50, "dropout": 0.0}, "model": {"beta": 1.0, "alpha": 50.0}}
MODEL_DEFAULTS: dict[str, dict] = {
    "m2": _LATENT_CLASS,
    "pspec": {"arch": _LATENT_CLASS["arch"], "model": {**_LATENT_CLASS["model"], "samples": 8}},
    "m1m2": {"arch": {"hidden": [600, 600], "latent_dim": 50, "dropout": 0.0}, "model": {"beta": 1.0, "alpha": 50.0}},
}

PRESETS: dict[str, dict[str, dict]] = {
    "default": {"dense": {}, "conv": {"arch": {"batch_norm": True, "dropout": 0.25}}},
    "paper": {
        "dense": {"arch": {"hidden": [1024, 1024], "latent_dim": 2, "dropout": 0.0, "batch_norm": False},
                  "train": _PAPER_TRAIN, "model": _PAPER_MODEL},
        "conv": {"arch": {"channels": [64, 64, 64], "strides": [1, 1, 2], "fc": 512, "latent_dim": 2,
                          "dropout": 0.5, "batch_norm": True},
                 "train": _PAPER_TRAIN, "model": _PAPER_MODEL},
    },
}


def load_config_file(path: str) -> dict:
    """Read a TOML or YAML config file into a nested dict."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {path} not found; pass an existing .toml or .yaml file to --config")
    try:
        if p.suffix == ".toml":
            return tomllib.loads(p.read_text())
        if p.suffix in (".yaml", ".yml"):
            return yaml.safe_load(p.read_text()) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise UserError(f"config file {path} is not valid {p.suffix[1:].upper()}: {str(e).splitlines()[0]}; fix its syntax") from None
    raise UserError(f"config file {path} has suffix {p.suffix!r}; use .toml, .yaml or .yml")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve(file_cfg: dict | None = None, overrides: dict | None = None) -> RunConfig:
    """Defaults < preset < config file < overrides (nested dicts by section)."""
    merged = _merge(file_cfg or {}, overrides or {})
    preset = merged.get("preset", "default")
    arch = merged.get("arch", {}).get("arch", ArchConfig.arch)
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if arch not in PRESETS[preset]:
        raise UserError(f"unknown arch {arch!r}; choose one of {sorted(PRESETS[preset])}")
    model = merged.get("model", {}).get("model", ModelConfig.model)
    base = _merge(RunConfig().to_dict(), MODEL_DEFAULTS.get(model, {}))
    cfg = RunConfig.from_dict(_merge(_merge(base, PRESETS[preset][arch]), merged))
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    """Checks that need no data; each failure is a one-line UserError."""
    d, t, m = cfg.data, cfg.train, cfg.model
    budgets = [n for n in ("labels", "labels_per_class", "label_fraction") if getattr(d, n) is not None]
    if len(budgets) > 1:
        raise UserError(f"give one label budget, not {budgets}; keep one of --labels, --labels-per-class, --label-fraction")
    if d.labels is not None and d.labels != "all" and not str(d.labels).isdigit():
        raise UserError(f"--labels {d.labels!r} is not a count; give a whole number >= 0 or 'all'")
    if d.label_fraction is not None and not 0.0 <= d.label_fraction <= 1.0:
        raise UserError(f"--label-fraction {d.label_fraction} is outside 0..1; give e.g. 0.01 for 1 %")
    if not 0.0 <= d.val_fraction < 1.0:
        raise UserError(f"--val-fraction {d.val_fraction} is outside [0, 1); give e.g. 0.1")
    if d.label_ratio <= 0:
        raise UserError(f"--label-ratio {d.label_ratio} must be > 0; 1 means 1:1 labelled:unlabelled")
    if t.epochs < 1 or t.batch_size < 2:
        raise UserError("--epochs must be >= 1 and --batch-size >= 2; raise them")
    if t.optimizer not in ("adam", "rmsprop"):
        raise UserError(f"unknown optimizer {t.optimizer!r}; choose adam or rmsprop")
    if t.precision not in ("fp32", "bf16"):
        raise UserError(f"unknown precision {t.precision!r}; choose fp32 or bf16")
    if m.alpha < 0 or m.beta < 0:
        raise UserError("--alpha and --beta must be >= 0")
    if m.kl_schedule not in ("constant", "warmup", "capacity"):
        raise UserError(f"unknown --kl-schedule {m.kl_schedule!r}; choose constant, warmup or capacity")
    if m.structure not in ("z|x,y", "y|z,x"):
        raise UserError(f"unknown --structure {m.structure!r}; choose 'z|x,y' or 'y|z,x'")
    if m.discrete not in ("enumerate", "relax"):
        raise UserError(f"unknown --discrete {m.discrete!r}; choose enumerate or relax")
    if m.samples < 1 or m.temperature <= 0:
        raise UserError("--samples must be >= 1 and --temperature > 0; raise them")



def nest(flat: dict) -> dict:
    """Flat option names (as on the command line) -> nested sections; ``None`` values dropped.

    Option names are unique across sections, so ``{"labels": "100", "epochs": 5}`` becomes
    ``{"data": {"labels": "100"}, "train": {"epochs": 5}}``.
    """
    owner = {f.name: sec for sec, klass in SECTIONS.items() for f in fields(klass)}
    out: dict = {}
    for k, v in flat.items():
        if v is None:
            continue
        if k == "preset":
            out["preset"] = v
        elif k in owner:
            out.setdefault(owner[k], {})[k] = v
        else:
            raise UserError(f"unknown option {k!r}; see `semivae train --help` for the options")
    return out
