"""Where each class lives in z: a Gaussian mixture per class, fitted ex post to the encoder's codes.

The semi-supervised VAE's z carries some of the class (its decoder also reads pi), so z ~ N(0, I)
with a one-hot class asked for often decodes to another class. After training we fit, per class
c of the generation head, a Gaussian mixture to the means of q(z|x) of the training points that
pi assigns to c with confidence (Ghosh et al. 2020's ex-post density estimation, per class):

    p(z | c) = sum_m w_cm N(m_cm, L_cm L_cm^T)   fitted by EM (scikit-learn's GaussianMixture) to
                                                {mu(x_i) : argmax pi(x_i) = c, max pi(x_i) >= 0.99}

(all the points assigned to c where fewer than 4 D are that confident), with M_c in {1, 2, 4, 8}
components chosen per class by BIC: no label is used, and a class with few codes keeps one
Gaussian (M_c components need 4 D M_c codes). Keeping only confident points keeps the class
boundaries, where pi hesitates, out of each mixture; several components follow a class's several
shapes (sandals with and without straps) instead of one Gaussian spanning the space between
them (docs/benchmarks.md section 11).

Generation for class c draws eps ~ N(0, I) (D,) and lets it pick a component and a place in one
go: u = Phi(eps_0) falls in component m's slice [W_{m-1}, W_m) of the class's cumulative weights,
eps_0 becomes Phi^-1((u - W_{m-1}) / w_m), standard normal again and independent of m, and
z = m_cm + L_cm eps. The same eps down a column keeps each sample's place within its class (its
style), as the paper's figures do with the same z; with one component, z = m_c + L_c eps exactly.
Nothing about training changes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from threadpoolctl import threadpool_limits
from torch.distributions import MultivariateNormal

JITTER = 1e-4  # added to each covariance's diagonal so its Cholesky factor exists
CONFIDENT = 0.99  # the pi a code needs to shape its class's mixture
COMPONENTS = (1, 2, 4, 8)  # the mixture sizes BIC chooses among, per class
TAIL = 1e-12  # keeps Phi(eps_0) inside (0, 1) so Phi^-1 stays finite


@dataclass
class ClassLatents:
    """Per-class Gaussian mixtures in z: ``weight`` (K, M), ``mean`` (K, M, D) and lower Cholesky
    factors ``chol`` (K, M, D, D). A class with fewer than M components has its own first and
    the rest at weight 0 (mean 0, factor I)."""

    weight: torch.Tensor
    mean: torch.Tensor
    chol: torch.Tensor

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> ClassLatents:
        """From ``tensors()``, or a file of one Gaussian per class (``mean`` (K, D), ``chol`` (K, D, D))."""
        if "weight" not in t:  # written before mixtures: one component each
            return cls(torch.ones(len(t["mean"]), 1), t["mean"][:, None], t["chol"][:, None])
        return cls(t["weight"], t["mean"], t["chol"])

    @property
    def centre(self) -> torch.Tensor:
        """Each class's mean in z, sum_m w_cm m_cm: (K, D)."""
        return (self.weight[:, :, None] * self.mean).sum(1)

    def place(self, eps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """z ~ p(z | c) from standard-normal ``eps`` (B, D) and ``classes`` (B,), as the module
        docstring says: (B, D)."""
        w = self.weight.to(eps.device, torch.float64)[classes]  # (B, M)
        last = (w > 0).sum(-1) - 1  # (B,) the class's last component in use
        upper = w.cumsum(-1)  # (B, M)
        u = torch.special.ndtr(eps[:, 0].double()).clamp(TAIL, 1 - TAIL)  # (B,)
        m = torch.minimum((u[:, None] >= upper).sum(-1), last)  # (B,) the slice u falls in
        w_m = w.gather(1, m[:, None])[:, 0]  # (B,)
        lower = upper.gather(1, m[:, None])[:, 0] - w_m
        e0 = torch.special.ndtri(((u - lower) / w_m).clamp(TAIL, 1 - TAIL))  # (B,) N(0, 1) again
        e0 = torch.where(last == 0, eps[:, 0].double(), e0).to(eps.dtype)  # one component: eps as it is
        eps = torch.cat([e0[:, None], eps[:, 1:]], 1)  # (B, D)
        mean, chol = self.mean.to(eps)[classes, m], self.chol.to(eps)[classes, m]  # (B, D), (B, D, D)
        return mean + (chol @ eps[:, :, None])[:, :, 0]

    def nll(self, z: torch.Tensor) -> torch.Tensor:
        """-log p(z | c) of codes ``z`` (B, D) under every class's mixture: (B, K)."""
        gaussians = MultivariateNormal(self.mean.to(z), scale_tril=self.chol.to(z), validate_args=False)  # (K, M)
        log_w = torch.log(self.weight.to(z))  # (K, M); -inf for unused components
        return -torch.logsumexp(gaussians.log_prob(z[:, None, None, :]) + log_w, -1)  # (B, K, M) -> (B, K)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight.contiguous(), "mean": self.mean.contiguous(), "chol": self.chol.contiguous()}


def _mixture(codes: torch.Tensor, components: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The BIC-best Gaussian mixture of ``codes`` (N, D) among the ``components`` sizes with at
    least 4 D codes per component: weights (M,), means (M, D), Cholesky factors (M, D, D)."""
    from sklearn.exceptions import ConvergenceWarning  # here: scikit-learn costs a second to import
    from sklearn.mixture import GaussianMixture

    n, d = codes.shape
    x = codes.double().numpy()
    # one BLAS thread: these fits are small, and threads beside the model's made them 10 times slower
    with warnings.catch_warnings(), threadpool_limits(1):  # and repeated codes leave k-means fewer clusters
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [GaussianMixture(m, covariance_type="full", reg_covar=JITTER, random_state=0).fit(x)
                for m in components if m == 1 or n >= 4 * d * m]
        gm = min(fits, key=lambda f: f.bic(x))
    cov = torch.from_numpy(gm.covariances_)  # (M, D, D), float64
    return torch.from_numpy(gm.weights_), torch.from_numpy(gm.means_), torch.linalg.cholesky(cov)


def fit_class_latents(mu: torch.Tensor, proba: torch.Tensor, components: tuple[int, ...] = COMPONENTS) -> ClassLatents:
    """Fit each class's mixture to the codes ``mu`` (N, D) that ``proba`` (N, K), pi's
    probabilities, assigns to it (the confident ones where there are enough), its size chosen
    by BIC among ``components`` ((1,): one Gaussian per class). A class with fewer than two codes
    keeps N(0, I), the prior. Deterministic."""
    k, d = proba.shape[1], mu.shape[1]
    classes, confident = proba.argmax(1), proba.amax(1) >= CONFIDENT  # (N,) each
    prior = (torch.ones(1), torch.zeros(1, d), torch.eye(d)[None])  # N(0, I), for a class without codes
    fits = []
    for c in range(k):
        mine = classes == c
        if (mine & confident).sum() >= 4 * d:
            mine = mine & confident
        codes = mu[mine]  # (N_c, D)
        fits.append(_mixture(codes, components) if len(codes) >= 2 else prior)
    m = max(len(w) for w, _, _ in fits)
    weight, mean, chol = torch.zeros(k, m), torch.zeros(k, m, d), torch.eye(d).repeat(k, m, 1, 1)
    for c, (w, centre, factor) in enumerate(fits):
        weight[c, :len(w)], mean[c, :len(w)], chol[c, :len(w)] = w.float(), centre.float(), factor.float()
    return ClassLatents(weight, mean, chol)
