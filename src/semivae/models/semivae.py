"""The semi-supervised VAE of Berkhahn et al. (2019) and its two siblings, by mode.

Inference model q (one shared encoder):
    h = enc(x);  q(z | x) = N(mu(h), diag exp(logvar(h)));  pi(x) = softmax(W h)
Generative model p:
    z ~ N(0, I);  x ~ p(x | dec([z, pi(x)]))    (likelihood: Bernoulli or Gaussian)
Objective on a batch (minimised):
    mean_i [ -log p(x_i | z_i, pi_i) + beta * KL(q(z | x_i) || N(0, I)) ]
        + alpha * mean_{labelled j} CE(pi(x_j), y_j)

Modes, one code path: ``semi`` (all of it), ``unsupervised`` (no pi; decoder sees z only:
a VAE / beta-VAE) and ``supervised`` (encoder + pi only, cross-entropy alone). The KL
term goes through a schedule (``--kl-schedule``: constant beta, warm-up, capacity); a
variant changes it by overriding :meth:`SemiVAE.regularizer`, not by copying the loss.
In ``semi`` mode p(x | z, pi) is conditioned on pi(x), so ``log_weights`` bound log p(x | pi(x)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ArchConfig, ModelConfig
from ..nn import make_decoder, make_encoder
from ..objectives import gaussian_kl_standard, make_likelihood, reparameterise
from ..objectives.kl import gaussian_log_prob, standard_normal_log_prob
from ..objectives.schedules import KLSchedule
from .base import Inference, LossTerms, ModelSpec


@dataclass(frozen=True)
class Mode:
    classifier: bool  # has the pi layer and the cross-entropy term
    decoder: bool  # has q(z|x), the decoder and the ELBO


MODES: dict[str, Mode] = {
    "semi": Mode(classifier=True, decoder=True),
    "unsupervised": Mode(classifier=False, decoder=True),
    "supervised": Mode(classifier=True, decoder=False),
}


class SemiVAE(nn.Module):
    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: ModelConfig):
        super().__init__()
        self.spec, self.mode = spec, MODES[cfg.mode]
        self.alpha = cfg.alpha
        self.kl_schedule = KLSchedule.from_config(cfg)
        self.encoder = make_encoder(arch, spec.data_shape)
        h = self.encoder.out_features
        if self.mode.classifier:
            self.pi = nn.Linear(h, spec.n_classes)
        if self.mode.decoder:
            self.mu = nn.Linear(h, arch.latent_dim)
            self.logvar = nn.Linear(h, arch.latent_dim)
            code = arch.latent_dim + (spec.n_classes if self.mode.classifier else 0)
            self.decoder = make_decoder(arch, code, spec.data_shape)
            self.likelihood = make_likelihood(spec.likelihood, spec.data_shape)

    @property
    def has_classifier(self) -> bool:
        return self.mode.classifier

    @property
    def has_decoder(self) -> bool:
        return self.mode.decoder

    # -- the contract -------------------------------------------------------------------
    def inference(self, x: torch.Tensor, sample: bool = True) -> Inference:
        h = self.encoder(x)  # (B, H)
        out = Inference(h=h)
        if self.mode.classifier:
            out.logits = self.pi(h)  # (B, K)
        if self.mode.decoder:
            out.mu, out.logvar = self.mu(h), self.logvar(h).clamp(-20.0, 10.0)  # (B, D) each
            out.z = reparameterise(out.mu, out.logvar) if sample else out.mu
        return out

    def generative(self, z: torch.Tensor, pi: torch.Tensor | None = None) -> torch.Tensor:
        code = z if pi is None else torch.cat([z, pi], dim=-1)  # (B, D [+ K])
        return self.decoder(code)  # (B, *shape) likelihood parameters

    def regularizer(self, inf: Inference) -> torch.Tensor:
        """Per-point penalty on q(z|x): the scheduled KL. The hook a variant overrides. (B,)"""
        return self.kl_schedule.penalty(gaussian_kl_standard(inf.mu, inf.logvar))

    def loss(self, x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor, t: torch.Tensor | None = None) -> LossTerms:
        """``labelled`` (B,) bool marks the points whose label ``y`` may be used; continuous
        targets ``t`` are not modelled here (see the pspec model)."""
        inf = self.inference(x)
        zero = x.new_zeros(())
        recon = kl = ce = zero
        total = zero
        if self.mode.decoder:
            nll = -self.likelihood.log_prob(x, self._decode(inf))  # (B,)
            reg = self.regularizer(inf)  # (B,)
            recon = nll.mean()
            kl = gaussian_kl_standard(inf.mu, inf.logvar).mean().detach()
            total = total + recon + reg.mean()
        n_lab = labelled.sum()  # a tensor: no host sync, so the step compiles to one graph
        if self.mode.classifier:  # mean CE over the labelled points; 0 when there are none
            per_point = F.cross_entropy(inf.logits, y.clamp(min=0), reduction="none")  # (B,)
            ce = (per_point * labelled).sum() / n_lab.clamp(min=1)
            total = total + (self.alpha if self.mode.decoder else 1.0) * ce
        return LossTerms(total=total, recon=recon.detach(), kl=kl, ce=ce.detach(), n_labelled=n_lab)

    # -- uses of a trained model ----------------------------------------------------------
    def _decode(self, inf: Inference) -> torch.Tensor:
        pi = torch.softmax(inf.logits, -1) if self.mode.classifier else None
        return self.generative(inf.z, pi)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities pi(x): (B, K)."""
        return torch.softmax(self.inference(x, sample=False).logits, -1)

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample estimate of (log p(x | z, pi), KL) per point: two (B,) tensors."""
        inf = self.inference(x)
        return self.likelihood.log_prob(x, self._decode(inf)), gaussian_kl_standard(inf.mu, inf.logvar)

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x | z, pi) + log p(z) - log q(z|x) for k samples z ~ q(z|x): (k, B)."""
        inf = self.inference(x, sample=False)
        z = reparameterise(inf.mu.expand(k, *inf.mu.shape), inf.logvar.expand(k, *inf.logvar.shape))  # (k, B, D)
        pi = torch.softmax(inf.logits, -1).expand(k, *inf.logits.shape) if self.mode.classifier else None
        params = self.generative(z.flatten(0, 1), None if pi is None else pi.flatten(0, 1))  # (k*B, *shape)
        log_px = self.likelihood.log_prob(x.expand(k, *x.shape).flatten(0, 1), params).view(k, len(x))
        return log_px + standard_normal_log_prob(z) - gaussian_log_prob(z, inf.mu, inf.logvar)

    @property
    def latent_dim(self) -> int:
        """Size of the z that ``inference`` returns and ``decode`` / ``generate`` take."""
        return self.mu.out_features

    prior_dim = latent_dim

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x | z, pi = onehot(y)) (uniform pi when ``y`` is None): (B, *shape)."""
        pi = None
        if self.mode.classifier:
            k = self.spec.n_classes
            pi = (torch.full((len(z), k), 1.0 / k, device=z.device) if y is None
                  else F.one_hot(y, k).to(z.dtype))
        return self.likelihood.mean(self.generative(z, pi))

    generate = decode  # z ~ p(z) lives where q's z lives

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of p(x | z = mu(x), pi(x)): (B, *shape)."""
        return self.likelihood.mean(self._decode(self.inference(x, sample=False)))
