"""Auxiliary and skip deep generative models (ADGM, SDGM; Maaloe et al. 2016): M2 with an auxiliary variable a.

Generative model p:
    y ~ Cat(1/K),  z ~ N(0, I_D),  x ~ p(x | dec([z, onehot(y)])),
    a ~ p(a | x, y, z) = N(m([enc_p(x), onehot(y), z]))
Inference model q:
    a ~ q(a | x) = N(enc(x)),  q(y | a, x) = Cat(softmax(f([enc(x), a]))),
    q(z | a, y, x) = N(g([enc(x), a, onehot(y)]))
The auxiliary a leaves p(x | y, z) as M2's but makes q(y, z | x) = int q(a|x) q(y|a,x) q(z|a,y,x) da
a continuous mixture, more flexible than M2's q(y|x) q(z|x,y); p(a | x, y, z) is what the bound
pays for it. q's three networks read one encoder of x (Maaloe et al. give each its own).
Labelled point, one a ~ q(a|x) and one z ~ q(z|a,x,y) per class:
    ELBO(x, y) = log p(x|y,z) + log p(a|x,y,z) - log q(a|x) - log K - KL(q(z|a,x,y) || p(z))
    loss = -ELBO(x, y) - alpha * log q(y | a, x)
Unlabelled point: y summed out exactly over its K values in one (K, B) pass,
    ELBO(x) = sum_y q(y|a,x) [log p(x|y,z_y) + log p(a|x,y,z_y) - KL_z(y)] - KL(q(y|a,x) || p(y)) - log q(a|x)
The KL of z takes the KL schedule (beta, warm-up, capacity) as in the other models.

SDGM moves a into the generative model, a stochastic layer that also feeds the decoder:
    p:  y ~ Cat(1/K),  z ~ N(0, I_D),  a ~ p(a | y, z) = N(m([onehot(y), z])),  x ~ p(x | dec([z, onehot(y), a]))
with q and the bounds as above, log p(x | a, y, z) and log p(a | y, z) in place of ADGM's two terms.
It is ADGM with two switches flipped (``a_reads_x``, ``a_feeds_x``); nothing else is rewritten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.batch import Batch
from ..errors import UserError
from ..nn import ArchConfig, make_decoder, make_encoder, mlp
from ..objectives import make_likelihood
from ..objectives.kl import (categorical_kl_uniform, gaussian_kl_standard, gaussian_log_prob, reparameterise,
                             standard_normal_log_prob)
from ..objectives.likelihoods import log_prob_leading, n_params
from ..objectives.schedules import KLSchedule
from ..options import opt, redefault
from .base import Inference, LossOutput, ModelConfig, ModelSpec
from .pspec import LatentClassModel, check_latent_class, gaussian_head


@dataclass
class ADGMConfig(ModelConfig):
    """M2's defaults (one 500-unit layer per network, z = 50, alpha 50, beta 1, no dropout) and a = 50."""

    arch_defaults = {"hidden": [500], "latent_dim": 50, "dropout": 0.0}

    model: str = redefault(ModelConfig, "model", "adgm")
    alpha: float = redefault(ModelConfig, "alpha", 50.0)
    beta: float = redefault(ModelConfig, "beta", 1.0)
    aux_dim: int = opt(50, "adgm/sdgm: size of the auxiliary variable a")

    def validate(self) -> None:
        super().validate()
        if self.aux_dim < 1:
            raise UserError(f"--aux-dim {self.aux_dim} must be >= 1, e.g. 50")


@dataclass
class SDGMConfig(ADGMConfig):
    """ADGM's defaults."""

    model: str = redefault(ModelConfig, "model", "sdgm")


