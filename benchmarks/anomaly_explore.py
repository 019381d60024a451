"""Candidate anomaly scores that the library does not offer, on kept runs, for ``anomaly_combine.py``:
a Mahalanobis distance in the top encoder layer and ``knn`` at other k.

    python benchmarks/anomaly_explore.py bench-results/energy-mnist --runs bench-runs/mnist-* \
        --out bench-results/explore
    python benchmarks/anomaly_combine.py bench-results/explore --dataset mnist --extra

``maha``   min_c (u - m_c)' S^-1 (u - m_c), u = h(x)/|h(x)| the unit top layer (the layer pi and
           knn read), m_c the mean of the training points pi assigns to class c, S their pooled
           (tied) covariance: Lee et al. 2018's score in the feature space it was defined in
           (``latent_nll`` is its analogue in z, per class mixtures)
``knnK``   ``knn`` with the K-th nearest training point (the library's is K = 10), K in 1, 5, 20, 50

Reads SCORES/RUN/anomaly_scores.npz (e.g. ``anomaly_rescore.py``'s output), adds these and writes
OUT/RUN/anomaly_scores.npz; the runs are not changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import semivae
from anomaly_rescore import read_scores, scored_splits, write_scores
from semivae.eval.neighbours import top_features
from semivae.eval.outputs import model_outputs

KS = (1, 5, 20, 50)


def tied_gaussians(u: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means (K, H) and the pooled precision (H, H) of unit features ``u`` (N, H) by class ``y``."""
    means = torch.stack([u[y == c].mean(0) if (y == c).any() else u.mean(0) for c in range(k)])
    r = u - means[y]  # (N, H)
    cov = r.T @ r / len(u)
    return means, torch.linalg.pinv(cov + 1e-6 * cov.diagonal().mean() * torch.eye(len(cov)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scores", help="folder of RUN/anomaly_scores.npz to add to")
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for path in map(Path, a.runs):
        source, target = (Path(d) / path.name / "anomaly_scores.npz" for d in (a.scores, a.out))
        if target.is_file() or not source.is_file():
            continue
        run = semivae.load(path)
        model = run.model
        train = run.split_data("train")
        u = top_features(model, train).double()  # (N, H)
        proba = model_outputs(model, train, elbo=False)["proba"][model.heads[0].name]  # (N, K)
        means, prec = tied_gaussians(u, torch.from_numpy(proba.argmax(1)), proba.shape[1])
        z = read_scores(source)
        for split, data in scored_splits(run):
            v = top_features(model, data).double()  # (M, H)
            d = torch.stack([((v - m) @ prec * (v - m)).sum(1) for m in means], 1)  # (M, K)
            z[f"{split}_maha"] = d.min(1).values.numpy()
            for k in KS:  # the bank's features are u in half precision; v is already on the sphere
                z[f"{split}_knn{k}"] = model.feature_bank.kth_distance(v.float(), k).double().numpy()
        write_scores(target, z)
        print(path.name, flush=True)


if __name__ == "__main__":
    main()
