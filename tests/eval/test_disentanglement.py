"""Disentanglement metrics on known cases: the true factors score near 1, a constant or noise
near chance, a rotation of the factors lower on MIG and DCI than the factors themselves."""

import numpy as np
import pytest
import torch

from semivae.eval.disentanglement import (beta_vae_score, dci, dci_from_importance, factor_vae_score, mig)


class Factors:
    """Observations are the factor values themselves."""

    factor_names = ("a", "b", "c", "d")
    factor_sizes = (3, 4, 5, 6)

    def sample_factors(self, n, rng):
        return np.stack([rng.integers(0, s, n) for s in self.factor_sizes], 1)

    def observations(self, factors, rng):
        return torch.from_numpy(np.asarray(factors)).float()


ROTATION = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 4)))[0]
REPRESENTATIONS = {
    "identity": lambda x: x.numpy(),
    "constant": lambda x: np.zeros((len(x), 4)),
    "noise": lambda x: np.random.default_rng(len(x)).normal(size=(len(x), 4)),
    "rotated": lambda x: (x.numpy() / np.array([3, 4, 5, 6])) @ ROTATION,
}


def _scores(name):
    rep, s = REPRESENTATIONS[name], Factors()
    rng = np.random.default_rng(0)
    return {"beta_vae": beta_vae_score(s, rep, rng, n_train=300, n_eval=300)["eval_accuracy"],
            "factor_vae": factor_vae_score(s, rep, rng, n_train=300, n_eval=300, n_variance=2000)["eval_accuracy"],
            "mig": mig(s, rep, rng, n=3000)["mig"],
            "dci": dci(s, rep, rng, n_train=1000, n_test=500, trees=20)["disentanglement"]}


@pytest.fixture(scope="module")
def scores():
    return {name: _scores(name) for name in REPRESENTATIONS}


def test_the_true_factors_score_near_one(scores):
    assert all(v > 0.95 for v in scores["identity"].values()), scores["identity"]


@pytest.mark.parametrize("name", ["constant", "noise"])
def test_a_constant_or_noise_scores_near_chance(scores, name):
    s = scores[name]
    assert s["beta_vae"] < 0.35 and s["factor_vae"] < 0.35, s  # chance is 1 / 4 factors
    assert s["mig"] < 0.05 and s["dci"] < 0.1, s


def test_a_rotation_of_the_factors_scores_lower_on_mig_and_dci(scores):
    assert scores["rotated"]["mig"] < scores["identity"]["mig"] - 0.3
    assert scores["rotated"]["dci"] < scores["identity"]["dci"] - 0.3


def test_dci_of_known_importance_matrices():
    assert dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0))
    d, c = dci_from_importance(np.ones((3, 3)))
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(0.0, abs=1e-6)
    d, c = dci_from_importance(np.array([[1.0, 0.0], [1.0, 0.0]]))  # two codes for one factor
    assert d == pytest.approx(1.0) and c == pytest.approx(0.0, abs=1e-6)  # a factor spread over two codes
