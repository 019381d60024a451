"""Where each class lives in z: a Gaussian per class, fitted ex post to the encoder's codes.

The semi-supervised VAE's z carries some of the class (its decoder also reads pi), so z ~ N(0, I)
with a one-hot class asked for often decodes to another class. After training we fit, per class
c of the generation head, a Gaussian to the means of q(z|x) of the training points that pi assigns
to c with confidence (Ghosh et al. 2020's ex-post density estimation, per class):

    p(z | c) = N(m_c, L_c L_c^T)        m_c, L_c L_c^T: mean and covariance of
                                        {mu(x_i) : argmax pi(x_i) = c, max pi(x_i) >= 0.99}

(all the points assigned to c where fewer than 4 D are that confident). Keeping only confident
points keeps the class boundaries, where pi hesitates, out of each Gaussian: on MNIST the
model's own pi recognised 0.997 of the samples against 0.993 with every assigned point
(docs/benchmarks.md section 11).

and generation for class c draws eps ~ N(0, I) and decodes z = m_c + L_c eps with onehot(c). The
same eps down a column keeps each sample's place within its class (its style), as the paper's
figures do with the same z. Nothing about training changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import MultivariateNormal

JITTER = 1e-4  # added to each covariance's diagonal so its Cholesky factor exists
CONFIDENT = 0.99  # the pi a code needs to shape its class's Gaussian


@dataclass
class ClassLatents:
    """Per-class Gaussians in z: ``mean`` (K, D) and lower Cholesky factors ``chol`` (K, D, D)."""

    mean: torch.Tensor
    chol: torch.Tensor

    def place(self, eps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """z = m_c + L_c eps for standard-normal ``eps`` (B, D) and ``classes`` (B,): (B, D)."""
        mean, chol = self.mean.to(eps), self.chol.to(eps)
        return mean[classes] + (chol[classes] @ eps[:, :, None])[:, :, 0]

    def nll(self, z: torch.Tensor) -> torch.Tensor:
        """-log N(z; m_c, L_c L_c^T) of codes ``z`` (B, D) under every class: (B, K)."""
        gaussians = MultivariateNormal(self.mean.to(z), scale_tril=self.chol.to(z), validate_args=False)  # K of them
        return -gaussians.log_prob(z[:, None, :])  # (B, K)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.contiguous(), "chol": self.chol.contiguous()}


def fit_class_latents(mu: torch.Tensor, proba: torch.Tensor) -> ClassLatents:
    """Fit each class's Gaussian to the codes ``mu`` (N, D) that ``proba`` (N, K), pi's
    probabilities, assigns to it (the confident ones where there are enough). A class with fewer
    than two codes keeps N(0, I), the prior."""
    k, d = proba.shape[1], mu.shape[1]
    classes, confident = proba.argmax(1), proba.amax(1) >= CONFIDENT  # (N,) each
    mean, chol = torch.zeros(k, d), torch.eye(d).repeat(k, 1, 1)
    for c in range(k):
        mine = classes == c
        if (mine & confident).sum() >= 4 * d:
            mine = mine & confident
        codes = mu[mine].double()  # (N_c, D)
        if len(codes) < 2:
            continue
        centred = codes - codes.mean(0)
        cov = centred.T @ centred / (len(codes) - 1) + JITTER * torch.eye(d, dtype=torch.float64)
        mean[c], chol[c] = codes.mean(0).float(), torch.linalg.cholesky(cov).float()
    return ClassLatents(mean, chol)
