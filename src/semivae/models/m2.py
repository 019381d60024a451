"""Kingma et al. (2014) M2 and M1+M2.

M2 is the partially-specified model (``pspec.py``) with M2's graph and nothing else declared:
    p:  y ~ Cat(1/K),  z ~ N(0, I),  x ~ p(x | dec([z, onehot(y)]))
    q:  q(y|x) = Cat(softmax(f(x))),  q(z|x,y) = N(g([enc(x), y]))
Labelled points: the ELBO with y observed + alpha * CE(q(y|x), y) (the auxiliary term);
unlabelled points: y summed out exactly, sum_y q(y|x) ELBO(x, y) + H(q(y|x)), as one
(K, B) pass over the classes.

M1+M2 stacks M2 on the features of a VAE (M1) trained first on all data:
    M1:  p(x | z1) p(z1),  q(z1|x)          (SemiVAE in unsupervised mode; the run's --arch)
    M2:  p(z1 | y, z2) p(y) p(z2),  q(y|z1) q(z2|z1,y),  fitted to z1 = the mean of q(z1|x)
    stacked:  p(x) = sum_y integral p(x | z1) p(z1 | y, z2) p(y) p(z2) dz1 dz2
Training runs in two stages through the same trainer (``stages``): M1 for ``m1_epochs``,
then M2 with M1 frozen. Saved, predicted and evaluated as one model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import UserError
from ..nn import ArchConfig
from ..objectives.kl import gaussian_log_prob
from ..options import opt, redefault
from .base import BaseModel, Inference, LossOutput, ModelConfig, ModelSpec, Stage
from .pspec import LatentClassConfig, PartiallySpecifiedVAE, check_latent_class
from .semivae import SemiVAE, SemiVAEConfig


def narrow(cfg: ModelConfig, klass: type, **changes):
    """``cfg`` as another model's config: the fields ``klass`` shares with it, plus ``changes``."""
    return klass(**{f.name: getattr(cfg, f.name) for f in fields(klass) if hasattr(cfg, f.name)} | changes)


@dataclass
class M2Config(LatentClassConfig):
    model: str = redefault(ModelConfig, "model", "m2")


@dataclass
class M1M2Config(LatentClassConfig):
    arch_defaults = {"hidden": [600, 600], "latent_dim": 50, "dropout": 0.0}  # Kingma et al.'s M1

    model: str = redefault(ModelConfig, "model", "m1m2")
    m1_epochs: int = opt(20, "m1m2: epochs of the first stage, the VAE M1 on all data")
    m2_hidden: list[int] = opt([500], "m1m2: hidden widths of the M2 networks stacked on M1's latent means")
    m2_latent_dim: int = opt(50, "m1m2: size of M2's z")


class M2(PartiallySpecifiedVAE):
    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: LatentClassConfig):
        super().__init__(replace(spec, n_targets=0), arch, cfg, structure="z|x,y")


class M1M2(BaseModel):
    has_decoder = True
    has_importance_weights = True

    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: M1M2Config):
        super().__init__()
        check_latent_class(spec, cfg.model)
        self.spec, self.heads = spec, spec.heads
        self.m1 = SemiVAE(spec, arch, narrow(cfg, SemiVAEConfig, mode="unsupervised"))
        if self.m1.per_step:
            raise UserError("m1m2 stacks M2 on one z1 per sequence; use --sequence-latent pooled")
        m2_arch = ArchConfig(arch="dense", hidden=list(cfg.m2_hidden), latent_dim=cfg.m2_latent_dim, dropout=0.0)
        self.m2 = M2(ModelSpec((arch.latent_dim,), spec.heads, "gaussian", kind="vector"), m2_arch,
                     narrow(cfg, M2Config))
        self.m1_epochs = cfg.m1_epochs

    def feature_encoder(self) -> nn.Module:
        return self.m1.encoder

    def stages(self, epochs: int) -> list[Stage]:
        return [Stage("m1", self.m1, self.m1_epochs), Stage("m2", self, epochs, frozen=self.m1)]

    def train(self, mode: bool = True) -> "M1M2":
        """M1 stays in eval mode under the stack: its features are fixed once stage 1 ends."""
        super().train(mode)
        self.m1.eval()
        return self

    @torch.no_grad()
    def features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """z1 = mean of q(z1|x): (B, D1)."""
        return self.m1.inference(x, mask, sample=False).mu

    # -- the contract -------------------------------------------------------------------
    def inference(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> Inference:
        """M1's q(z1|x), with M2's class logits q(y|z1)."""
        inf = self.m1.inference(x, mask, sample)
        inf.logits = self.m2.inference(inf.mu, sample=False).logits
        return inf

    def forward(self, batch: Batch) -> LossOutput:
        return self.m2(Batch(self.features(batch.x, batch.mask), batch.labels, soft=batch.soft))

    def elbo_terms(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                   sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked one-sample ELBO: (log p(x|z1), log q(z1|x) - ELBO_M2(z1)), (B,) each
        (``sample=False``: z1 and z2 at their means)."""
        inf = self.m1.inference(x, mask, sample)
        log_px = self.m1.likelihood.log_prob(x, self.m1.generative(inf.z, steps=self.spec.steps(x)), mask)
        m2_rec, m2_kl = self.m2.elbo_terms(inf.z, sample=sample)
        return log_px, gaussian_log_prob(inf.z, inf.mu, inf.logvar) - (m2_rec - m2_kl)

    def log_weights(self, x: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | z1) + log p_M2(z1, y, z2) - log q(z1|x) q(y|z1) q(z2|z1, y): (k, B)."""
        inf = self.m1.inference(x, mask, sample=False)
        z1 = inf.mu + torch.exp(0.5 * inf.logvar) * torch.randn(k, *inf.mu.shape, device=x.device)  # (k, B, D1)
        params = self.m1.generative(z1.flatten(0, 1), steps=self.spec.steps(x))
        rep_mask = None if mask is None else mask.expand(k, *mask.shape).flatten(0, 1)
        log_px = self.m1.likelihood.log_prob(x.expand(k, *x.shape).flatten(0, 1), params, rep_mask).view(k, len(x))
        m2 = self.m2.log_weights(z1.flatten(0, 1), 1).view(k, len(x))
        return log_px + m2 - gaussian_log_prob(z1, inf.mu, inf.logvar)

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.m1.reconstruct(x, mask)

    @property
    def latent_dim(self) -> int:
        """z1, M1's latent: what ``inference`` returns and ``decode`` takes."""
        return self.m1.latent_dim

    @property
    def prior_shape(self) -> tuple[int, ...]:
        """z2, M2's latent: what ``generate`` takes."""
        return (self.m2.latent_dim,)

    def decode(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Mean of p(x | z1) (M1's decoder; the class plays no part there): (B, *shape)."""
        return self.m1.decode(z)

    def generate(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """x from the stacked model: z1 = mean of p(z1 | y, z2), then the mean of p(x | z1)."""
        return self.m1.decode(self.m2.decode(z, classes))


__all__ = ["M1M2", "M1M2Config", "M2", "M2Config"]
