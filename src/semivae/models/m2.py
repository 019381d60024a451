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

from dataclasses import replace

import torch
from torch import nn

from ..config import ArchConfig, ModelConfig
from ..errors import UserError
from ..objectives.kl import gaussian_log_prob
from .base import Inference, LossTerms, ModelSpec, Stage
from .pspec import PartiallySpecifiedVAE
from .semivae import SemiVAE


class M2(PartiallySpecifiedVAE):
    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: ModelConfig):
        if cfg.structure != "z|x,y":
            raise UserError(f"m2's graph is q(y|x) q(z|x,y), not {cfg.structure!r}; use --model pspec for other structures")
        super().__init__(replace(spec, n_targets=0), arch, cfg)


class M1M2(nn.Module):
    has_classifier = True
    has_decoder = True

    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: ModelConfig):
        super().__init__()
        self.spec = spec
        self.m1 = SemiVAE(spec, arch, replace(cfg, mode="unsupervised"))
        m2_arch = ArchConfig(arch="dense", hidden=list(cfg.m2_hidden), latent_dim=cfg.m2_latent_dim, dropout=0.0)
        self.m2 = M2(ModelSpec((arch.latent_dim,), spec.n_classes, "gaussian"), m2_arch,
                     replace(cfg, structure="z|x,y"))
        self.m1_epochs = cfg.m1_epochs

    def stages(self, epochs: int) -> list[Stage]:
        return [Stage("m1", self.m1, self.m1_epochs), Stage("m2", self, epochs)]

    def train(self, mode: bool = True) -> "M1M2":
        """M1 stays in eval mode under the stack: its features are fixed once stage 1 ends."""
        super().train(mode)
        self.m1.eval()
        return self

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z1 = mean of q(z1|x): (B, D1)."""
        return self.m1.inference(x, sample=False).mu

    # -- the contract -------------------------------------------------------------------
    def inference(self, x: torch.Tensor, sample: bool = True) -> Inference:
        """M1's q(z1|x), with M2's class logits q(y|z1)."""
        inf = self.m1.inference(x, sample)
        inf.logits = self.m2.inference(inf.mu, sample=False).logits
        return inf

    def loss(self, x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, t: torch.Tensor | None = None) -> LossTerms:
        return self.m2.loss(self.features(x), y, labelled)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return self.m2.predict_proba(self.features(x))

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked one-sample ELBO: (log p(x|z1), log q(z1|x) - ELBO_M2(z1)), (B,) each."""
        inf = self.m1.inference(x)
        log_px = self.m1.likelihood.log_prob(x, self.m1.generative(inf.z))
        m2_rec, m2_kl = self.m2.elbo_terms(inf.z)
        return log_px, gaussian_log_prob(inf.z, inf.mu, inf.logvar) - (m2_rec - m2_kl)

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x | z1) + log p_M2(z1, y, z2) - log q(z1|x) q(y|z1) q(z2|z1, y): (k, B)."""
        inf = self.m1.inference(x, sample=False)
        z1 = inf.mu + torch.exp(0.5 * inf.logvar) * torch.randn(k, *inf.mu.shape, device=x.device)  # (k, B, D1)
        params = self.m1.generative(z1.flatten(0, 1))
        log_px = self.m1.likelihood.log_prob(x.expand(k, *x.shape).flatten(0, 1), params).view(k, len(x))
        m2 = self.m2.log_weights(z1.flatten(0, 1), 1).view(k, len(x))
        return log_px + m2 - gaussian_log_prob(z1, inf.mu, inf.logvar)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.m1.reconstruct(x)

    @property
    def latent_dim(self) -> int:
        """z1, M1's latent: what ``inference`` returns and ``decode`` takes."""
        return self.m1.latent_dim

    @property
    def prior_dim(self) -> int:
        """z2, M2's latent: what ``generate`` takes."""
        return self.m2.latent_dim

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x | z1) (M1's decoder; y plays no part there): (B, *shape)."""
        return self.m1.decode(z)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x from the stacked model: z1 = mean of p(z1 | y, z2), then the mean of p(x | z1)."""
        return self.m1.decode(self.m2.decode(z, y))


__all__ = ["M1M2", "M2"]
