"""Partially-specified semi-supervised VAE (Siddharth et al. 2017); Kingma's M2 is its simplest case.

Generative model p (declared variables y and r, unstructured z):
    y ~ Cat(1/K);  r ~ N(0, I_T) (only when the data has T continuous targets);  z ~ N(0, I_D)
    x ~ p(x | dec([z, onehot(y), r]))
Inference model q, by ``structure``:
    "z|x,y":  q(y|x) = Cat(softmax(f(enc_y(x))));  q(z|x,y) = N(g([enc_z(x), y]))     (M2's graph)
    "y|z,x":  q(z|x) = N(g(enc_z(x)));  q(y|z,x) = Cat(softmax(f([enc_y(x), z])))
    q(r|x) = N(m(enc_y(x)), diag s(enc_y(x)))                                     (both)
The class y is the data's single label column (its head feeds the decoder by construction).
Labelled point (y observed; r observed where given). S samples z_s from the proposal,
q(z|x,y) or q(z|x), give the importance-sampled estimate in its log-sum-exp form:
    log p(x, y, r) ~= logsumexp_s log w_s - log S,   w_s = p(x, y, r, z_s) / q(z_s | .)
    objective = that estimate + alpha * log q(y|x) [+ alpha * log q(r|x)]
with q(y|x) = mean_s q(y | z_s, x) under "y|z,x". With S = 1 the estimate is the usual
labelled ELBO; it is then computed with the analytic KL and the KL schedule (beta, warm-up,
capacity), which the S > 1 estimate, a bound on log p(x, y, r) itself, does not take.
Unlabelled point: the ELBO with y summed out exactly over its K values in one (K, B) pass
("enumerate"), or y a Gumbel-softmax sample ("relax"), and r ~ q(r|x):
    E_q[log p(x | y, z, r)] - KL(q(z|.) || p(z)) - KL(q(y|.) || p(y)) - KL(q(r|x) || p(r))
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
from ..objectives.likelihoods import log_prob_leading, n_params
from ..objectives.kl import (categorical_kl_uniform, gaussian_kl_standard, gaussian_log_prob, reparameterise,
                             standard_normal_log_prob)
from ..objectives.schedules import KLSchedule
from ..options import opt, redefault
from .base import BaseModel, Inference, LossOutput, ModelConfig, ModelSpec

STRUCTURES = ("z|x,y", "y|z,x")


@dataclass
class LatentClassConfig(ModelConfig):
    """Options of the models whose class is a latent variable y (m2, pspec, m1m2). Their
    defaults follow the literature: one 500-unit layer per network and z = 50 (Pyro's SS-VAE
    tutorial), beta 1, alpha 50, no dropout."""

    arch_defaults = {"hidden": [500], "latent_dim": 50, "dropout": 0.0}

    alpha: float = redefault(ModelConfig, "alpha", 50.0)
    beta: float = redefault(ModelConfig, "beta", 1.0)
    samples: int = opt(1, "m2/pspec: importance samples S of z per labelled point (1 = plain ELBO)")
    discrete: str = opt("enumerate", "m2/pspec, unlabelled points: enumerate the K classes exactly, or relax "
                                     "(Gumbel-softmax)")
    temperature: float = opt(0.5, "relax: temperature of the Gumbel-softmax (concrete) sample of y")

    def validate(self) -> None:
        super().validate()
        if self.discrete not in ("enumerate", "relax"):
            raise UserError(f"unknown --discrete {self.discrete!r}; choose enumerate or relax")
        if self.samples < 1 or self.temperature <= 0:
            raise UserError("--samples must be >= 1 and --temperature > 0; raise them")


@dataclass
class PSpecConfig(LatentClassConfig):
    model: str = redefault(ModelConfig, "model", "pspec")
    samples: int = redefault(LatentClassConfig, "samples", 8)
    structure: str = opt("z|x,y", "pspec inference graph: z|x,y (q(y|x) q(z|x,y)) or y|z,x (q(z|x) q(y|z,x))")

    def validate(self) -> None:
        super().validate()
        if self.structure not in STRUCTURES:
            raise UserError(f"unknown --structure {self.structure!r}; choose 'z|x,y' or 'y|z,x'")


def gaussian_head(layer: nn.Module, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of a diagonal Gaussian from ``layer`` (which outputs 2D values) on inputs with
    any leading dims, logvar clamped to [-20, 10]: (..., F) -> (..., D) each."""
    out = layer(inp.flatten(0, -2))
    mu, logvar = out.view(*inp.shape[:-1], out.shape[-1]).chunk(2, -1)
    return mu, logvar.clamp(-20.0, 10.0)


