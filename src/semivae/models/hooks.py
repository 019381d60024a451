"""The hooks a model's ``forward`` may add to its loss, each switched on by the model's options.

    consistency     pi must not change under perturbations that keep the class
                    (objectives/consistency.py; with ``--augment-adversarial``, the perturbation
                    also takes a step in the direction that changes pi most: VAT)
    class control   samples the decoder generates for a class must be classified as that class
    teacher         pi must match trained runs' probabilities on the unlabelled points (--teacher;
                    train/teacher.py puts them in the batch)

A model calls ``use_<hook>(cfg)`` in its constructor and ``add_<hook>(total, terms, ...)`` in
``forward``; a hook that is off returns ``total`` unchanged. ``BaseModel`` inherits them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..masks import entries
from ..objectives.consistency import Consistency

if TYPE_CHECKING:
    from ..data.batch import Batch
    from .base import ModelConfig

VAT_XI = 0.1  # length of the power iteration's probe step (Miyato et al.'s xi; their 1e-6 loses the direction
#              to float32 rounding: on a linear classifier it found the known direction to cosine 0.72, 0.1 to 0.99999)


class _Classify(nn.Module):
    """``model.inference(x, mask).logits`` as a module call, so ``functional_call`` can run it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.model.inference(x, mask, sample=False).logits


