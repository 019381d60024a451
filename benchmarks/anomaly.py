"""Issue 4's benchmark: Berkhahn et al. 2019 Tables 5, 6 and 9 (anomaly AUROC per left-out class).

    SEMIVAE_DATA=../shared/datasets python benchmarks/anomaly.py --dataset mnist --classes 0 1 2 3 4 5 6 7 8 9 \
        --modes semi unsupervised --label-fractions 0.01 --seeds 0 1 2 --epochs 10 --out bench-results/table5.json

Each (class, mode, label fraction, seed) trains ``semivae anomaly``'s protocol with the
default dense preset (``--set arch=conv`` and other options change it; the unsupervised VAE
drops pi, same data and seed), then scores the test split (held-out normal + every anomalous
point) with every score. Rows are appended to the JSON file as they finish; a restart skips
finished ones. With ``--keep-runs DIR`` the trained runs stay in DIR, and a run found finished
there is scored again instead of trained (to measure a new score on the same models).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import semivae
from semivae.eval.anomaly import evaluate_anomaly
from results_file import ResultsFile, parse_set


def one_run(dataset: str, cls: str, mode: str, fraction: float, seed: int, epochs: int, a) -> dict:
    budget = {"label_fraction": fraction} if mode == "semi" else {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        name = f"{Path(dataset).stem}-{cls}-{mode}-{fraction}-{seed}-{epochs}"  # a file's name without folders
        out = Path(a.keep_runs) / name if a.keep_runs else Path(tmp) / "run"
        kept = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
        if kept.get("status") == "completed":
            run, seconds = out, kept["seconds"]  # kept: score it again
        else:
            run = semivae.train(out=out, progress=False, dataset=dataset, anomaly_class=cls, mode=mode,
                                seed=seed, epochs=epochs, threads=a.threads, **budget, **a.extra)
            seconds = time.perf_counter() - t0
        res = evaluate_anomaly(run, samples=a.score_samples, iwae_k=a.score_iwae_k)
        if a.keep_scores:  # per-point validation and test scores, for studying score combinations
            keep = Path(a.keep_scores) / name
            keep.mkdir(parents=True, exist_ok=True)
            for f in ("anomaly_scores.npz", "anomaly.json"):
                (keep / f).write_bytes((Path(run) / f).read_bytes())
    return {"dataset": dataset, "class": cls, "mode": mode, "label_fraction": fraction if mode == "semi" else None,
            "seed": seed, "epochs": epochs, "set": a.extra, "seconds": seconds, "default_score": res["default_score"],
            "auroc": {n: m["auroc"] for n, m in res["scores"].items()},
            "ap": {n: m["average_precision"] for n, m in res["scores"].items()}}


def summarise(rows: list[dict], scores=("recon_prob", "complexity", "combined")) -> str:
    lines = ["| dataset | class | mode | labels | seeds | " + " | ".join(f"AUROC {s}" for s in scores) + " |",
             "|---|---|---|---|---|" + "---|" * len(scores)]
    keys = sorted({(r["dataset"], r["class"], r["mode"], r["label_fraction"] or 0.0) for r in rows})
    means: dict = {}
    for k in keys:
        rs = [r for r in rows if (r["dataset"], r["class"], r["mode"], r["label_fraction"] or 0.0) == k]
        cells = []
        for s in scores:
            v = np.array([r["auroc"][s] for r in rs if s in r["auroc"]])
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}" if len(v) else "-")
            if len(v):
                means.setdefault((k[0], k[2], k[3], s), []).append(v.mean())
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]:g} | {len(rs)} | " + " | ".join(cells) + " |")
    for (ds, mode, frac, s), v in sorted(means.items()):
        lines.append(f"mean over {len(v)} classes, {ds} {mode} {frac:g}, {s}: {np.mean(v):.3f} (min {np.min(v):.3f})")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--classes", nargs="+", default=[str(i) for i in range(10)])
    p.add_argument("--modes", nargs="+", default=["semi", "unsupervised"])
    p.add_argument("--label-fractions", type=float, nargs="+", default=[0.01])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--score-samples", type=int, default=5)
    p.add_argument("--score-iwae-k", type=int, default=20)
    p.add_argument("--keep-scores", default=None, metavar="DIR", help="copy each run's per-point scores here")
    p.add_argument("--keep-runs", default=None, metavar="DIR", help="train the runs here and keep them (to score again)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra training options, e.g. arch=conv")
    p.add_argument("--out", default="bench-results/anomaly.json")
    a = p.parse_args()
    a.extra = parse_set(a.set)
    if a.threads:
        torch.set_num_threads(a.threads)  # training sets it too; scoring a kept run needs it here
    results = ResultsFile(a.out, vars(a))
    done = {(r["class"], r["mode"], r["label_fraction"], r["seed"], r["epochs"]) for r in results.rows}
    for seed in a.seeds:
        for cls in a.classes:
            for mode in a.modes:
                for frac in (a.label_fractions if mode == "semi" else [None]):
                    if (cls, mode, frac, seed, a.epochs) not in done:
                        results.add(one_run(a.dataset, cls, mode, frac, seed, a.epochs, a))
    rows = results.rows
    print(summarise(rows))


if __name__ == "__main__":
    main()