def check_latent_class(spec: ModelSpec, model: str) -> None:
    """The latent class y is the data's one label column, with at least 2 classes, fed to the decoder."""
    if len(spec.heads) != 1 or spec.heads[0].size < 2:
        raise UserError(f"model {model} needs one label column with at least 2 classes and "
                        f"{spec.describe_classes()}; use --model semivae (--mode unsupervised without labels)")
    if not spec.heads[0].feeds_decoder:
        raise UserError(f"model {model}'s class is a latent variable of the decoder; drop --decoder-heads")


class LatentClassModel(BaseModel):
    """What the models with a latent class y share (m2, pspec, adgm): z ~ N(0, I_D) and a decoder
    that reads z with onehot(y). A subclass sets ``D``, ``K``, ``y_name`` and ``likelihood`` and
    says how to decode (``class_params``)."""

    has_decoder = True
    has_importance_weights = True
    D: int
    K: int
    y_name: str

    def class_params(self, z: torch.Tensor, y1h: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters of p(x | z, y): z (B, D), y1h (B, K) -> (B, [P,] *shape)."""
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        return self.D

    @property
    def prior_shape(self) -> tuple[int, ...]:
        return (self.D,)

    def decode(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Mean of p(x | z, y): (B, *shape); y is drawn uniformly when not given."""
        y = None if classes is None else classes.get(self.y_name)
        if y is None:
            y = torch.randint(0, self.K, (len(z),), device=z.device)
        return self.likelihood.mean(self.class_params(z, F.one_hot(y, self.K).to(z.dtype)))

    generate = decode


class PartiallySpecifiedVAE(LatentClassModel):

    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: LatentClassConfig, structure: str | None = None):
        super().__init__()
        check_latent_class(spec, cfg.model)
        self.spec, self.structure = spec, cfg.structure if structure is None else structure
        self.heads, self.n_targets = spec.heads, spec.n_targets
        self.y_name = spec.heads[0].name
        self.K, self.D, self.T = spec.heads[0].size, arch.latent_dim, spec.n_targets
        self.alpha, self.samples = cfg.head_weight(self.y_name), cfg.samples
        self.discrete, self.temperature = cfg.discrete, cfg.temperature
        self.enc_y = make_encoder(arch, spec.data_shape)
        self.enc_z = make_encoder(arch, spec.data_shape)
        self.use_consistency(cfg)
        self.use_teacher(cfg)
        if self.enc_y.per_step:
            raise UserError(f"model {cfg.model} has one class y per sequence; use --sequence-latent pooled "
                            "(per-step latents are offered by --model semivae)")
        H = self.enc_y.out_features
        if self.y_needs_z:  # q(y|z,x): one hidden layer over [enc_y(x), z]
            self.to_y = nn.Sequential(mlp(H + self.D, [H]), nn.Linear(H, self.K))
            self.to_z = nn.Linear(H, 2 * self.D)
        else:  # q(y|x), q(z|x,y): y joins enc_z(x) in one hidden layer
            self.to_y = nn.Linear(H, self.K)
            self.to_z = nn.Sequential(mlp(H + self.K, [H]), nn.Linear(H, 2 * self.D))
        if self.T:
            self.to_r = nn.Linear(H, 2 * self.T)
        self.decoder = make_decoder(arch, self.D + self.K + self.T, spec.data_shape, n_params(spec.likelihood))
        self.likelihood = make_likelihood(spec.likelihood, spec.feature_shape)
        self.kl_schedule = KLSchedule.from_config(cfg)
        self.use_class_control(cfg)

    def feature_encoder(self) -> nn.Module:
        return self.enc_y  # the encoder q(y|.) reads

    @property
    def y_needs_z(self) -> bool:
        return self.structure == "y|z,x"

    # -- the networks, on any leading dims (L, B, ...) ------------------------------------
    def q_z(self, hz: torch.Tensor, y1h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x[,y]): (..., D) each; ``y1h`` (..., K) under "z|x,y"."""
        inp = hz if self.y_needs_z else torch.cat([hz.expand(*y1h.shape[:-1], -1), y1h], -1)
        return gaussian_head(self.to_z, inp)

    def q_y_logits(self, hy: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """Logits of q(y|x) or q(y|z,x): (..., K)."""
        if not self.y_needs_z:
            return self.to_y(hy)
        inp = torch.cat([hy.expand(*z.shape[:-1], -1), z], -1)
        return self.to_y(inp.flatten(0, -2)).view(*z.shape[:-1], self.K)

    def generative(self, z: torch.Tensor, y1h: torch.Tensor, r: torch.Tensor | None = None,
                   steps: int | None = None) -> torch.Tensor:
        """Likelihood parameters of p(x | y, z, r): z (..., B, D), y1h (..., B, K) -> (..., B, [P,] *shape)."""
        parts = [z, y1h.expand(*z.shape[:-1], -1)] + ([r.expand(*z.shape[:-1], -1)] if self.T else [])
        code = torch.cat(parts, -1)  # (..., B, D + K + T)
        out = self.decoder(code.flatten(0, -2), steps)  # (N, [P,] *shape)
        return out.view(*code.shape[:-1], *out.shape[1:])

    def log_px(self, x: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | .) for parameters with leading dims: (L, B, [P,] *shape) -> (L, B)."""
        return log_prob_leading(self.likelihood, x, params, mask)

    def regularizer(self, kl_z: torch.Tensor) -> torch.Tensor:
        """The scheduled penalty on KL(q(z|.) || p(z)); the hook a variant overrides."""
        return self.kl_schedule.penalty(kl_z)

    def _r(self, hy: torch.Tensor, t: torch.Tensor | None, sample: bool = True):
        """r to decode with (observed where given, else sampled), its penalty and the
        regression NLL -log q(r_obs|x): ((B, T) | None, (B,), (B,))."""
        zero = hy.new_zeros(hy.shape[0])
        if not self.T:
            return None, zero, zero
        mu, logvar = self.to_r(hy).chunk(2, -1)  # (B, T) each
        logvar = logvar.clamp(-20.0, 10.0)
        obs = torch.zeros_like(mu, dtype=torch.bool) if t is None else ~torch.isnan(t)
        t0 = mu if t is None else torch.nan_to_num(t)
        r = torch.where(obs, t0, reparameterise(mu, logvar) if sample else mu)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, T) per dimension
        log_prior = -0.5 * (t0.pow(2) + math.log(2 * math.pi))
        log_q = -0.5 * ((t0 - mu).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))
        penalty = torch.where(obs, -log_prior, kl).sum(-1)
        return r, penalty, torch.where(obs, -log_q, 0.0).sum(-1)

    # -- the contract -------------------------------------------------------------------
    def inference(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> Inference:
        """q for a batch; under "z|x,y" z is coded given the most probable class."""
        hy, hz = self.enc_y(x, mask), self.enc_z(x, mask)
        if self.y_needs_z:
            mu, logvar = self.q_z(hz, None)
            z = reparameterise(mu, logvar) if sample else mu
            logits = self.q_y_logits(hy, z)
        else:
            logits = self.q_y_logits(hy, None)
            mu, logvar = self.q_z(hz, F.one_hot(logits.argmax(-1), self.K).to(hz.dtype))
            z = reparameterise(mu, logvar) if sample else mu
        return Inference(h=hy, mu=mu, logvar=logvar, z=z, logits={self.y_name: logits})

    def enumerated(self, x, hy, hz, r, eps: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """Every class at once: (log p(x | y_k, z_k, r), KL_z, logits), shapes (K, B), (K, B)
        or (B,), (B, K). ``eps`` (K, B, D) fixes the noise of the z samples."""
        B = x.shape[0]
        eye = torch.eye(self.K, device=x.device, dtype=hz.dtype)[:, None, :].expand(self.K, B, self.K)  # (K, B, K)
        if self.y_needs_z:  # one z ~ q(z|x), shared by every class
            mu, logvar = self.q_z(hz, None)  # (B, D)
            z = mu + torch.exp(0.5 * logvar) * (torch.randn_like(mu) if eps is None else eps[0])
            logits = self.q_y_logits(hy, z)  # (B, K)
            return (self.log_px(x, self.generative(z.expand(self.K, B, -1), eye, r, self.spec.steps(x)), mask),
                    gaussian_kl_standard(mu, logvar), logits)
        mu, logvar = self.q_z(hz, eye)  # (K, B, D)
        z = mu + torch.exp(0.5 * logvar) * (torch.randn_like(mu) if eps is None else eps)
        log_px = self.log_px(x, self.generative(z, eye, r, self.spec.steps(x)), mask)
        return log_px, gaussian_kl_standard(mu, logvar), self.q_y_logits(hy, None)

    def _unlabelled(self, x, hy, hz, r, discrete: str, mask: torch.Tensor | None = None,
                    eps: torch.Tensor | None = None):
        """Per point: (negative ELBO with the KL schedule, E_q log p(x|.), KL_z + KL_y), each (B,),
        the (K, B) enumeration table (None when relaxed) for reuse by labelled points, and the
        logits of q(y|.) (B, K)."""
        if discrete == "enumerate":
            table = self.enumerated(x, hy, hz, r, eps, mask)
            rec, kl_z, logits = table
            q = torch.softmax(logits, -1).T  # (K, B)
            kl_z_mean = kl_z if kl_z.dim() == 1 else (q * kl_z).sum(0)
            reg = self.regularizer(kl_z) if kl_z.dim() == 1 else (q * self.regularizer(kl_z)).sum(0)
            log_px = (q * rec).sum(0)
        else:  # relax: y a Gumbel-softmax sample
            table = None
            if self.y_needs_z:
                mu, logvar = self.q_z(hz, None)
                z = reparameterise(mu, logvar)
                logits = self.q_y_logits(hy, z)
                y_soft = F.gumbel_softmax(logits, tau=self.temperature)
            else:
                logits = self.q_y_logits(hy, None)
                y_soft = F.gumbel_softmax(logits, tau=self.temperature)
                mu, logvar = self.q_z(hz, y_soft)
                z = reparameterise(mu, logvar)
            log_px = self.log_px(x, self.generative(z[None], y_soft[None], r, self.spec.steps(x)), mask)[0]
            kl_z_mean = gaussian_kl_standard(mu, logvar)
            reg = self.regularizer(kl_z_mean)
        kl_y = categorical_kl_uniform(logits)
        return -log_px + reg + kl_y, log_px, kl_z_mean + kl_y, table, logits

    def importance_estimate(self, x, hy, hz, y1h, r, n: int, mask: torch.Tensor | None = None):
        """S = n samples for labelled points: (log p-hat(x, y, r) without log p(r), log q(y|x)), (B,) each."""
        if self.y_needs_z:
            mu, logvar = self.q_z(hz, None)  # proposal q(z|x)
            mu, logvar = mu.expand(n, *mu.shape), logvar.expand(n, *logvar.shape)
        else:
            mu, logvar = self.q_z(hz, y1h.expand(n, *y1h.shape))  # proposal q(z|x,y): (S, B, D)
        z = reparameterise(mu, logvar)  # (S, B, D)
        log_w = (self.log_px(x, self.generative(z, y1h, r, self.spec.steps(x)), mask) + standard_normal_log_prob(z)
                 - gaussian_log_prob(z, mu, logvar) - math.log(self.K))  # (S, B)
        log_joint = torch.logsumexp(log_w, 0) - math.log(n)
        if self.y_needs_z:  # q(y|x) = mean_s q(y|z_s, x)
            log_qy = torch.logsumexp((torch.log_softmax(self.q_y_logits(hy, z), -1) * y1h).sum(-1), 0) - math.log(n)
        else:
            log_qy = (torch.log_softmax(self.q_y_logits(hy, None), -1) * y1h).sum(-1)
        return log_joint, log_qy

    def forward(self, batch: Batch) -> LossOutput:
        x, mask, t = batch.x, batch.mask, batch.targets
        y = batch.labels[:, 0]  # (B,) -1 = unlabelled
        labelled = y >= 0
        hy, hz = self.enc_y(x, mask), self.enc_z(x, mask)  # (B, H) each
        r, r_penalty, r_nll = self._r(hy, t)
        y1h = F.one_hot(y.clamp(min=0), self.K).to(hz.dtype)  # (B, K)
        neg_u, log_px_u, kl_u, table, logits_u = self._unlabelled(x, hy, hz, r, self.discrete, mask)
        if self.samples == 1 and table is not None:  # labelled ELBO read off the enumeration table
            rec, kl_z, logits = table
            kl_l = kl_z if kl_z.dim() == 1 else (kl_z * y1h.T).sum(0)
            log_px_l = (rec * y1h.T).sum(0)
            neg_l = -log_px_l + self.regularizer(kl_l) + math.log(self.K)
            log_qy = (torch.log_softmax(logits, -1) * y1h).sum(-1)
        else:
            log_joint, log_qy = self.importance_estimate(x, hy, hz, y1h, r, self.samples, mask)
            neg_l, log_px_l, kl_l = -log_joint, log_joint, torch.zeros_like(log_joint)
        n_lab = labelled.sum()
        lab = labelled.to(hz.dtype)
        ce = -(log_qy * lab).sum() / n_lab.clamp(min=1)
        reg_nll = (r_nll * lab).sum() / n_lab.clamp(min=1)
        neg = torch.where(labelled, neg_l, neg_u) + r_penalty  # (B,)
        total = neg.mean() + self.alpha * (ce + reg_nll)
        recon = -torch.where(labelled, log_px_l, log_px_u).mean()
        kl = torch.where(labelled, kl_l, kl_u).mean()
        ce_key = self.spec.key("ce", self.y_name)
        terms = {"recon": recon.detach(), "kl": kl.detach(), ce_key: ce.detach()}
        counts = {ce_key: n_lab}
        if self.T:
            terms["target_nll"], counts["target_nll"] = reg_nll.detach(), n_lab
        total = self.add_consistency(total, terms, x, mask, {self.y_name: logits_u}, batch.labels)
        total = self.add_teacher(total, terms, {self.y_name: logits_u}, batch, self.alpha)
        total = self.add_class_control(total, terms, len(x))
        return LossOutput(total=total, terms=terms, counts=counts, logits={self.y_name: logits_u})

    # -- uses of a trained model ----------------------------------------------------------
    def predict_targets(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of q(r|x), in standardised units: (B, T)."""
        return self.to_r(self.enc_y(x, mask)).chunk(2, -1)[0]

    def elbo_terms(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                   sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The unlabelled ELBO with y enumerated, as (E_q log p(x|.), KL of z, y and r): (B,) each
        (``sample=False``: z and r at their means)."""
        hy, hz = self.enc_y(x, mask), self.enc_z(x, mask)
        r, r_penalty, _ = self._r(hy, None, sample)
        eps = None if sample else hz.new_zeros(self.K, x.shape[0], self.D)  # (K, B, D): z = mean
        _, log_px, kl, _, _ = self._unlabelled(x, hy, hz, r, "enumerate", mask, eps)
        return log_px, kl + r_penalty

    def log_weights(self, x: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x, y, z, r) - log q(y, z, r | x) for k joint samples from q: (k, B)."""
        hy, hz = self.enc_y(x, mask), self.enc_z(x, mask)
        hy_k, hz_k = hy.expand(k, *hy.shape), hz.expand(k, *hz.shape)
        if self.y_needs_z:
            mu, logvar = self.q_z(hz_k, None)
            z = reparameterise(mu, logvar)
            logits = self.q_y_logits(hy, z)
        else:
            logits = self.q_y_logits(hy, None).expand(k, len(x), self.K)
        y1h = F.one_hot(torch.distributions.Categorical(logits=logits).sample(), self.K).to(hz.dtype)  # (k, B, K)
        if not self.y_needs_z:
            mu, logvar = self.q_z(hz_k, y1h)
            z = reparameterise(mu, logvar)
        log_w = standard_normal_log_prob(z) - gaussian_log_prob(z, mu, logvar) - math.log(self.K)
        log_w = log_w - (torch.log_softmax(logits, -1) * y1h).sum(-1)
        r = None
        if self.T:
            mu_r, logvar_r = self.to_r(hy_k).chunk(2, -1)
            r = reparameterise(mu_r, logvar_r.clamp(-20.0, 10.0))
            log_w = log_w + standard_normal_log_prob(r) - gaussian_log_prob(r, mu_r, logvar_r.clamp(-20.0, 10.0))
        return log_w + self.log_px(x, self.generative(z, y1h, r, self.spec.steps(x)), mask)

    def class_params(self, z: torch.Tensor, y1h: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters of p(x | z, y, r = 0): (B, [P,] *shape)."""
        r = z.new_zeros(len(z), self.T) if self.T else None
        return self.generative(z[None], y1h[None], r)[0]

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x | most probable y, z = mean, r = mean): (B, *shape)."""
        inf = self.inference(x, mask, sample=False)
        y1h = F.one_hot(inf.logits[self.y_name].argmax(-1), self.K).to(inf.mu.dtype)
        r = self.predict_targets(x, mask) if self.T else None
        return self.likelihood.mean(self.generative(inf.mu[None], y1h[None], r, self.spec.steps(x))[0])
