"""Anomaly scores: higher = more anomalous. Each is a function (model, x, mask, ...) -> (B,)
in one registry, so ``semivae anomaly`` reports them all and ``semivae score --score NAME``
picks one. The class-layer scores read the model's first head.

recon_prob        -1/L sum_l log p(x | z_l), z_l ~ q(z|x): the paper's negative log
                  reconstruction probability (An & Cho 2015), L = ``samples``
neg_elbo          -(log p(x | z) - KL), averaged over L samples
neg_elbo_point    -(log p(x | z) - KL) with every latent at the mean of q: deterministic, a
                  point's score independent of its batch (unknown-input flags, score_samples)
neg_iwae          -L_k, the importance-weighted bound on log p(x) with k samples
one_minus_max_pi  1 - max_k pi_k(x): the classifier's uncertainty (models with a class layer)
entropy           H(pi(x)) in nats (models with a class layer)
energy            -log sum_k exp(l_k(x)), l the first head's logits: the free energy of the
                  class layer (Liu et al. 2020), low where some class's logit is high, so
                  it reads how strongly x looks like a known class, which pi's softmax
                  (entropy, max pi; blind to a shift of every logit) forgets; per-step
                  heads: the mean over the valid steps
latent_nll        -log p(mu(x) | c) under the class latents (models/latents.py) of the class
                  that fits mu(x), the mean of q(z|x), best: how far the code lies from every
                  class's region in z (Lee et al. 2018's class-conditional Gaussians, per
                  class covariances; models with class latents)
knn               distance from h(x)/|h(x)|, the top encoder layer on the unit sphere, to its
                  k-th nearest training point's (Sun et al. 2022's deep nearest neighbours;
                  models/neighbours.py; runs with a feature bank, which ``semivae anomaly``
                  fits)
complexity        neg_elbo minus the input's length under a generic compressor (zlib, in
                  nats, pixels quantised as the likelihood sees them): likelihoods favour
                  simple inputs (Serra et al. 2020); images only
combined          the mean of the validation-standardised (z-scored against normal validation
                  points) complexity, energy, latent_nll (where the class latents exist) and
                  knn for a model with a class layer and a feature bank; knn alone for a
                  plain VAE with one: the best mean AUROC of the
                  combinations measured on MNIST, confirmed on Fashion-MNIST
                  (docs/benchmarks.md, benchmarks/anomaly_combine.py); a run keeps the parts
                  it was scored with (RUN/anomaly.json)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
import torch

from ..data.dataset import ArrayData
from ..models import BaseModel, model_device
from ..objectives.iwae import iwae_log_px
from ..objectives.steps import mean_steps


def _recon(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    return -torch.stack([model.elbo_terms(x, mask)[0] for _ in range(samples)]).mean(0)


def _neg_elbo(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    return -torch.stack([torch.sub(*model.elbo_terms(x, mask)) for _ in range(samples)]).mean(0)


def _neg_elbo_point(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    return -torch.sub(*model.elbo_terms(x, mask, sample=False))


def _neg_iwae(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    return -iwae_log_px(model, x, iwae_k, mask)


def first_head_proba(model: BaseModel, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """pi(x) of the model's first head: (B, K)."""
    return model.predict_proba(x, mask)[model.heads[0].name]