def frozen_logits(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``model``'s head logits for ``x`` with its parameters detached and its buffers copied:
    gradients flow to ``x`` only, and batch-norm statistics are not moved by ``x``."""
    state = {f"model.{k}": v.detach() for k, v in model.named_parameters()}
    state |= {f"model.{k}": v.clone() for k, v in model.named_buffers()}
    return torch.func.functional_call(_Classify(model), state, (x, mask))


def unit(d: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Each point's part of ``d`` scaled to L2 length 1 over its own values (padded steps and
    missing values zeroed first: ``mask``): (B, ...) -> (B, ...)."""
    if mask is not None:
        d = d * entries(mask, d)
    norm = d.flatten(1).norm(dim=1).clamp(min=1e-12)  # (B,)
    return d / norm.view(-1, *([1] * (d.dim() - 1)))


def adversarial_direction(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The unit direction r per point in which the model's class heads change most, by one power
    iteration (virtual adversarial training, Miyato et al. 2018):

        d ~ N(0, I) of length xi,   r = unit( grad_d  sum_h KL(pi_h(x) || pi_h(x + d)) )

    run with the model in eval mode (dropout off: pi(x) and pi(x + d) must differ by d alone)
    and its parameters held fixed, so neither its weights nor its batch-norm statistics move:
    (B, ...) -> (B, ...)."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            with torch.no_grad():
                clean = {k: torch.softmax(v, -1) for k, v in frozen_logits(model, x, mask).items()}
            d = (VAT_XI * unit(torch.randn_like(x), mask)).requires_grad_(True)
            probed = frozen_logits(model, x + d, mask)
            kl = sum(F.kl_div(torch.log_softmax(probed[k], -1), p, reduction="sum") for k, p in clean.items())
            (grad,) = torch.autograd.grad(kl, d)
    finally:
        model.train(was_training)
    return unit(grad, mask)


def _consistency(cfg: "ModelConfig", weight: float, kind: str) -> Consistency:
    """The consistency settings of the model's options (its perturbations: ``--augment-*``)."""
    return Consistency(
        weight, cfg.consistency_threshold, kind, shift=cfg.augment_shift, noise=cfg.augment_noise,
        warp=cfg.augment_warp,
        rotate=cfg.augment_rotate, elastic=cfg.augment_elastic, flip=cfg.augment_flip,
        erase=cfg.augment_erase, gain=cfg.augment_gain, labels=cfg.consistency_labels, align=cfg.consistency_align,
        temperature=cfg.consistency_temperature, mix=cfg.consistency_mix, adversarial=cfg.augment_adversarial)


class Hooks:
    """The hooks as methods of the model (mixed into ``BaseModel``); they use the model's
    ``spec``, ``heads``, ``inference`` and, for class control, ``generate`` and ``prior_shape``."""

    consistency: Consistency | None = None  # the consistency hook's settings (None: off)
    class_control: float = 0.0  # the class-control hook's weight (0: off)
    teacher_weight: float | None = None  # the teacher hook's weight per unit of CE weight (None: the model has no hook)
    teacher_noise: Consistency | None = None  # the perturbations the classifier's inputs take while taught
    teacher_mix: float = 0.0  # mixup's Beta parameter between taught points (0: off)

    def use_consistency(self, cfg: "ModelConfig", default: float = 0.0) -> None:
        """Switch the consistency hook on from the model's options (a model with heads calls it);
        ``default`` is the weight when ``--consistency`` is not given."""
        weight = default if cfg.consistency is None else cfg.consistency
        self.consistency = None if weight <= 0 else _consistency(cfg, weight, self.spec.kind)
        if self.consistency is not None and self.consistency.align:  # running class means, saved with the weights
            for f, head in enumerate(self.spec.heads):
                self.register_buffer(f"consistency_align_{f}", torch.zeros(2, head.size))  # (2, K)

    def add_consistency(self, total: torch.Tensor, terms: dict[str, torch.Tensor], x: torch.Tensor,
                        mask: torch.Tensor | None, logits: dict[str, torch.Tensor],
                        labels: torch.Tensor | None = None) -> torch.Tensor:
        """``total`` plus weight x the consistency term (pi of a perturbed copy of ``x`` against
        pi(x), or against the label in ``labels`` (B, F) where known with ``--consistency-labels``,
        summed over heads; objectives/consistency.py), recorded in ``terms`` as "consistency";
        ``total`` unchanged when the hook is off. With ``--augment-adversarial eps``, the copy
        then moves eps along ``adversarial_direction`` at the copy."""
        if self.consistency is None or not logits:
            return total
        copy = self.consistency.perturb(x, mask)
        if self.consistency.adversarial > 0:
            copy = copy + self.consistency.adversarial * adversarial_direction(self, copy, mask)
        perturbed = self.inference(copy, mask).logits
        column = {h.name: f for f, h in enumerate(self.spec.heads)}
        term = sum(self.consistency.term(logits[name], perturbed[name], mask,
                                         None if labels is None or name not in column else labels[:, column[name]],
                                         self.get_buffer(f"consistency_align_{column[name]}")
                                         if self.consistency.align else None)
                   for name in logits)
        terms["consistency"] = term.detach()
        return total + self.consistency.weight * term

    def use_teacher(self, cfg: "ModelConfig") -> None:
        """Let ``forward`` learn from the batch's teacher targets (a model with heads calls it)."""
        if cfg.teacher_mix and self.spec.kind not in ("image", "vector"):
            raise UserError(f"--teacher-mix blends images or vectors, not {self.spec.kind}; drop it")
        self.teacher_weight, self.teacher_mix = cfg.teacher_weight, cfg.teacher_mix
        self.teacher_noise = replace(_consistency(cfg, 1.0, self.spec.kind), mix=0.0)  # mixing: taught_batch's own

    def taught_batch(self, batch: "Batch") -> "Batch":
        """The batch as the student learns from it while a teacher teaches (the noisy student,
        Xie et al. 2020; the classifier reads it): its inputs perturbed by the ``--augment-*``
        options; with ``--teacher-mix a``, each taught (unlabelled) point then blended with
        another taught point, lambda ~ Beta(a, a) kept >= 0.5, and its teacher targets alike
        (mixup, Zhang et al. 2018); labelled points keep their own input and label. The batch
        unchanged outside training or without teacher targets."""
        if batch.soft is None or not self.training or self.teacher_weight is None:
            return batch
        x, soft = self.teacher_noise.perturb(batch.x), batch.soft  # (B, ...), (B, K)
        if self.teacher_mix > 0:
            taught = batch.labels[:, 0] < 0  # (B,)
            rows = torch.nonzero(taught).flatten()  # (U,)
            partner = torch.arange(len(x), device=x.device)
            partner[rows] = rows[torch.randperm(len(rows), device=x.device)]  # a taught point mixes with a taught one
            lam = torch.distributions.Beta(self.teacher_mix, self.teacher_mix).sample((len(x),)).to(x)  # (B,)
            lam = torch.where(taught, torch.maximum(lam, 1 - lam), torch.ones_like(lam))
            w = lam.view(-1, *([1] * (x.dim() - 1)))  # (B, 1, ...) to broadcast over a point's values
            x = w * x + (1 - w) * x[partner]
            soft = lam[:, None] * soft + (1 - lam[:, None]) * soft[partner]
        return replace(batch, x=x, soft=soft)

    def add_teacher(self, total: torch.Tensor, terms: dict[str, torch.Tensor], logits: dict[str, torch.Tensor],
                    batch, scale: float = 1.0) -> torch.Tensor:
        """``total`` plus scale x weight x the teacher term, recorded in ``terms`` as "teacher":

            term = mean over points whose column-0 label is withheld of  -sum_k p_T(k|x) log pi_0(k|x)

        with p_T the teachers' probabilities in ``batch.soft`` (B, K) and pi_0 the first head;
        ``scale`` is the weight the model gives its labelled cross-entropy, so one unit of
        ``--teacher-weight`` weighs a taught point like a labelled one. ``total`` unchanged when
        the batch carries no teacher targets."""
        if batch.soft is None or not self.teacher_weight or not logits:
            return total
        head = logits[self.spec.heads[0].name]  # (B, K)
        if head.dim() != 2:
            raise UserError("--teacher teaches one class per point; this model predicts one per step "
                            "(use --sequence-latent pooled)")
        unlabelled = (batch.labels[:, 0] < 0).to(head.dtype)  # (B,)
        ce = -(batch.soft * F.log_softmax(head, -1)).sum(-1)  # (B,)
        term = (ce * unlabelled).sum() / unlabelled.sum().clamp(min=1)
        terms["teacher"] = term.detach()
        return total + scale * self.teacher_weight * term

    def use_class_control(self, cfg: "ModelConfig") -> None:
        """Switch the class-control hook on (a model whose decoder takes the class calls it)."""
        if cfg.class_control and self.spec.kind not in ("image", "vector"):
            raise UserError(f"--class-control works on image and vector data, not {self.spec.kind}; drop it")
        self.class_control = cfg.class_control

    def add_class_control(self, total: torch.Tensor, terms: dict[str, torch.Tensor], n: int) -> torch.Tensor:
        """``total`` plus weight x the class-control term, recorded in ``terms`` as "class_control".

        For n draws z ~ p(z) and a class c ~ Uniform per decoder-fed head, the decoder's mean
        x' = E p(x | z, onehot(c)) must be classified as c by the model's own heads:

            term = sum_h mean_n CE(pi_h(x'), c_h)         pi with its parameters held fixed

        The gradient reaches the generative networks only (the decoder, and SDGM's p(a | y, z)
        that feeds it; an InfoGAN-style mutual-information term between the class code and the
        generated image; Hu et al. 2017 for VAEs): the decoder cannot leave the class to z, and
        pi never learns from its own samples. ``total`` unchanged when the hook is off.
        """
        heads = [h for h in self.heads if h.feeds_decoder]
        if not self.class_control or not heads:
            return total
        classes = {h.name: torch.randint(h.size, (n,), device=total.device) for h in heads}  # head -> (n,)
        z = torch.randn(n, *self.prior_shape, device=total.device, dtype=total.dtype)  # (n, D)
        generated = self.generate(z, classes)  # (n, *shape), differentiable in the decoder
        logits = frozen_logits(self, generated)  # head -> (n, K_h)
        term = sum(F.cross_entropy(logits[h.name], classes[h.name]) for h in heads)
        terms["class_control"] = term.detach()
        return total + self.class_control * term


__all__ = ["Hooks", "adversarial_direction", "frozen_logits", "unit"]
