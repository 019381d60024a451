"""How the ``knn`` anomaly score holds up when its bank holds anomalies: kept anomaly runs
(``benchmarks/anomaly.py --keep-runs DIR``) rescored with a bank of their training split plus
1 % as many training images of the held-out class (the model unchanged), for several k.

    SEMIVAE_DATA=../shared/datasets python benchmarks/anomaly_contamination.py DIR/mnist-*-0-5 \
        --out bench-results/knn-contamination-mnist.json

Prints, per run, the test AUROC of the k-th-neighbour distance with the clean and the
contaminated bank.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from semivae.data import ArrayData
from semivae.data.anomaly import load_dataset
from semivae.eval.metrics import auroc
from semivae.eval.neighbours import top_features
from semivae.models.neighbours import FeatureBank
from semivae.runs import as_run
from results_file import ResultsFile


def one_run(path: Path, fraction: float, ks: list[int]) -> dict:
    run = as_run(path)
    train, test = run.split_data("train"), run.split_data("test")
    cls = run.config.data.anomaly_class
    full = load_dataset(run.config.data.dataset, None).train  # every class, raw
    held_out = torch.nonzero(full.labels[:, 0] == int(cls)).flatten()
    pick = held_out[torch.randperm(len(held_out), generator=torch.Generator().manual_seed(0))]
    pick = pick[:int(fraction * len(train))]
    anomalous = ArrayData(full.x[pick], torch.full((len(pick), 1), -1), shift=train.shift, scale=train.scale)
    clean = top_features(run.model, train)
    banks = {"clean": clean, "contaminated": torch.cat([clean, top_features(run.model, anomalous)])}
    with np.load(path / "anomaly_scores.npz") as z:
        flags = z["is_anomaly"]
    u = top_features(run.model, test)  # (N, H), unit norm: kth_distance's normalising leaves it as is
    res = {f"{name}/k{k}": auroc(flags, FeatureBank(b.half()).kth_distance(u, k).numpy())
           for name, b in banks.items() for k in ks}
    return {"run": path.name, "class": cls, "n_bank": len(clean), "n_anomalous_in_bank": len(pick), "auroc": res}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--fraction", type=float, default=0.01, help="anomalous images per training point in the bank")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 3, 10])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench-results/knn-contamination.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    results = ResultsFile(a.out, vars(a))
    done = {r["run"] for r in results.rows}
    for path in map(Path, a.runs):
        if path.name not in done:
            results.add(one_run(path, a.fraction, a.ks))
    for key in results.rows[0]["auroc"]:
        v = [r["auroc"][key] for r in results.rows]
        print(f"{key:<16} mean {np.mean(v):.3f} (worst {np.min(v):.3f}) over {len(v)} runs")


if __name__ == "__main__":
    main()
