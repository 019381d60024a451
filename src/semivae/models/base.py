"""The contract every model honours, so the trainer, evaluators and figures stay generic.

A model is an ``nn.Module`` built from a :class:`ModelSpec` (what the data is), the
``[arch]`` options and its own config dataclass (a :class:`ModelConfig` subclass). Training
calls one method, as scvi-tools does:

    forward(batch: Batch) -> LossOutput       inference, generative model and loss in one call

so the trainer never calls into a model's parts, and DistributedDataParallel (which averages
gradients only through ``forward``) wraps any model unchanged. Everything else a trained
model offers is a declared capability, read from attributes, never probed with ``hasattr``:

    heads                    the class heads it predicts: predict_proba (ClassifierHeads)
    has_decoder              p(x | .): elbo_terms, decode, generate, reconstruct (Decoder)
    has_importance_weights   log_weights(x, k) for the IWAE bound (ImportanceWeights)
    n_targets                continuous targets it predicts: predict_targets (Regressor)
    stages(epochs)           the training stages (one unless the model says otherwise)

Each model's docstring states its generative model p and inference model q.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import UserError
from ..objectives.likelihoods import LIKELIHOODS
from ..objectives.steps import mean_steps
from ..options import opt
from .hooks import Hooks
from .latents import ClassLatents
from .neighbours import FeatureBank
from .transfer import carry_state


# ------------------------------------------------------------------- what the data is


@dataclass(frozen=True)
class Head:
    """One softmax head: its name, its class names, and whether its probabilities join z
    as the decoder's input (the paper's pi does; loss-only factor heads do not)."""

    name: str
    classes: tuple[str, ...]
    feeds_decoder: bool = True

    @property
    def size(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class ModelSpec:
    """What a model must know about the data to be built (and re-built from a run)."""

    data_shape: tuple[int, ...]
    heads: tuple[Head, ...]  # one per label column, in the data's column order
    likelihood: str
    kind: str = "image"  # one of semivae.data.KINDS
    n_targets: int = 0  # continuous supervised variables (regression targets)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """The shape of one value's features: a sequence's channels (C,), else the sample shape."""
        return self.data_shape[1:] if self.kind == "sequence" else self.data_shape

    def steps(self, x: torch.Tensor) -> int | None:
        """The number of steps in a batch of sequences (None for other data)."""
        return x.shape[1] if self.kind == "sequence" else None

    def key(self, name: str, head: str) -> str:
        """The name of a per-head term or metric: ``name`` when the data has one head (so
        single-label runs keep their columns: ``ce``, ``accuracy``), else ``name/head``."""
        return name if len(self.heads) == 1 else f"{name}/{head}"

    @property
    def decoder_heads(self) -> tuple[Head, ...]:
        return tuple(h for h in self.heads if h.feeds_decoder)

    def describe_classes(self) -> str:
        """What the data's labels hold, for errors: "the data has no labels", "... 1 class", ..."""
        sizes = [h.size for h in self.heads]
        if not any(sizes):
            return "the data has no labels"
        if len(sizes) == 1:
            return f"the data's labels have {sizes[0]} class{'' if sizes[0] == 1 else 'es'}"
        return f"the data's label columns have {', '.join(map(str, sizes))} classes"


# ------------------------------------------------------------------ what a model returns


@dataclass
class Inference:
    """What q produces for a batch. Absent parts (no decoder / no heads) are None / empty."""

    h: torch.Tensor  # (B, H) top encoder layer
    mu: torch.Tensor | None = None  # (B, D)
    logvar: torch.Tensor | None = None  # (B, D)
    z: torch.Tensor | None = None  # (B, D) reparameterised sample
    logits: dict[str, torch.Tensor] = field(default_factory=dict)  # head -> (B, K_h); pi = softmax


@dataclass
class LossOutput:
    """One batch's objective. ``total`` is minimised; ``terms`` are logged by name.

    Terms are open-ended (``recon``, ``kl``, ``ce`` or ``ce/<head>``, ...), each a () tensor,
    detached. ``counts`` says, for a term that averages over part of the batch only (a
    head's labelled points), how many points it covered; the trainer's epoch mean of such a
    term skips the batches where it covered none. Terms not in ``counts`` cover every point.
    """

    total: torch.Tensor  # ()
    terms: dict[str, torch.Tensor]
    counts: dict[str, torch.Tensor] = field(default_factory=dict)
    logits: dict[str, torch.Tensor] = field(default_factory=dict)  # head -> (B, K_h)


