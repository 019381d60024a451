"""The semi-supervised VAE of Berkhahn et al. (2019) and its two siblings, by mode.

Inference model q (one shared encoder):
    h = enc(x);  q(z | x) = N(mu(h), diag exp(logvar(h)));  pi_f(x) = softmax(W_f h) per head f
Generative model p:
    z ~ N(0, I);  x ~ p(x | dec([z, pi_f(x) for the heads that feed the decoder]))
Objective on a batch (minimised):
    mean_i [ -log p(x_i | z_i, pi_i) + beta * KL(q(z | x_i) || N(0, I)) ]
        + sum_f alpha_f * mean_{j labelled for f} CE(pi_f(x_j), y_jf)

With one label column there is one head, the paper's pi, fed to the decoder. Berkhahn et
al.'s disentanglement model (Table 16) has one head per labelled factor, none fed to the
decoder (``--decoder-heads none``): each is a loss on z's encoder only.

For sequences the recurrent encoder gives either one z and pi per sequence (pooled over its
valid steps) or, with ``--sequence-latent per-step`` (the paper's Table 15), a z_t and pi_t at
every step: the KL is then summed over the valid steps, each step's pi_t meets the
sequence's label, and the class probabilities are the mean of pi_t over the valid steps.

Modes, one code path: ``semi`` (all of it), ``unsupervised`` (no heads; decoder sees z only:
a VAE / beta-VAE) and ``supervised`` (encoder + heads only, cross-entropy alone). The KL
term goes through a schedule (``--kl-schedule``: constant beta, warm-up, capacity); a
variant changes it by overriding :meth:`SemiVAE.regularizer`, not by copying the loss.
In ``semi`` mode p(x | z, pi) is conditioned on pi(x), so ``log_weights`` bound log p(x | pi(x)).
Every mode reports the terms ``recon``, ``kl`` and ``ce`` (0 where the mode has no such part),
so the learning curves of the three siblings share their columns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..data.batch import Batch
from ..errors import UserError
from ..nn import ArchConfig, make_decoder, make_encoder
from ..objectives import gaussian_kl_standard, make_likelihood, reparameterise
from ..objectives.kl import gaussian_log_prob, standard_normal_log_prob
from ..objectives.likelihoods import n_params
from ..objectives.schedules import KLSchedule
from ..objectives.steps import sum_steps
from ..options import opt, redefault
from .base import BaseModel, Head, Inference, LossOutput, ModelConfig, ModelSpec
from .heads import ClassHeads

# --consistency's default in semi mode, by data kind (docs/benchmarks.md section 11: images from session 19,
# series from session 44); tables keep it off
SEMI_CONSISTENCY = {"image": 10.0, "sequence": 10.0}


@dataclass(frozen=True)
class Mode:
    classifier: bool  # has the heads and their cross-entropy terms
    decoder: bool  # has q(z|x), the decoder and the ELBO


MODES: dict[str, Mode] = {
    "semi": Mode(classifier=True, decoder=True),
    "unsupervised": Mode(classifier=False, decoder=True),
    "supervised": Mode(classifier=True, decoder=False),
}


@dataclass
class SemiVAEConfig(ModelConfig):
    speed_preset = "paper"

    model: str = redefault(ModelConfig, "model", "semivae")
    mode: str = opt("semi", "semivae: semi (ELBO + alpha*CE), unsupervised (plain VAE, no pi) or supervised "
                            "(encoder + pi, CE only)")
    head_input: str = opt("encoder", "semivae: what the class heads read, the top encoder layer (the paper's) or z "
                                     "(a sample of q(z|x) in training, its mean after)")
    decoder_class: str = opt("soft", "semivae: what the decoder gets from pi, soft (pi itself, the paper's), detached "
                                     "(pi with no gradient back: reconstruction cannot pull pi toward a class) or hard "
                                     "(a one-hot class: the label where known, else a straight-through sample of pi) "
                                     "or labels (the label, one-hot, where known, else pi: eq. 4's p(x | y, z))")

    def run_name(self) -> str:
        return self.mode

    def validate(self) -> None:
        super().validate()
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; choose one of {sorted(MODES)}")
        if self.decoder_class not in ("soft", "detached", "hard", "labels"):
            raise UserError(f"unknown --decoder-class {self.decoder_class!r}; choose soft, detached, hard or labels")
        if self.head_input not in ("encoder", "z"):
            raise UserError(f"unknown --head-input {self.head_input!r}; choose encoder or z")
        if self.head_input == "z" and not MODES[self.mode].decoder:
            raise UserError("--head-input z needs a latent z; --mode supervised has none, use --head-input encoder")


class SemiVAE(BaseModel):
    @classmethod
    def feedback_config(cls, cfg: SemiVAEConfig) -> SemiVAEConfig:
        return replace(cfg, mode="semi")  # the marked points are labels, even for a plain VAE

    def unused_options(self) -> dict[str, str]:
        if not self.mode.classifier:
            return dict.fromkeys(("alpha", "head_alpha"), "--mode unsupervised has no class layer to weigh")
        if not self.mode.decoder:
            return dict.fromkeys(("beta", "kl_schedule", "warmup_epochs", "gamma", "capacity_max", "capacity_epochs",
                                  "likelihood"), "--mode supervised has no latent space or decoder")
        return {}

    def __init__(self, spec: ModelSpec, arch: ArchConfig, cfg: SemiVAEConfig):
        super().__init__()
        self.spec, self.mode = spec, MODES[cfg.mode]
        if self.mode.classifier:
            if not spec.heads or any(h.size < 2 for h in spec.heads):
                raise UserError(f"mode {cfg.mode} needs a label column with at least 2 classes and "
                                f"{spec.describe_classes()}; use --mode unsupervised")
        self.heads = spec.heads if self.mode.classifier else ()
        self.has_decoder = self.has_importance_weights = self.mode.decoder
        self.weights = {h.name: (cfg.head_weight(h.name) if self.mode.decoder else cfg.head_alpha.get(h.name, 1.0))
                        for h in self.heads}
        self.kl_schedule = KLSchedule.from_config(cfg)
        self.encoder = make_encoder(arch, spec.data_shape)
        self.per_step = self.encoder.per_step  # a z and pi at every step of a sequence
        self.head_input = cfg.head_input
        self.decoder_class = cfg.decoder_class
        h = self.encoder.out_features
        if self.mode.classifier:
            self.pi = ClassHeads(arch.latent_dim if self.head_input == "z" else h, self.heads)
            # on by default where it was measured to help: semi-supervised, images (MNIST, 100
            # labels: +3-4 points) and series; off for the supervised sibling (it collapsed on 100 digits)
            self.use_consistency(cfg, SEMI_CONSISTENCY.get(spec.kind, 0.0) if self.mode.decoder else 0.0)
            self.use_teacher(cfg)
        if self.mode.decoder:
            self.mu = nn.Linear(h, arch.latent_dim)
            self.logvar = nn.Linear(h, arch.latent_dim)
            code = arch.latent_dim + (self.pi.decoder_size if self.mode.classifier else 0)
            self.decoder = make_decoder(arch, code, spec.data_shape, n_params(spec.likelihood))
            self.likelihood = make_likelihood(spec.likelihood, spec.feature_shape)
            if self.mode.classifier:
                self.use_class_control(cfg)

    def feature_encoder(self) -> nn.Module:
        return self.encoder

    # -- the contract -------------------------------------------------------------------
    def inference(self, x: torch.Tensor, mask: torch.Tensor | None = None, sample: bool = True) -> Inference:
        h = self.encoder(x, mask)  # (B, [T,] H)
        out = Inference(h=h)
        if self.mode.decoder:
            out.mu, out.logvar = self.mu(h), self.logvar(h).clamp(-20.0, 10.0)  # (B, [T,] D) each
            out.z = reparameterise(out.mu, out.logvar) if sample else out.mu
        if self.mode.classifier:
            out.logits = self.pi(out.z if self.head_input == "z" else h)  # head -> (B, [T,] K_h)
        return out

    def generative(self, z: torch.Tensor, pi: torch.Tensor | None = None, steps: int | None = None) -> torch.Tensor:
        code = z if pi is None else torch.cat([z, pi], dim=-1)  # (B, [T,] D [+ sum K_h])
        return self.decoder(code, steps)  # (B, [P,] *shape) likelihood parameters

    def kl(self, inf: Inference, mask: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per point, summed over the valid steps of per-step z: (B,)."""
        kl = gaussian_kl_standard(inf.mu, inf.logvar)  # (B,) or (B, T)
        return sum_steps(kl, mask) if self.per_step else kl

    def regularizer(self, inf: Inference, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-point penalty on q(z|x): the scheduled KL. The hook a variant overrides. (B,)"""
        return self.kl_schedule.penalty(self.kl(inf, mask))

    def forward(self, batch: Batch) -> LossOutput:
        x, mask = batch.x, batch.mask
        inf = self.inference(x, mask)
        zero = x.new_zeros(())
        recon = kl = total = zero
        if self.mode.decoder:
            nll = -self.likelihood.log_prob(x, self._decode(inf, self.spec.steps(x), batch.labels), mask)  # (B,)
            reg = self.regularizer(inf, mask)  # (B,)
            recon = nll.mean()
            kl = self.kl(inf, mask).mean().detach()
            total = total + recon + reg.mean()
        terms, counts = {"recon": recon.detach(), "kl": kl}, {}
        if self.mode.classifier:
            ce_total, ce_terms, counts = self.pi.cross_entropy(inf.logits, batch.labels, self.spec, self.weights, mask)
            total = total + ce_total
            terms.update(ce_terms)
            total = self.add_consistency(total, terms, x, mask, inf.logits, batch.labels)
            total = self.add_teacher(total, terms, inf.logits, batch, self.weights[self.spec.heads[0].name])
            total = self.add_class_control(total, terms, len(x))  # on only with a decoder
        else:  # no heads: the column stays, at 0
            terms["ce"], counts["ce"] = zero, zero
        return LossOutput(total=total, terms=terms, counts=counts, logits=inf.logits)

    # -- uses of a trained model ----------------------------------------------------------
    def _decode(self, inf: Inference, steps: int | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Likelihood parameters of p(x | z, pi) for the inference ``inf`` (hard classes: the
        ``labels`` where known, a sample of pi in training, its argmax after)."""
        pi = self.pi.decoder_input(inf.logits, self.decoder_class, labels, self.training) if self.mode.classifier else None
        return self.generative(inf.z, pi, steps)

    def elbo_terms(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                   sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample estimate of (log p(x | z, pi), KL) per point: two (B,) tensors
        (``sample=False``: z at the mean of q(z|x), a deterministic point estimate)."""
        inf = self.inference(x, mask, sample)
        return self.likelihood.log_prob(x, self._decode(inf, self.spec.steps(x)), mask), self.kl(inf, mask)

    def log_weights(self, x: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | z, pi) + log p(z) - log q(z|x) for k samples z ~ q(z|x): (k, B)."""
        return self._weighted(x, k, mask)[0]

    def conditional_mean(self, x: torch.Tensor, mask: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """E[x | the entries ``mask`` marks], by self-normalised importance sampling over the k draws
        z_s = mu(x) + sigma(x) eps_s of q(z | x): sum_s w_s mean(p(x | z_s, pi)), w the softmax of
        the log weights, which read the marked entries only (Mattei & Frellsen 2019's MIWAE
        imputation). ``eps`` (k, D) is shared by every row, so a row's value depends on that row
        alone: (B, *shape)."""
        k = len(eps)
        log_w, params = self._weighted(x, k, mask, eps)  # (k, B), (k*B, [P,] *shape)
        means = self.likelihood.mean(params).view(k, len(x), *x.shape[1:])  # (k, B, *shape)
        w = torch.softmax(log_w, 0).view(k, len(x), *([1] * (x.dim() - 1)))  # (k, B, 1...)
        return (w * means).sum(0)

    def _weighted(self, x: torch.Tensor, k: int, mask: torch.Tensor | None,
                  eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log weights (k, B), decoder outputs (k*B, [P,] *shape)) of k draws z ~ q(z|x), fresh
        or ``eps`` (k, D) given."""
        inf = self.inference(x, mask, sample=False)
        mu, logvar = inf.mu.expand(k, *inf.mu.shape), inf.logvar.expand(k, *inf.logvar.shape)  # (k, B, [T,] D)
        if eps is None:
            z = reparameterise(mu, logvar)
        else:
            z = mu + torch.exp(0.5 * logvar) * eps.view(k, *([1] * (mu.dim() - 2)), eps.shape[-1])
        pi = self.pi.decoder_input(inf.logits, self.decoder_class, None, False) if self.mode.classifier else None
        # pi: (B, [T,] sum K_h) | None
        pi = None if pi is None else pi.expand(k, *pi.shape).flatten(0, 1)
        params = self.generative(z.flatten(0, 1), pi, self.spec.steps(x))  # (k*B, [P,] *shape)
        rep_mask = None if mask is None else mask.expand(k, *mask.shape).flatten(0, 1)
        log_px = self.likelihood.log_prob(x.expand(k, *x.shape).flatten(0, 1), params, rep_mask).view(k, len(x))
        log_pq = standard_normal_log_prob(z) - gaussian_log_prob(z, inf.mu, inf.logvar)  # (k, B[, T])
        return log_px + (sum_steps(log_pq, mask) if self.per_step else log_pq), params

    @property
    def latent_dim(self) -> int:
        """Size of the z that ``inference`` returns and ``decode`` / ``generate`` take."""
        return self.mu.out_features

    @property
    def prior_shape(self) -> tuple[int, ...]:
        """One z ~ N(0, I): (D,), or (T, D) for per-step z over the training length."""
        return (self.spec.data_shape[0], self.latent_dim) if self.per_step else (self.latent_dim,)

    def decode(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Mean of p(x | z, pi = onehot(classes)) (uniform pi for heads not given): (B, *shape)."""
        pi = self.pi.one_hot_input(classes, z) if self.mode.classifier else None
        return self.likelihood.mean(self.generative(z, pi))

    @property
    def latent_head(self) -> Head | None:
        """The one head fed to the decoder, for a semi-supervised model with one z per point."""
        fed = [h for h in self.heads if h.feeds_decoder]
        return fed[0] if self.mode.classifier and self.mode.decoder and not self.per_step and len(fed) == 1 else None

    def generate(self, z: torch.Tensor, classes: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Mean of p(x | z, onehot(classes)) for z ~ N(0, I): (B, *shape). With fitted class
        latents and the class given, z is first placed in that class's mixture (latents.py)."""
        return self.decode(self.class_codes(z, classes), classes)

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x | z = mu(x), pi(x)): (B, *shape)."""
        return self.likelihood.mean(self._decode(self.inference(x, mask, sample=False), self.spec.steps(x)))
