"""Loss pieces shared by every model: likelihoods, KL, the regulariser hook."""

from .kl import gaussian_kl_standard, reparameterise
from .likelihoods import LIKELIHOODS, Bernoulli, Gaussian, make_likelihood

__all__ = ["LIKELIHOODS", "Bernoulli", "Gaussian", "gaussian_kl_standard", "make_likelihood", "reparameterise"]