@dataclass
class Stage:
    """One training stage: the trainer runs its generic ``fit`` on ``module`` for ``epochs``,
    with the parameters of ``frozen`` (if any) held fixed."""

    name: str
    module: nn.Module
    epochs: int
    frozen: nn.Module | None = None


# ------------------------------------------------------------------------ configuration


@dataclass
class ModelConfig:
    """The ``[model]`` options every model takes; each model extends it with its own
    (``SemiVAEConfig``, ``PSpecConfig``, ...). ``arch_defaults`` are the ``[arch]`` values
    the model is known to want, applied before presets, config files and flags."""

    arch_defaults: ClassVar[dict] = {}
    speed_preset: ClassVar[str] = "default"  # the preset `semivae bench speed --model NAME` measures

    model: str = opt("semivae", "model family: semivae (Berkhahn et al.), m2, m1m2, pspec (partially "
                                    "specified), adgm or sdgm (auxiliary)")
    alpha: float = opt(20.0, "weight of the cross-entropy on labelled points (paper: of the reconstruction's order)")
    head_alpha: dict[str, float] = opt({}, "per-head cross-entropy weights, e.g. shape=10,scale=5 (heads not named "
                                           "use --alpha)")
    decoder_heads: list[str] | None = opt(None, "heads whose probabilities join z as the decoder's input: names, "
                                                "'all' or 'none' (default: the head of data with one label "
                                                "column; none with several)")
    beta: float = opt(0.25, "weight of KL(q(z|x) || N(0, I)); 1 = plain VAE, >1 = beta-VAE, <1 frees pi")
    likelihood: str | None = opt(None, "bernoulli, gaussian (learned scale), gaussian-fixed or gaussian-hetero (the "
                                       "decoder gives each value's variance) (default: from the data)")
    kl_schedule: str = opt("constant", "KL term: constant (beta*KL), warmup (beta ramped up from 0) or capacity "
                                       "(gamma*|KL - C(t)|)")
    warmup_epochs: float = opt(10.0, "warmup: epochs over which the KL weight rises linearly from 0 to beta")
    gamma: float = opt(1000.0, "capacity: weight of |KL - C(t)| (Burgess et al. 2018)")
    capacity_max: float = opt(25.0, "capacity: final KL target C in nats")
    capacity_epochs: float = opt(20.0, "capacity: epochs over which C rises linearly from 0 to its final value")
    consistency: float | None = opt(None, "weight of the consistency term: pi must not change under small "
                                          "perturbations (image shifts, feature noise, sequence jitter), on every "
                                          "point; 0 = off (default: 10 for the semi-supervised semivae model on "
                                          "images and series but a detector of series (--anomaly-class), 0 "
                                          "otherwise, as measured in docs/benchmarks.md)")
    consistency_threshold: float = opt(0.8, "consistency: only points whose max pi reaches this teach their "
                                            "perturbed copies")
    augment_shift: float = opt(2.0, "consistency on images: shift each image by up to this many pixels")
    augment_rotate: float = opt(15.0, "consistency on images: also rotate each image by up to this many degrees "
                                      "(and scale it by up to degrees/90); 0 = shifts only")
    augment_elastic: float = opt(0.0, "consistency on images: also bend each image by a smooth random field moving "
                                      "pixels this far (std. dev., at 28 x 28, scaled to the image), e.g. 1.5; 0 = off")
    consistency_labels: bool = opt(False, "consistency: a labelled point's perturbed copies are taught its label "
                                          "rather than pi's sharpened guess")
    consistency_temperature: float = opt(0.4, "consistency: temperature that sharpens pi(x) into the target "
                                              "(UDA: 0.4); 0 = pi's most likely class as a hard label (FixMatch)")
    consistency_mix: float = opt(0.0, "consistency on images and vectors: blend each perturbed copy with another "
                                      "point of the batch, and the targets alike (mixup, Beta(a, a)), e.g. 0.75; "
                                      "0 = off")
    consistency_align: bool = opt(False, "consistency: align the targets' class distribution with the labels' "
                                         "(ReMixMatch's distribution alignment)")
    augment_flip: bool = opt(False, "consistency on images: also mirror images left-right half the time (for "
                                    "data whose classes survive a mirror: clothes, not digits)")
    augment_erase: float = opt(0.0, "consistency on images: also blank a random square this fraction of the image's "
                                    "side wide (cutout), e.g. 0.25; 0 = off")
    augment_gain: float = opt(0.0, "consistency on images: also scale each image's intensities by a random factor "
                                   "in [1 - g, 1 + g] (clipped to [0, 1]), e.g. 0.3; 0 = off")
    augment_adversarial: float = opt(0.0, "consistency: also move each perturbed copy this far (L2 length, in the "
                                          "inputs' normalised units) in the direction that changes pi most "
                                          "(virtual adversarial training, Miyato et al. 2018), e.g. 1; 0 = off")
    augment_noise: float = opt(0.1, "consistency on vectors / sequences: noise in standard deviations")
    augment_warp: float = opt(0.0, "consistency on series: also bend each series' time axis smoothly, moving a step "
                                   "by up to about this fraction of the series' length (ends fixed), e.g. 0.1; 0 = off")
    class_control: float = opt(0.0, "weight of the class-control term: samples generated for a random class must "
                                    "be classified as that class by the model's own (frozen) heads, so the decoder "
                                    "follows the class it is given; 0 = off (the default: it cost accuracy, "
                                    "docs/benchmarks.md section 11)")
    teacher_weight: float = opt(1.0, "weight of the --teacher term (cross-entropy against the teachers' probabilities "
                                     "on unlabelled points), in units of the labelled cross-entropy's weight")
    teacher_mix: float = opt(0.0, "--teacher on images and vectors: blend each taught point with another taught point "
                                  "of the batch, and their teacher targets alike (mixup, lambda ~ Beta(a, a)), e.g. "
                                  "0.75; 0 = off")

    def run_name(self) -> str:
        """How run directories and reports name what was trained."""
        return self.model

    def validate(self) -> None:
        """Checks of this model's own options; each failure is a one-line UserError."""
        if self.alpha < 0 or self.beta < 0 or any(v < 0 for v in self.head_alpha.values()):
            raise UserError("--alpha, --head-alpha and --beta must be >= 0")
        if self.kl_schedule not in ("constant", "warmup", "capacity"):
            raise UserError(f"unknown --kl-schedule {self.kl_schedule!r}; choose constant, warmup or capacity")
        if self.class_control < 0:
            raise UserError(f"--class-control {self.class_control} must be >= 0 (0 turns it off)")
        if self.teacher_weight < 0 or self.teacher_mix < 0:
            raise UserError(f"--teacher-weight {self.teacher_weight} and --teacher-mix {self.teacher_mix} must be "
                            ">= 0, e.g. 1 and 0.75 (0: no mixing)")
        if not 0 <= self.augment_rotate <= 45:
            raise UserError(f"--augment-rotate {self.augment_rotate} must be in [0, 45] degrees, e.g. 15 (0: shifts only)")
        if not 0 <= self.augment_elastic <= 5:
            raise UserError(f"--augment-elastic {self.augment_elastic} must be in [0, 5] pixels, e.g. 1.5 (0: off)")
        if not 0 <= self.augment_erase <= 0.75:
            raise UserError(f"--augment-erase {self.augment_erase} must be in [0, 0.75] of the side, e.g. 0.25 (0: off)")
        if not 0 <= self.augment_warp <= 0.15:
            raise UserError(f"--augment-warp {self.augment_warp} must be in [0, 0.15] of a series' length, e.g. 0.1 "
                            "(0: off; beyond 0.15 the bent time axis can fold back)")
        if not 0 <= self.augment_gain < 1:
            raise UserError(f"--augment-gain {self.augment_gain} must be in [0, 1), e.g. 0.3 (0: off)")
        if (self.consistency or 0.0) < 0 or not 0 <= self.consistency_threshold < 1 or self.augment_shift < 0 \
                or self.augment_noise < 0:
            raise UserError("--consistency, --augment-shift and --augment-noise must be >= 0 and "
                            "--consistency-threshold in [0, 1)")
        if self.consistency_temperature < 0 or self.consistency_mix < 0:
            raise UserError("--consistency-temperature and --consistency-mix must be >= 0, e.g. 0.4 and 0.75 "
                            "(0: hard targets / no mixing)")
        if self.augment_adversarial < 0:
            raise UserError(f"--augment-adversarial {self.augment_adversarial} must be >= 0, e.g. 1 (0: off)")
        if self.likelihood is not None and self.likelihood not in LIKELIHOODS:
            raise UserError(f"unknown --likelihood {self.likelihood!r}; choose one of {sorted(LIKELIHOODS)}")

    def head_weight(self, head: str) -> float:
        return self.head_alpha.get(head, self.alpha)


