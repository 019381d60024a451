"""Berkhahn et al. 2019, Table 3 protocol: MNIST, 100 and 1,000 labels, semi-supervised vs
the supervised sibling, over several label draws (seeds).

    SEMIVAE_DATA=../shared/datasets python benchmarks/table3.py --arch dense --preset paper \
        --budgets 100 1000 --seeds 0 1 2 --out bench-results/table3-dense.json

The paper trains the semi-supervised model 10 epochs and the supervised one 20, on all
60,000 training images (``--val-fraction 0``: no early stopping, fixed epochs). Each
(budget, seed) pair trains both models on the same labelled indices. Results (one row per
run, then mean +- std) are written as JSON and printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import semivae
from results_file import ResultsFile, parse_set


def one_run(arch: str, preset: str, mode: str, budget: int, seed: int, epochs: int, extra: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = semivae.train(out=Path(tmp) / "run", progress=False, dataset="mnist", arch=arch, preset=preset,
                            mode=mode, labels=str(budget), seed=seed, epochs=epochs, val_fraction=0.0, **extra)
        seconds = time.perf_counter() - t0
        res = semivae.evaluate(run)
    return {"arch": arch, "preset": preset, "mode": mode, "labels": budget, "seed": seed, "epochs": epochs,
            "accuracy": res["accuracy"], "log_loss": res["log_loss"], "seconds": seconds}


def summarise(rows: list[dict]) -> str:
    lines = ["| arch | preset | mode | labels | epochs | seeds | accuracy | log loss | s / run |",
             "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["arch"], r["preset"], r["mode"], r["labels"], r["epochs"]) for r in rows},
                  key=lambda k: (k[0], k[3], k[2]))
    for k in keys:
        rs = [r for r in rows if (r["arch"], r["preset"], r["mode"], r["labels"], r["epochs"]) == k]
        acc, ll, sec = (np.array([r[f] for r in rs]) for f in ("accuracy", "log_loss", "seconds"))
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {k[4]} | {len(rs)} | {acc.mean():.4f} ± {acc.std():.4f} "
                     f"| {ll.mean():.3f} ± {ll.std():.3f} | {sec.mean():.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="dense")
    p.add_argument("--preset", default="paper")
    p.add_argument("--budgets", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--semi-epochs", type=int, default=10)
    p.add_argument("--sup-epochs", type=int, default=20)
    p.add_argument("--modes", nargs="+", choices=["semi", "supervised"], default=["semi", "supervised"],
                   help="which of the two models to train (e.g. the supervised sibling alone)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra training options, e.g. alpha=100")
    p.add_argument("--out", default="bench-results/table3.json")
    a = p.parse_args()
    extra = parse_set(a.set)
    results = ResultsFile(a.out, vars(a))
    done = {(r["mode"], r["labels"], r["seed"]) for r in results.rows}
    for budget in a.budgets:
        for seed in a.seeds:
            for mode, epochs in (("semi", a.semi_epochs), ("supervised", a.sup_epochs)):
                if mode in a.modes and (mode, budget, seed) not in done:
                    results.add(one_run(a.arch, a.preset, mode, budget, seed, epochs, extra) | {"set": extra})
    rows = results.rows
    print(summarise(rows))


if __name__ == "__main__":
    main()
