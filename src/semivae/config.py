"""Run configuration: four sections, presets, config files.

Each concern owns its options, next to its code: ``[data]`` is ``data.DataConfig``, ``[arch]``
is ``nn.ArchConfig``, ``[model]`` is the chosen model's own config dataclass (``--model``
picks ``SemiVAEConfig``, ``M2Config``, ...; each extends ``models.ModelConfig``) and
``[train]`` is :class:`TrainConfig` below. Precedence, lowest first: dataclass defaults (a
model's own, with its ``arch_defaults``) < preset (``--preset``) < config file (``--config
run.toml`` / ``.yaml``) < command-line flags. Every field carries its help text in
``metadata["help"]``; the CLI builds its flags from these fields, so a flag, a config-file
key and a Python keyword always have the same name, and every value is type-checked the same
way wherever it comes from.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from .data.config import DataConfig
from .data.sources import holds_series
from .errors import UserError
from .models import MODELS, ModelConfig, model_entry
from .nn import ARCHS, ArchConfig
from .objectives.schedules import LR_SCHEDULES
from .options import check_section, check_value, default_of, opt, require_table


@dataclass
class TrainConfig:
    epochs: int = opt(20, "passes over the unlabelled training data (over the labels in supervised mode)")
    batch_size: int = opt(128, "points per batch, labelled and unlabelled together")
    optimizer: str = opt("adam", "adam or rmsprop")
    lr: float = opt(1e-3, "learning rate")
    lr_schedule: str = opt("constant", "constant, or cosine: the learning rate falls from --lr to 0 along a half "
                                       "cosine over the epochs (step by step)")
    ema: float = opt(0.0, "average the weights along training: an exponential moving average with this decay per "
                          "step (e.g. 0.999) is what validation sees and the run keeps (0 = off)")
    momentum: float = opt(0.9, "rmsprop momentum")
    rho: float = opt(0.99, "rmsprop: decay of the running average of squared gradients (torch's alpha, Keras' rho)")
    weight_decay: float = opt(0.0, "L2 weight decay")
    patience: int = opt(0, "early stopping: stop after this many epochs without validation improvement (0 = off)")
    seed: int = opt(0, "seed for the label draw and the split (unless --split-seed), initialisation and batches")
    device: str = opt("auto", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    precision: str = opt("fp32", "fp32 or bf16 (autocast)")
    compile: bool = opt(False, "torch.compile the loss and optimiser step (slower start, faster steps)")
    threads: int | None = opt(None, "CPU threads for PyTorch (default: PyTorch's choice)")
    tensorboard: bool = opt(False, "log metrics and a sample grid per epoch to RUN/tensorboard (needs the tensorboard extra)")
    checkpoint_every: int = opt(0, "also write the full-state checkpoint every N steps (0: at the end of epochs only)")
    checkpoint_seconds: float = opt(60.0, "write the end-of-epoch checkpoint and weights at most every S seconds "
                                          "(0: every epoch); the first and last epoch, early stops, signals always do")
    workers: int = opt(0, "DataLoader processes reading a packed data set from disk (0: in the training process)")
    init_from: str | None = opt(None, "start from this run's weights: every tensor both models have (a decoder's new "
                                      "inputs at zero), new heads fresh; a classifier takes the run's encoder")
    calibrate: bool = opt(False, "after training, fit temperature scaling on the validation labels (needs "
                                 "--val-labels K); predict and evaluate then give calibrated probabilities")
    unknown_fpr: float = opt(0.05, "predict flags an input as unknown when its score passes the threshold that "
                                   "flags this fraction of the validation points")


# The [model] section's class depends on --model: the CLI offers the union of all models' fields.
MODEL_CONFIGS: list[type[ModelConfig]] = [e.config for e in MODELS.values()]
SECTIONS: dict[str, type | list[type]] = {"data": DataConfig, "arch": ArchConfig, "model": MODEL_CONFIGS,
                                          "train": TrainConfig}


def section_fields(section: str) -> dict[str, object]:
    """Field name -> dataclass field of a section (for [model]: of any model, first declaration)."""
    klasses = SECTIONS[section] if isinstance(SECTIONS[section], list) else [SECTIONS[section]]
    out: dict = {}
    for klass in klasses:
        for f in fields(klass):
            out.setdefault(f.name, f)
    return out


def model_owners(name: str) -> dict[str, object]:
    """Model name -> default of ``name`` for every model whose config has that option."""
    return {m: default_of(f) for m, e in MODELS.items() for f in fields(e.config) if f.name == name}


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    model: ModelConfig = field(default_factory=lambda: MODELS["semivae"].config())
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "default"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, saved: bool = False) -> "RunConfig":
        """A config from nested sections, every value type-checked. Options of another model
        than the chosen one are an error, unless they hold that option's default (config files
        written before each model owned its options list them all) or ``saved`` is set (a run
        directory's own ``config.yaml``, read back as it was written)."""
        if not isinstance(d, dict):
            raise UserError(f"a configuration is a table of sections ([data], [arch], [model], [train]), not "
                            f"{type(d).__name__}; write one section per concern")
        d = dict(d)
        preset = check_value(d.pop("preset", "default"), str, "preset")
        parts = {}
        for name in SECTIONS:
            values = d.pop(name, None)
            values = {} if values is None else values
            valid = set(section_fields(name))
            if name == "model":
                if saved:  # a run written before an option existed trained with its old value
                    values = {**TRAINED_BEFORE, **values}
                check_section(ModelConfig, values, name, valid)
                klass = model_entry(check_value(values.get("model", "semivae"), str, "[model] model")).config
                values = _own_options(values, klass, saved)
            else:
                klass = SECTIONS[name]
            parts[name] = klass(**check_section(klass, values, name, valid))
        if d:
            raise UserError(f"unknown config section(s) {sorted(d)}; valid sections: {sorted(SECTIONS)} and 'preset'")
        return cls(preset=preset, **parts)


# [model] options added after runs were written, at the value such runs trained with (a resumed
# old run goes on as it began): consistency perturbations gained rotations, elastic deformation
# and label targets in issue 15
TRAINED_BEFORE = {"augment_rotate": 0.0, "augment_elastic": 0.0, "consistency_labels": False}


def _own_options(values: dict, klass: type, saved: bool) -> dict:
    own = {f.name for f in fields(klass)}
    out = {}
    for k, v in values.items():
        owners = model_owners(k)
        if k in own or not owners:
            out[k] = v
        elif not saved and v not in owners.values():
            flag = "--" + k.replace("_", "-")
            raise UserError(f"{flag} belongs to --model {' / '.join(sorted(owners))}, not {values['model']!r}; "
                            f"drop {flag} or choose a model that takes it")
    return out


# Presets: values that differ from the defaults, per architecture. The defaults (alpha 20,
# beta 0.25, dropout 0.5) are the best of a sweep on digits with 10 labels per class
# (docs/benchmarks.md). "paper" is Berkhahn et al. 2019, appendix A (Tables 13 and 14;
# RMSprop "without decay and a momentum parameter of 0.9", lr 5e-4) with beta 1; the paper
# states no alpha or batch size (batch 128 is ours). The paper's models were Keras ones, whose
# RMSprop has no momentum: its 0.9 is rho, the squared-gradient decay (torch's alpha), and its
# layers start Glorot-uniform with zero biases. The dense preset reads it so (its supervised
# sibling then lands on Table 3's), with alpha 30, the best of {1, 10, 30, 100, 500, 2000} on
# validation (MNIST, 1,000 labels); the conv preset keeps torch's momentum 0.9 and alpha 500 (the
# best of {10, 50, 500} under that reading), with which it reproduced Table 3 on a GPU and has
# not been re-run since (docs/benchmarks.md section 2).
_PAPER_TRAIN = {"optimizer": "rmsprop", "lr": 5e-4, "momentum": 0.9, "batch_size": 128}
_PAPER_KERAS_TRAIN = _PAPER_TRAIN | {"momentum": 0.0, "rho": 0.9}
_PAPER_MODEL = {"alpha": 500.0, "beta": 1.0, "consistency": 0.0}  # the paper's objective: no consistency term
_PAPER_KERAS_MODEL = _PAPER_MODEL | {"alpha": 30.0}

# Conv: the best configuration measured (docs/benchmarks.md section 11): a wider encoder (32, 64
# and 128 channels at strides 1, 2, 2, FC 256; chosen on Fashion-MNIST's 100 validation labels
# from 1,000, lower log loss on every draw than 16 and 32 channels at stride 2 with FC 128), the
# consistency term's labelled points taught their labels, images also bent elastically, and the
# weights averaged along training. A run keeps its sizes in config.yaml, and a conv run saved
# before --ema existed reads 0 (TrainConfig's default), so older runs load and resume as they began.
_CONV_ARCH = {"channels": [32, 64, 128], "strides": [1, 2, 2], "fc": 256, "batch_norm": True, "dropout": 0.25}
_CONV_CONSISTENCY = {"consistency_labels": True, "augment_elastic": 1.5}
_CONV_TRAIN = {"ema": 0.999}

# Recurrent (sequences): "paper" is Table 15 (dense 40, LSTM 40, dense 30 per step; a z of 2 and
# a pi at every step; RMSprop lr 1e-3, momentum 0.9). The default's alpha of 100 was chosen with the
# consistency term on JapaneseVowels' validation labels (docs/benchmarks.md section 11, session 44),
# and so was the term's noise of 0.5 (channels scaled by N(1, 0.25), session 47).
_RECURRENT = {"hidden": [64, 64], "rnn_hidden": 64, "dropout": 0.0}
_RECURRENT_MODEL = {"alpha": 100.0, "augment_noise": 0.5}
# A detector of series (--anomaly-class) keeps session 43's settings: with the consistency term the
# class layer grows sure of a class it was never taught (docs/benchmarks.md section 11, session 46).
_RECURRENT_DETECTOR = {"model": {"alpha": 20.0, "consistency": 0.0}}
PRESETS: dict[str, dict[str, dict]] = {
    "default": {"dense": {},
                "conv": {"arch": _CONV_ARCH, "model": _CONV_CONSISTENCY,
                         "train": _CONV_TRAIN},
                "recurrent": {"arch": _RECURRENT, "model": _RECURRENT_MODEL, "detector": _RECURRENT_DETECTOR}},
    "paper": {
        "dense": {"arch": {"hidden": [1024, 1024], "latent_dim": 2, "dropout": 0.0, "batch_norm": False,
                           "weight_init": "glorot"},
                  "train": _PAPER_KERAS_TRAIN, "model": _PAPER_KERAS_MODEL},
        "conv": {"arch": {"channels": [64, 64, 64], "strides": [1, 1, 2], "fc": 512, "latent_dim": 2,
                          "dropout": 0.5, "batch_norm": True},
                 "train": _PAPER_TRAIN, "model": _PAPER_MODEL},
        "recurrent": {"arch": {"hidden": [40, 30], "rnn_hidden": 40, "latent_dim": 2, "dropout": 0.0,
                               "sequence_latent": "per-step", "cell": "lstm", "bidirectional": False,
                               "step_features": 0},
                      "train": {**_PAPER_TRAIN, "lr": 1e-3}, "model": _PAPER_MODEL},
    },
}


def load_config_file(path: str) -> dict:
    """Read a TOML or YAML config file into a nested dict."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {path} not found; pass an existing .toml or .yaml file to --config")
    try:
        if p.suffix == ".toml":
            d = tomllib.loads(p.read_text())
        elif p.suffix in (".yaml", ".yml"):
            d = yaml.safe_load(p.read_text())
            d = {} if d is None else d
        else:
            raise UserError(f"config file {path} has suffix {p.suffix!r}; use .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"config file {path} is not valid {p.suffix[1:].upper()}: {str(e).splitlines()[0]}; "
                        "fix its syntax") from None
    if not isinstance(d, dict):
        raise UserError(f"config file {path} holds a {type(d).__name__} at its top level; it must hold sections "
                        "(data:, arch:, model:, train:) of key: value pairs")
    return d


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve(file_cfg: dict | None = None, overrides: dict | None = None) -> RunConfig:
    """Defaults (the chosen model's) < preset < config file < overrides (nested dicts by section)."""
    merged = merge(file_cfg or {}, overrides or {})
    preset = check_value(merged.get("preset", "default"), str, "preset")
    data = require_table(merged.get("data", {}), "data")
    arch = check_value(require_table(merged.get("arch", {}), "arch").get("arch", None) or _default_arch(data),
                       str, "[arch] arch")
    model = check_value(require_table(merged.get("model", {}), "model").get("model", "semivae"), str, "[model] model")
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if arch not in PRESETS[preset] or arch not in ARCHS:
        raise UserError(f"unknown arch {arch!r}; choose one of {sorted(ARCHS)}")
    klass = model_entry(model).config
    base = merge(RunConfig(model=klass()).to_dict(), {"arch": klass.arch_defaults})
    layer = dict(PRESETS[preset][arch])
    detector = layer.pop("detector", {})  # what a run with a class left out (--anomaly-class) takes instead
    if data.get("anomaly_class") is not None:
        layer = merge(layer, detector)
    cfg = RunConfig.from_dict(merge(merge(base, layer), merge(merged, {"arch": {"arch": arch}})))
    if cfg.arch.decoder_arch not in ("", *ARCHS):
        raise UserError(f"unknown --decoder-arch {cfg.arch.decoder_arch!r}; choose one of {sorted(ARCHS)}")
    validate(cfg)
    return cfg


def _default_arch(data: dict) -> str:
    """The architecture when none is given (``data``: the [data] options given): recurrent for series
    (a dense model on the padded series scored 0.625 against 0.900 on BasicMotions,
    docs/benchmarks.md section 11), else dense."""
    dataset = data.get("dataset", DataConfig.dataset)
    return "recurrent" if isinstance(dataset, str) and holds_series(dataset) else ArchConfig.arch


def validate(cfg: RunConfig) -> None:
    """Checks that need no data; each failure is a one-line UserError."""
    d, t = cfg.data, cfg.train
    budgets = [n for n in ("labels", "labels_per_class", "label_fraction", "label_ids") if getattr(d, n) is not None]
    if len(budgets) > 1:
        raise UserError(f"give one label budget, not {budgets}; keep one of --labels, --labels-per-class, "
                        "--label-fraction, --label-ids")
    if d.labels is not None and d.labels != "all" and not str(d.labels).isdigit():
        raise UserError(f"--labels {d.labels!r} is not a count; give a whole number >= 0 or 'all'")
    if d.label_fraction is not None and not 0.0 <= d.label_fraction <= 1.0:
        raise UserError(f"--label-fraction {d.label_fraction} is outside 0..1; give e.g. 0.01 for 1 %")
    if not 0.0 <= d.val_fraction < 1.0:
        raise UserError(f"--val-fraction {d.val_fraction} is outside [0, 1); give e.g. 0.1")
    if d.image_size is not None and not (len(d.image_size) in (1, 2) and all(4 <= v <= 1024 for v in d.image_size)):
        size = ",".join(map(str, d.image_size))
        raise UserError(f"--image-size {size} must be H,W (or one side) of 4 to 1024 pixels; e.g. --image-size 64")
    if d.label_ratio <= 0:
        raise UserError(f"--label-ratio {d.label_ratio} must be > 0; 1 means 1:1 labelled:unlabelled")
    if not 0 < t.unknown_fpr < 1:
        raise UserError(f"--unknown-fpr {t.unknown_fpr} is outside (0, 1); give e.g. 0.05")
    if t.seed < 0 or (d.split_seed is not None and d.split_seed < 0):
        raise UserError("--seed and --split-seed must be whole numbers >= 0; e.g. --seed 0")
    if t.epochs < 1 or t.batch_size < 2:
        raise UserError("--epochs must be >= 1 and --batch-size >= 2; raise them")
    if t.optimizer not in ("adam", "rmsprop"):
        raise UserError(f"unknown optimizer {t.optimizer!r}; choose adam or rmsprop")
    if t.lr_schedule not in LR_SCHEDULES:
        raise UserError(f"unknown --lr-schedule {t.lr_schedule!r}; choose {' or '.join(LR_SCHEDULES)}")
    if not 0.0 <= t.ema < 1.0:
        raise UserError(f"--ema {t.ema} is outside [0, 1); give a decay per step such as 0.999, or 0 for none")
    if t.precision not in ("fp32", "bf16"):
        raise UserError(f"unknown precision {t.precision!r}; choose fp32 or bf16")
    if not t.lr > 0 or t.weight_decay < 0 or not 0 <= t.momentum < 1:
        raise UserError("--lr must be > 0, --weight-decay >= 0 and --momentum in [0, 1); e.g. --lr 0.001")
    if not 0 < t.rho < 1:
        raise UserError(f"--rho {t.rho} is outside (0, 1); give e.g. 0.9 (Keras' default) or 0.99 (torch's)")
    negative = min(t.patience, t.checkpoint_every, t.checkpoint_seconds, t.workers) < 0
    if negative or (t.threads is not None and t.threads < 1):
        raise UserError("--patience, --checkpoint-every, --checkpoint-seconds and --workers must be >= 0 and "
                        "--threads >= 1")
    check_device(t.device)
    cfg.arch.validate()
    cfg.model.validate()


def check_device(name: str) -> None:
    """A device the machine has, or a one-line error (before anything is written)."""
    import torch

    if name in ("auto", "cpu"):
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; give auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: this machine has no CUDA GPU; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s); use cuda:0..")
    elif device.type != "cpu":
        raise UserError(f"--device {name} is not supported; use auto, cpu or cuda[:N]")


def nest(flat: dict) -> dict:
    """Flat option names (as on the command line) -> nested sections; ``None`` values dropped.

    Option names are unique across sections, so ``{"labels": "100", "epochs": 5}`` becomes
    ``{"data": {"labels": "100"}, "train": {"epochs": 5}}``.
    """
    owner = {name: sec for sec in SECTIONS for name in section_fields(sec)}
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