def _max_pi(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    return 1.0 - first_head_proba(model, x, mask).max(-1).values


def _entropy(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    p = first_head_proba(model, x, mask)
    return -(p * torch.log(p.clamp(min=1e-12))).sum(-1)


def _energy(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    logits = model.inference(x, mask, sample=False).logits[model.heads[0].name]  # (B, K) or (B, T, K)
    e = -torch.logsumexp(logits, -1, keepdim=True)  # (B, 1) or (B, T, 1)
    return (mean_steps(e, mask) if e.dim() == 3 else e)[:, 0]


def _latent_nll(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    mu = model.inference(x, mask, sample=False).mu  # (B, D)
    return model.class_latents.nll(mu).min(-1).values


def _knn(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    return model.feature_bank.kth_distance(model.inference(x, mask, sample=False).h)


def compressed_nats(x: torch.Tensor, binary: bool) -> torch.Tensor:
    """Length of each input under zlib (level 9), in nats: (B,). Pixels are quantised the way
    the likelihood sees them, to 1 bit (``binary``, a Bernoulli model) or to 8 bits, so the
    length and the model's NLL measure the same thing; pure noise then costs at most the
    quantisation's bits per pixel, less than a model of digits charges for it."""
    x = x.clamp(0, 1).flatten(1).cpu().numpy()
    q = np.packbits(x >= 0.5, axis=1) if binary else np.round(x * 255).astype(np.uint8)
    return torch.tensor([8 * len(zlib.compress(row.tobytes(), 9)) * math.log(2) for row in q])


def _complexity(model, x, mask, samples: int, iwae_k: int) -> torch.Tensor:
    binary = model.spec.likelihood == "bernoulli"
    return _neg_elbo(model, x, mask, samples, iwae_k) - compressed_nats(x, binary).to(x.device)


Score = Callable[[BaseModel, torch.Tensor, torch.Tensor | None, int, int], torch.Tensor]
SCORES: dict[str, Score] = {
    "recon_prob": _recon, "neg_elbo": _neg_elbo, "neg_elbo_point": _neg_elbo_point, "neg_iwae": _neg_iwae,
    "one_minus_max_pi": _max_pi, "entropy": _entropy, "energy": _energy, "latent_nll": _latent_nll, "knn": _knn,
    "complexity": _complexity,
}


def combined_parts(names: list[str], kind: str = "image") -> tuple[str, ...]:
    """What ``combined`` averages, given the scores that apply and the data's kind
    (docs/benchmarks.md section 11): with a feature bank, complexity, energy, latent_nll and knn
    where there is a class layer (latent_nll where there are class latents), knn alone for a plain
    VAE; without one, neg_elbo, complexity and energy / latent_nll where they apply. Tables and
    sequences have no compressor: neg_elbo takes complexity's place (chosen on the digits as a
    table, checked on wine, Fashion-MNIST pixels, JapaneseVowels and BasicMotions; session 43)."""
    like = "complexity" if kind == "image" else "neg_elbo"
    if "knn" in names:
        if "energy" not in names:
            return ("knn",)
        return (like, "energy") + (("latent_nll",) if "latent_nll" in names else ()) + ("knn",)
    return ("neg_elbo", "complexity") + tuple(n for n in ("energy", "latent_nll") if n in names)


# What a score needs of the model; any score not named here needs a decoder (a likelihood)
NEEDS: dict[str, Callable[[BaseModel], bool]] = {
    "one_minus_max_pi": lambda m: bool(m.heads),
    "entropy": lambda m: bool(m.heads),
    "energy": lambda m: bool(m.heads),
    "latent_nll": lambda m: m.has_decoder and m.class_latents is not None,
    "knn": lambda m: m.feature_bank is not None,
    "complexity": lambda m: m.has_decoder and m.spec.kind == "image",
}


def available_scores(model: BaseModel) -> list[str]:
    """The scores that apply to ``model`` on its kind of data, ``combined`` last when it applies."""
    names = [n for n in SCORES if NEEDS.get(n, lambda m: m.has_decoder)(model)]
    return names + (["combined"] if all(p in names for p in combined_parts(names, model.spec.kind)) else [])


@torch.no_grad()
def compute_scores(model: BaseModel, data: ArrayData, names: list[str], samples: int = 10, iwae_k: int = 100,
                   batch_size: int = 256, combine: dict | None = None) -> dict[str, np.ndarray]:
    """Every named score for every point of ``data`` -> {name: (N,)}.

    ``combined`` needs ``combine`` = {part: (mean, std)} from normal validation points
    (``combine_stats``); its parts are computed along the way."""
    model.eval()
    base = [n for n in names if n != "combined"]
    if "combined" in names:
        if combine is None:
            raise ValueError("the combined score needs the validation statistics of its parts")
        base += [p for p in combine if p not in base]
    out: dict[str, list] = {n: [] for n in base}
    dev = model_device(model)
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        x, mask = data.inputs(idx).to(dev), data.mask(idx)
        mask = None if mask is None else mask.to(dev)
        for n in base:
            out[n].append(SCORES[n](model, x, mask, samples, iwae_k).double().cpu())
    res = {n: torch.cat(v).numpy() if v else np.zeros(0) for n, v in out.items()}
    if "combined" in names:
        res["combined"] = combined_score(res, combine)
    return {n: res[n] for n in names}


def combined_score(scores: dict[str, np.ndarray], combine: dict[str, tuple[float, float]]) -> np.ndarray:
    """The mean z-score of the parts of ``combined``, standardised by ``combine`` = {part: (mean, std)}."""
    return np.mean([(scores[p] - m) / sd for p, (m, sd) in combine.items()], axis=0)


def combine_stats(normal_scores: dict[str, np.ndarray], parts: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """(mean, std) of each of ``parts`` (``combined_parts``) over normal validation points."""
    return {p: (float(normal_scores[p].mean()), float(max(normal_scores[p].std(), 1e-12))) for p in parts}
