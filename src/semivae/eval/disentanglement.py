"""Disentanglement metrics, each a pure function ``metric(sampler, representation, rng, ...)
-> dict`` (the definitions of disentanglement_lib, Locatello et al. 2019).

``sampler`` draws factor values and the observations for given factors
(``semivae.data.factors.FactorSampler``); ``representation`` maps a batch of observations to
codes (N, D), for a trained model the mean of q(z|x); ``rng`` is a numpy Generator. Sizes
default lower than disentanglement_lib's (10,000 points) so that a CPU scores a run in
seconds; every one can be raised.

- betaVAE score (Higgins et al. 2017): pick a factor, draw two batches that share its value,
  feature = mean |z1 - z2| over the batch; a logistic regression predicts the factor.
- FactorVAE score (Kim & Mnih 2018): fix a factor over a batch; the code dimension with the
  least variance (relative to its global variance; dimensions with std < ``prune`` ignored)
  votes for that factor; accuracy of the majority-vote classifier.
- MIG (Chen et al. 2018): mutual information between each factor and each code dimension
  (codes binned into 20-bin histograms); mean over factors of the gap between the two
  highest, divided by the factor's entropy.
- DCI (Eastwood & Williams 2018): one gradient-boosted tree classifier per factor; feature
  importances (D, F) give disentanglement (1 - entropy per code, weighted) and completeness
  (1 - entropy per factor, weighted); informativeness is their test accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.stats
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score

Representation = Callable[[torch.Tensor], np.ndarray]


def codes(sampler, representation: Representation, factors: np.ndarray, rng: np.random.Generator,
          chunk: int = 2048) -> np.ndarray:
    """Representation of observations for each row of ``factors`` (..., F) -> (..., D)."""
    flat = factors.reshape(-1, factors.shape[-1])
    out = np.concatenate([representation(sampler.observations(flat[i:i + chunk], rng))
                          for i in range(0, len(flat), chunk)])
    return out.reshape(*factors.shape[:-1], -1)


def _fixed_pairs(sampler, n: int, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n pairs of batches that share the value of one random factor: (k (n,), f1, f2 (n, B, F))."""
    k = rng.integers(0, len(sampler.factor_sizes), n)
    f1 = sampler.sample_factors(n * batch, rng).reshape(n, batch, -1)
    f2 = sampler.sample_factors(n * batch, rng).reshape(n, batch, -1)
    f2[np.arange(n), :, k] = f1[np.arange(n), :, k]
    return k, f1, f2


def beta_vae_score(sampler, representation: Representation, rng: np.random.Generator, batch_size: int = 64,
                   n_train: int = 1000, n_eval: int = 1000) -> dict:
    def points(n):
        k, f1, f2 = _fixed_pairs(sampler, n, batch_size, rng)
        z1, z2 = codes(sampler, representation, f1, rng), codes(sampler, representation, f2, rng)
        return np.abs(z1 - z2).mean(1), k  # (n, D), (n,)
    x_train, y_train = points(n_train)
    x_eval, y_eval = points(n_eval)
    model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    return {"train_accuracy": float(model.score(x_train, y_train)), "eval_accuracy": float(model.score(x_eval, y_eval))}


def factor_vae_score(sampler, representation: Representation, rng: np.random.Generator, batch_size: int = 64,
                     n_train: int = 1000, n_eval: int = 500, n_variance: int = 5000, prune: float = 0.05) -> dict:
    z = codes(sampler, representation, sampler.sample_factors(n_variance, rng), rng)
    global_var = z.var(0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_var) >= prune)
    if not len(active):
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    n_factors = len(sampler.factor_sizes)

    def votes(n):
        k = rng.integers(0, n_factors, n)
        f = sampler.sample_factors(n * batch_size, rng).reshape(n, batch_size, -1)
        f[np.arange(n), :, k] = f[np.arange(n), :1, k]
        local = codes(sampler, representation, f, rng).var(1, ddof=1)  # (n, D)
        best = np.argmin(local[:, active] / global_var[active], 1)
        table = np.zeros((n_factors, len(active)), dtype=np.int64)
        np.add.at(table, (k, best), 1)
        return table
    train = votes(n_train)
    classifier = train.argmax(0)  # each active dimension's factor
    columns = np.arange(len(active))
    evaluated = votes(n_eval)
    return {"train_accuracy": float(train[classifier, columns].sum() / train.sum()),
            "eval_accuracy": float(evaluated[classifier, columns].sum() / evaluated.sum()),
            "num_active_dims": int(len(active))}


def discretize(z: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each code dimension binned into a ``bins``-bin histogram of its values: (N, D) ints."""
    return np.stack([np.digitize(z[:, d], np.histogram(z[:, d], bins)[1][:-1]) for d in range(z.shape[1])], 1)


def mutual_information(zd: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, F) mutual information (nats) between binned codes and factors."""
    return np.array([[mutual_info_score(factors[:, j], zd[:, i]) for j in range(factors.shape[1])]
                     for i in range(zd.shape[1])])


def mig(sampler, representation: Representation, rng: np.random.Generator, n: int = 5000, bins: int = 20) -> dict:
    factors = sampler.sample_factors(n, rng)
    m = mutual_information(discretize(codes(sampler, representation, factors, rng), bins), factors)  # (D, F)
    entropy = np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])
    top = np.sort(m, 0)[::-1]
    gap = top[0] - (top[1] if len(top) > 1 else 0.0)
    return {"mig": float(np.mean(gap / entropy)), "mutual_information": m.tolist(),
            "best_factor_per_dim": m.argmax(1).tolist(), "normalized_mi_per_dim": (m / entropy).max(1).tolist()}


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    return 1.0 - scipy.stats.entropy(p + 1e-11, base=base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of a (D, F) importance matrix."""
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    per_code = _one_minus_entropy(importance.T, importance.shape[1])  # (D,)
    per_factor = _one_minus_entropy(importance, importance.shape[0])  # (F,)
    d = float(np.sum(per_code * weights.sum(1) / weights.sum()))
    c = float(np.sum(per_factor * weights.sum(0) / weights.sum()))
    return d, c


def dci(sampler, representation: Representation, rng: np.random.Generator, n_train: int = 2000,
        n_test: int = 1000, trees: int = 50) -> dict:
    f_train, f_test = sampler.sample_factors(n_train, rng), sampler.sample_factors(n_test, rng)
    z_train, z_test = codes(sampler, representation, f_train, rng), codes(sampler, representation, f_test, rng)
    importance = np.zeros((z_train.shape[1], f_train.shape[1]))
    train_acc, test_acc = [], []
    for j in range(f_train.shape[1]):
        if len(np.unique(f_train[:, j])) < 2:
            continue
        model = GradientBoostingClassifier(n_estimators=trees, random_state=0).fit(z_train, f_train[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc.append(model.score(z_train, f_train[:, j]))
        test_acc.append(model.score(z_test, f_test[:, j]))
    d, c = dci_from_importance(importance)
    return {"disentanglement": d, "completeness": c, "informativeness_train": float(np.mean(train_acc)),
            "informativeness_test": float(np.mean(test_acc)), "importance": importance.tolist()}


METRICS: dict[str, Callable[..., dict]] = {"beta_vae": beta_vae_score, "factor_vae": factor_vae_score, "mig": mig,
                                           "dci": dci}
HEADLINE = {"beta_vae": "eval_accuracy", "factor_vae": "eval_accuracy", "mig": "mig", "dci": "disentanglement"}
