"""Post-hoc lifts of a trained semi-supervised model's accuracy, none of which retrains it
(docs/benchmarks.md section 11): test-time shifts and flips of pi, and label spreading over a
neighbour graph of the top encoder layer.

    SEMIVAE_DATA=../shared/datasets python benchmarks/posthoc.py --dataset fashion-mnist --seeds 0 1 2 \
        --epochs 5 --val-labels 10 --set threads=1 --keep bench-results/posthoc-runs \
        --out bench-results/posthoc-fashion.json

Label spreading (Zhou et al. 2004, "Learning with local and global consistency"): on the
symmetric 10-nearest-neighbour graph W of the training points' unit features, S = D^-1/2 W D^-1/2,
iterate F <- a S F + (1 - a) P0 (30 times) from P0 = pi on every training point, the budget's
labels as one-hot rows; a test point takes the mean F of its 10 nearest training points. Each row
keeps the validation accuracy (the budget's validation labels, what a choice would be made by)
beside the test accuracy.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.neighbors import NearestNeighbors

import semivae
from results_file import ResultsFile, parse_set
from semivae.runs.run import preprocessing

K = 10  # neighbours of the graph and of a test point
VIEWS = {  # (dx, dy, horizontal flip) per view; pi is averaged over the views
    "pi": [(0, 0, False)],
    "shifts 1 px": [(0, 0, False), (1, 0, False), (-1, 0, False), (0, 1, False), (0, -1, False)],
    "flip": [(0, 0, False), (0, 0, True)],
}


@torch.no_grad()
def encode(model, data, views) -> tuple[np.ndarray, np.ndarray]:
    """Unit top-layer features (N, H) and pi (N, K), each averaged over ``views``."""
    feats, probs = [], []
    for start in range(0, len(data), 2048):
        x = data.inputs(torch.arange(start, min(start + 2048, len(data))))  # (B, C, H, W)
        u = p = 0
        for dx, dy, flip in views:
            v = torch.roll(x.flip(-1) if flip else x, shifts=(dy, dx), dims=(-2, -1))
            inf = model.inference(v, sample=False)
            u, p = u + F.normalize(inf.h, dim=1), p + inf.logits[model.heads[0].name].softmax(-1)
        feats.append(F.normalize(u, dim=1)), probs.append(p / len(views))
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def graph(features: np.ndarray) -> sp.csr_matrix:
    """S = D^-1/2 W D^-1/2 of the symmetric K-nearest-neighbour graph W of ``features``: (N, N)."""
    n = len(features)
    _, ind = NearestNeighbors(n_neighbors=K + 1).fit(features).kneighbors(features)  # (N, K + 1), self first
    w = sp.csr_matrix((np.ones(n * K), (np.repeat(np.arange(n), K), ind[:, 1:].ravel())), shape=(n, n))
    w = w + w.T
    d = 1.0 / np.sqrt(np.asarray(w.sum(1)).ravel())
    return sp.diags(d) @ w @ sp.diags(d)


def spread(s: sp.csr_matrix, prior: np.ndarray, labelled: np.ndarray, labels: np.ndarray, a: float) -> np.ndarray:
    """Label spreading over ``s`` from ``prior`` (N, K), the labelled rows one-hot: (N, K)."""
    p0 = prior.copy()
    p0[labelled] = np.eye(prior.shape[1])[labels[labelled]]
    f = p0
    for _ in range(30):
        f = a * (s @ f) + (1 - a) * p0
    return f / np.maximum(f.sum(1, keepdims=True), 1e-12)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--val-labels", type=int, default=10)
    p.add_argument("--set", nargs="*", default=[], help="extra training options")
    p.add_argument("--keep", required=True, help="folder of the trained runs (reused when there)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    results = ResultsFile(a.out, vars(a))
    for seed in a.seeds:
        path = Path(a.keep) / f"{a.dataset}-{a.budget}-{seed}"
        if not (path / "model.safetensors").is_file():
            semivae.train(out=path, progress=False, dataset=a.dataset, labels=a.budget, seed=seed, epochs=a.epochs,
                          val_labels=a.val_labels, **parse_set(a.set))
        run = semivae.load(path)
        model, bundle = run.model.eval(), run.dataset()
        shift, scale = preprocessing(run.data_info)
        train, test = replace(bundle.train, shift=shift, scale=scale), replace(bundle.test, shift=shift, scale=scale)
        y_train, y_test = bundle.train.labels[:, 0].numpy(), bundle.test.labels[:, 0].numpy()
        lab, val = run.split.labelled[0], run.split.val_labelled[0]
        t0 = time.perf_counter()
        u_train, p_train = encode(model, train, VIEWS["pi"])
        u_test, p_test_plain = encode(model, test, VIEWS["pi"])
        for name, views in VIEWS.items():
            plain = name == "pi"  # encoded above
            p_test = p_test_plain if plain else encode(model, test, views)[1]
            p_val = p_train[val] if plain else encode(model, train.take(torch.from_numpy(val)), views)[1]
            results.add({"seed": seed, "method": name, "val_accuracy": float((p_val.argmax(1) == y_train[val]).mean()),
                         "accuracy": float((p_test.argmax(1) == y_test).mean())})
        near = NearestNeighbors(n_neighbors=K).fit(u_train).kneighbors(u_test)[1]  # (N_test, K)
        s = graph(u_train)
        for alpha in (0.5, 0.9):
            f = spread(s, p_train, lab, y_train, alpha)
            results.add({"seed": seed, "method": f"label spreading a={alpha}",
                         "val_accuracy": float((f[val].argmax(1) == y_train[val]).mean()),
                         "accuracy": float((f[near].mean(1).argmax(1) == y_test).mean()),
                         "seconds": time.perf_counter() - t0})


if __name__ == "__main__":
    main()