def declare_heads(columns: list[tuple[str, tuple[str, ...]]], decoder_heads: list[str] | None) -> tuple[Head, ...]:
    """Heads over the data's label columns, ``decoder_heads`` naming those fed to the decoder."""
    names = [n for n, _ in columns]
    if decoder_heads is None:  # one label column: the paper's pi; several (factors): losses on z only
        feed = set(names) if len(names) == 1 else set()
    elif decoder_heads in (["all"], ["none"]):
        feed = set(names) if decoder_heads == ["all"] else set()
    else:
        unknown = [n for n in decoder_heads if n not in names]
        if unknown:
            raise UserError(f"--decoder-heads names {unknown}, which are not label columns of the data {names}; "
                            "give column names, 'all' or 'none'")
        feed = set(decoder_heads)
    return tuple(Head(n, tuple(c), n in feed) for n, c in columns)


# ------------------------------------------------------------------- the contract itself


class Model(Protocol):
    """What every model provides (the trainer and the run directory need no more)."""

    spec: ModelSpec
    heads: tuple[Head, ...]  # the class heads this model predicts; () = no classifier
    has_decoder: bool
    has_importance_weights: bool
    n_targets: int

    def forward(self, batch: Batch) -> LossOutput: ...

    def inference(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> Inference: ...

    def stages(self, epochs: int) -> list[Stage]: ...


def class_probabilities(logits: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """head -> (B, K_h) probabilities from ``Inference.logits``: the softmax, averaged over the
    valid steps for per-step logits (B, T, K_h)."""
    return {name: mean_steps(torch.softmax(v, -1), mask) if v.dim() == 3 else torch.softmax(v, -1)
            for name, v in logits.items()}


def model_device(model: nn.Module) -> torch.device:
    """Where a model's weights are."""
    return next(model.parameters()).device


class BaseModel(Hooks, nn.Module):
    """Defaults for the declarations; a model overrides what it offers. The loss hooks
    (consistency, class control) come from hooks.py."""

    heads: tuple[Head, ...] = ()
    has_decoder: bool = False
    has_importance_weights: bool = False
    n_targets: int = 0
    class_latents: ClassLatents | None = None  # where each class lives in z, fitted after training (latents.py)
    feature_bank: FeatureBank | None = None  # the training points' top-layer features (neighbours.py)

    @property
    def latent_head(self) -> Head | None:
        """The head whose classes get a Gaussian in z after training (``class_latents``), or
        None: the model's prior already keeps class out of z, or it has no such head."""
        return None

    def class_codes(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The codes the decoder gets for draws ``z`` (B, D) and ``classes`` (head -> (B,)): z placed in
        each point's class mixture where the model has fitted class latents and that head's class is
        given (models/latents.py), else z itself."""
        head = self.latent_head
        if self.class_latents is None or head is None or classes is None or head.name not in classes:
            return z
        return self.class_latents.place(z, classes[head.name])  # (B, D)

    def unused_options(self) -> dict[str, str]:
        """[model] options this model, as built, does not read -> why (a fresh run given one is
        refused: train/unused.py); none by default."""
        return {}

    def param_groups(self, lr: float) -> list[dict]:
        """The optimiser's parameter groups: every trainable parameter, at ``lr``."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def feature_encoder(self) -> nn.Module:
        """The encoder a classifier built on this model reuses (the one its class heads read)."""
        raise UserError(f"a {type(self).__name__} has no encoder to reuse")

    @classmethod
    def transfer(cls, model: "BaseModel", source: "BaseModel") -> list[str]:
        """Start ``model`` from a trained ``source`` (``--init-from``): every tensor the two
        share by name and shape, a decoder's new input columns at zero; returns what was carried."""
        old = source.state_dict()
        state, carried, mismatched = carry_state(old, model.state_dict())
        if mismatched:
            raise UserError(f"--init-from: {len(mismatched)} tensor(s) differ in shape, e.g. {mismatched[0]}; keep that "
                            "run's --arch, its sizes (--hidden, --channels, --strides, --fc) and --latent-dim (only new "
                            "heads and the decoder's new inputs start fresh)")
        unused = [k for k in old if k.startswith("encoder.") and k not in carried]  # another encoder: names differ
        if unused:
            raise UserError(f"--init-from: {len(unused)} of that run's encoder tensors have no place in this "
                            f"model, e.g. {unused[0]}: it has another --arch; give that run's --arch and sizes "
                            "(--hidden, --channels, --strides, --fc)")
        model.load_state_dict(state)
        return carried

    @classmethod
    def feedback_config(cls, cfg: ModelConfig) -> ModelConfig | None:
        """The config to fine-tune a run of this model on marked false positives / negatives
        (``semivae feedback``: its first head grows by two classes), or None: not offered."""
        return None

    def stages(self, epochs: int) -> list[Stage]:
        return [Stage("train", self, epochs)]

    def predict_proba(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per head, softmax of the logits; per-step heads give the mean over the valid steps."""
        return class_probabilities(self.inference(x, mask, sample=False).logits, mask)