class ADGM(LatentClassModel):
    a_reads_x = True  # p(a | x, y, z); SDGM: p(a | y, z)
    a_feeds_x = False  # p(x | y, z); SDGM: p(x | a, y, z)

    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: ADGMConfig):
        super().__init__()
        check_latent_class(spec, cfg.model)
        if spec.n_targets:
            raise UserError(f"model {cfg.model} predicts classes only; drop the continuous targets or use "
                            "--model pspec")
        self.spec, self.heads = spec, spec.heads
        self.y_name = spec.heads[0].name
        self.K, self.D, self.A = spec.heads[0].size, arch.latent_dim, cfg.aux_dim
        self.alpha = cfg.head_weight(self.y_name)
        self.enc = make_encoder(arch, spec.data_shape)  # q's reading of x
        self.enc_p = make_encoder(arch, spec.data_shape) if self.a_reads_x else None  # p(a | x, y, z)'s reading
        if self.enc.per_step:
            raise UserError(f"model {cfg.model} has one class y per sequence; use --sequence-latent pooled")
        H, K, D, A = self.enc.out_features, self.K, self.D, self.A
        self.to_a = nn.Linear(H, 2 * A)  # q(a|x)
        self.to_y = nn.Sequential(mlp(H + A, [H]), nn.Linear(H, K))  # q(y|a,x)
        self.to_z = nn.Sequential(mlp(H + A + K, [H]), nn.Linear(H, 2 * D))  # q(z|a,y,x)
        p_in = (H if self.a_reads_x else 0) + K + D
        self.p_a = nn.Sequential(mlp(p_in, [H]), nn.Linear(H, 2 * A))  # p(a|x,y,z) or p(a|y,z)
        self.decoder = make_decoder(arch, D + K + (A if self.a_feeds_x else 0), spec.data_shape,
                                    n_params(spec.likelihood))
        self.likelihood = make_likelihood(spec.likelihood, spec.feature_shape)
        self.kl_schedule = KLSchedule.from_config(cfg)
        self.use_consistency(cfg)
        self.use_teacher(cfg)
        self.use_class_control(cfg)

    def feature_encoder(self) -> nn.Module:
        return self.enc

    # -- the networks, on any leading dims (L, B, ...) ------------------------------------
    def q_a(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian_head(self.to_a, h)  # (..., A) each

    def q_y_logits(self, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Logits of q(y | a, x): h (B, H), a (..., B, A) -> (..., B, K)."""
        inp = torch.cat([h.expand(*a.shape[:-1], -1), a], -1)
        return self.to_y(inp.flatten(0, -2)).view(*a.shape[:-1], self.K)

    def q_z(self, h: torch.Tensor, a: torch.Tensor, y1h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | a, y, x): h (B, H), a and y1h broadcast to (..., B, .) -> (..., B, D) each."""
        lead = torch.broadcast_shapes(a.shape[:-1], y1h.shape[:-1])
        inp = torch.cat([h.expand(*lead, -1), a.expand(*lead, -1), y1h.expand(*lead, -1)], -1)  # (..., B, H + A + K)
        return gaussian_head(self.to_z, inp)

    def read_p(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """p(a | x, y, z)'s reading of x, (B, H); None where p(a) does not read x (SDGM)."""
        return self.enc_p(x, mask) if self.a_reads_x else None

    def p_a_params(self, hp: torch.Tensor | None, y1h: torch.Tensor,
                   z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of p(a | x, y, z), or of p(a | y, z) with hp None: y1h and z (..., B, .) -> (..., B, A)."""
        lead = z.shape[:-1]
        x_part = [] if hp is None else [hp.expand(*lead, -1)]
        return gaussian_head(self.p_a, torch.cat(x_part + [y1h.expand(*lead, -1), z], -1))

    def log_pa(self, hp: torch.Tensor | None, y1h: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """log p(a | .): a broadcast to z's leading dims -> (..., B)."""
        return gaussian_log_prob(a, *self.p_a_params(hp, y1h, z))

    def generative(self, z: torch.Tensor, y1h: torch.Tensor, a: torch.Tensor | None,
                   steps: int | None = None) -> torch.Tensor:
        """Likelihood parameters of p(x | y, z) (ADGM; a unused) or p(x | a, y, z) (SDGM):
        z (..., B, D), y1h (..., B, K), a (..., B, A) -> (..., B, [P,] *shape)."""
        lead = z.shape[:-1]
        parts = [z, y1h.expand(*lead, -1)] + ([a.expand(*lead, -1)] if self.a_feeds_x else [])
        code = torch.cat(parts, -1)  # (..., B, D + K [+ A])
        out = self.decoder(code.flatten(0, -2), steps)
        return out.view(*code.shape[:-1], *out.shape[1:])

    def enumerated(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> dict:
        """Every class at once for one a ~ q(a|x): the (K, B) tables log p(x|y,z_y), log p(a|x,y,z_y)
        and KL_z(y), with log q(a|x) (B,) and the logits of q(y|a,x) (B, K); ``sample=False``
        puts a and z at their means."""
        B = x.shape[0]
        h, hp = self.enc(x, mask), self.read_p(x, mask)  # (B, H) each
        mu_a, logvar_a = self.q_a(h)  # (B, A) each
        a = reparameterise(mu_a, logvar_a) if sample else mu_a
        eye = torch.eye(self.K, device=x.device, dtype=h.dtype)[:, None, :].expand(self.K, B, self.K)  # (K, B, K)
        mu_z, logvar_z = self.q_z(h, a, eye)  # (K, B, D) each
        z = reparameterise(mu_z, logvar_z) if sample else mu_z
        params = self.generative(z, eye, a, self.spec.steps(x))  # (K, B, [P,] *shape)
        return {"log_px": log_prob_leading(self.likelihood, x, params, mask),  # (K, B)
                "log_pa": self.log_pa(hp, eye, z, a),  # (K, B)
                "kl_z": gaussian_kl_standard(mu_z, logvar_z),  # (K, B)
                "log_qa": gaussian_log_prob(a, mu_a, logvar_a),  # (B,)
                "logits": self.q_y_logits(h, a)}  # (B, K)

    # -- the contract -------------------------------------------------------------------
    def inference(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> Inference:
        """q for a batch: a, then q(y|a,x), then z coded given the most probable class."""
        h = self.enc(x, mask)
        mu_a, logvar_a = self.q_a(h)
        a = reparameterise(mu_a, logvar_a) if sample else mu_a
        logits = self.q_y_logits(h, a)
        mu, logvar = self.q_z(h, a, F.one_hot(logits.argmax(-1), self.K).to(h.dtype))
        z = reparameterise(mu, logvar) if sample else mu
        return Inference(h=h, mu=mu, logvar=logvar, z=z, logits={self.y_name: logits})

    def forward(self, batch: Batch) -> LossOutput:
        x, mask = batch.x, batch.mask
        y = batch.labels[:, 0]  # (B,) -1 = unlabelled
        labelled = y >= 0
        t = self.enumerated(x, mask)
        logits = t["logits"]
        per_class = t["log_px"] + t["log_pa"] - self.kl_schedule.penalty(t["kl_z"])  # (K, B)
        q = torch.softmax(logits, -1).T  # (K, B)
        y1h = F.one_hot(y.clamp(min=0), self.K).to(q.dtype).T  # (K, B)
        neg_u = -(q * per_class).sum(0) + categorical_kl_uniform(logits) + t["log_qa"]
        neg_l = -(y1h * per_class).sum(0) + math.log(self.K) + t["log_qa"]
        n_lab = labelled.sum()
        ce = -(torch.log_softmax(logits, -1) * y1h.T).sum(-1)[labelled].sum() / n_lab.clamp(min=1)
        total = torch.where(labelled, neg_l, neg_u).mean() + self.alpha * ce
        w = torch.where(labelled[None], y1h, q)  # (K, B) the class weights each point's terms take
        ce_key = self.spec.key("ce", self.y_name)
        terms = {"recon": -(w * t["log_px"]).sum(0).mean().detach(), "kl": (w * t["kl_z"]).sum(0).mean().detach(),
                 "aux": (t["log_qa"] - (w * t["log_pa"]).sum(0)).mean().detach(), ce_key: ce.detach()}
        total = self.add_consistency(total, terms, x, mask, {self.y_name: logits}, batch.labels)
        total = self.add_teacher(total, terms, {self.y_name: logits}, batch, self.alpha)
        total = self.add_class_control(total, terms, len(x))
        return LossOutput(total=total, terms=terms, counts={ce_key: n_lab}, logits={self.y_name: logits})

    # -- uses of a trained model ----------------------------------------------------------
    def elbo_terms(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                   sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The unlabelled ELBO as (E_q log p(x|y,z), everything else it subtracts): (B,) each."""
        t = self.enumerated(x, mask, sample)
        q = torch.softmax(t["logits"], -1).T  # (K, B)
        rest = (q * (t["kl_z"] - t["log_pa"])).sum(0) + categorical_kl_uniform(t["logits"]) + t["log_qa"]
        return (q * t["log_px"]).sum(0), rest

    def log_weights(self, x: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x, y, z, a) - log q(a, y, z | x) for k joint samples from q: (k, B)."""
        h, hp = self.enc(x, mask), self.read_p(x, mask)
        mu_a, logvar_a = self.q_a(h.expand(k, *h.shape))  # (k, B, A) each
        a = reparameterise(mu_a, logvar_a)
        logits = self.q_y_logits(h, a)  # (k, B, K)
        y1h = F.one_hot(torch.distributions.Categorical(logits=logits).sample(), self.K).to(h.dtype)  # (k, B, K)
        mu_z, logvar_z = self.q_z(h, a, y1h)
        z = reparameterise(mu_z, logvar_z)  # (k, B, D)
        log_px = log_prob_leading(self.likelihood, x, self.generative(z, y1h, a, self.spec.steps(x)), mask)
        log_p = log_px + self.log_pa(hp, y1h, z, a) + standard_normal_log_prob(z) - math.log(self.K)
        log_q = (gaussian_log_prob(a, mu_a, logvar_a) + (torch.log_softmax(logits, -1) * y1h).sum(-1)
                 + gaussian_log_prob(z, mu_z, logvar_z))
        return log_p - log_q

    def class_params(self, z: torch.Tensor, y1h: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters of p(x | z, y): (B, [P,] *shape); SDGM's a at the mean of p(a | y, z)."""
        a = self.p_a_params(None, y1h, z)[0] if self.a_feeds_x else None  # (B, A), broadcast by generative
        return self.generative(z[None], y1h[None], a)[0]

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x | [a,] most probable y, z = mean of q(z|a,y,x)), a at the mean of q(a|x): (B, *shape)."""
        inf = self.inference(x, mask, sample=False)
        y1h = F.one_hot(inf.logits[self.y_name].argmax(-1), self.K).to(inf.mu.dtype)
        a = self.q_a(inf.h)[0]  # (B, A), the mean inference used
        return self.likelihood.mean(self.generative(inf.mu[None], y1h[None], a, self.spec.steps(x))[0])


class SDGM(ADGM):
    """The skip deep generative model: a ~ p(a | y, z) feeds the decoder (see the module's docstring)."""

    a_reads_x = False
    a_feeds_x = True


__all__ = ["ADGM", "ADGMConfig", "SDGM", "SDGMConfig"]
