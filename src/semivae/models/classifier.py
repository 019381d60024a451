"""A classifier on an encoder: the transfer-learning workflow's model (Mody et al.; Varano).

    p(y | x) = softmax(head(enc(x)))         trained on cross-entropy alone, on labelled points

The encoder has the run's ``--arch``; ``--head ff`` is two dense layers on its output,
``--head conv`` a convolution, max-pool, convolution and dense layer on a conv encoder's
feature maps (not its flattened output). Started from a trained run (``semivae finetune RUN``,
i.e. ``--init-from RUN``), the encoder takes that run's encoder weights (the one its class
heads read: ``feature_encoder()``) and the head starts fresh; ``--freeze`` keeps the encoder
fixed (weights and batch-norm statistics), else it trains with its own ``--encoder-lr``.
Started from nothing it is the plain baseline: the same encoder and head on the labels alone.
Taught by trained runs (``--teacher``, ``semivae distill``) it is the student: it also learns the
teachers' probabilities on the unlabelled points, every input perturbed by ``--augment-*``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batch import Batch
from ..errors import UserError
from ..nn import ArchConfig, Dropout, make_encoder
from ..options import opt, redefault
from .base import BaseModel, Inference, LossOutput, ModelConfig, ModelSpec


@dataclass
class ClassifierConfig(ModelConfig):
    model: str = redefault(ModelConfig, "model", "classifier")
    head: str = opt("ff", "classifier: ff (two dense layers on the encoder's output, --dropout between) or conv "
                          "(conv, max-pool, conv, dense on a conv encoder's feature maps)")
    head_hidden: int = opt(256, "classifier: width of the head's hidden layer(s)")
    freeze: bool = opt(False, "classifier: keep the encoder's weights fixed (only the head learns)")
    encoder_lr: float | None = opt(None, "classifier: learning rate of a trainable encoder (default: --lr)")

    def validate(self) -> None:
        super().validate()
        if self.head not in ("ff", "conv"):
            raise UserError(f"unknown --head {self.head!r}; choose ff or conv")
        if self.head_hidden < 1 or (self.encoder_lr is not None and self.encoder_lr <= 0):
            raise UserError("--head-hidden must be >= 1 and --encoder-lr > 0")
        if self.freeze and self.encoder_lr is not None:
            raise UserError("--encoder-lr sets a trainable encoder's learning rate, and --freeze keeps the encoder "
                            "fixed; drop one of them")


class Classifier(BaseModel):
    def unused_options(self) -> dict[str, str]:
        return dict.fromkeys(("beta", "kl_schedule", "likelihood", "class_control"),
                             "the classifier has no latent space or decoder")

    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: ClassifierConfig):
        super().__init__()
        if len(spec.heads) != 1 or spec.heads[0].size < 2:
            raise UserError(f"the classifier needs one label column with at least 2 classes and "
                            f"{spec.describe_classes()}; give it data with such a column (--label-column picks one)")
        self.spec, self.heads, self.cfg = spec, spec.heads, cfg
        self.name, k = spec.heads[0].name, spec.heads[0].size
        self.encoder = make_encoder(arch, spec.data_shape)
        self.use_consistency(cfg)
        self.use_teacher(cfg)
        if self.encoder.per_step:
            raise UserError("the classifier reads one feature per sequence; use --sequence-latent pooled")
        if cfg.head == "conv":
            if not self.encoder.has_feature_maps:
                raise UserError(f"--head conv reads a conv encoder's feature maps; the run's --arch is {arch.arch}, "
                                "use --head ff")
            c, h, w = self.encoder.feature_shape
            w2 = cfg.head_hidden
            self.head = nn.Sequential(nn.Conv2d(c, w2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
                                      nn.Conv2d(w2, w2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                      nn.Linear(w2 * -(-h // 2) * -(-w // 2), k))
        else:  # two fully connected layers (Mody et al.)
            self.head = nn.Sequential(nn.Linear(self.encoder.out_features, cfg.head_hidden), nn.ReLU(),
                                      Dropout(arch.dropout), nn.Linear(cfg.head_hidden, k))
        if cfg.freeze:
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> "Classifier":
        """A frozen encoder stays in eval mode: its batch-norm statistics and dropout stay fixed too."""
        super().train(mode)
        if self.cfg.freeze:
            self.encoder.eval()
        return self

    def param_groups(self, lr: float) -> list[dict]:
        groups = [{"params": list(self.head.parameters())}]
        if not self.cfg.freeze:
            groups.append({"params": list(self.encoder.parameters()), "lr": self.cfg.encoder_lr or lr})
        return groups

    def feature_encoder(self) -> nn.Module:
        return self.encoder

    @classmethod
    def transfer(cls, model: "Classifier", source: BaseModel) -> list[str]:  # noqa: D102
        """The source's feature encoder into this encoder; the head starts fresh."""
        try:
            model.encoder.load_state_dict(source.feature_encoder().state_dict())
        except RuntimeError as err:
            raise UserError(f"--init-from: the run's encoder does not fit this one ({str(err).splitlines()[-1].strip()}); "
                            "keep that run's --arch options") from None
        return [f"encoder.{k}" for k in model.encoder.state_dict()]

    def inference(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> Inference:
        if self.cfg.head == "conv":
            h = self.encoder.features(x)  # (B, C', H', W') feature maps
        else:
            h = self.encoder(x, mask)  # (B, H)
        return Inference(h=h if h.dim() == 2 else h.flatten(1), logits={self.name: self.head(h)})

    def forward(self, batch: Batch) -> LossOutput:
        batch = self.taught_batch(batch)  # perturbed (and mixed) only while a teacher teaches: the noisy student
        x = batch.x
        logits = self.inference(x, batch.mask).logits[self.name]
        y = batch.labels[:, 0]
        labelled = y >= 0
        n = labelled.sum()
        ce = (F.cross_entropy(logits, y.clamp(min=0), reduction="none") * labelled).sum() / n.clamp(min=1)
        terms, total = {"ce": ce.detach()}, ce
        total = self.add_consistency(total, terms, x, batch.mask, {self.name: logits}, batch.labels)
        total = self.add_teacher(total, terms, {self.name: logits}, batch)
        return LossOutput(total=total, terms=terms, counts={"ce": n}, logits={self.name: logits})
