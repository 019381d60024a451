"""Issue 3's benchmark: MNIST accuracy (and optionally test NLL) of one model family member
over label budgets and label draws, with wall time.

    SEMIVAE_DATA=../shared/datasets python benchmarks/model_family.py --model m2 \
        --budgets 100 600 1000 3000 --seeds 0 1 2 --epochs 50 --out bench-results/m2.json

Every run uses all 60,000 training images, no validation carve (``--val-fraction 0``:
fixed epochs, no early stopping) and the model's own defaults unless ``--set`` overrides
them. Rows are appended to the JSON file as they finish (a restart skips finished ones).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import semivae
from results_file import ResultsFile, parse_set


def one_run(model: str, budget: int | None, seed: int, epochs: int, extra: dict, iwae_k: int, iwae_points: int) -> dict:
    labels = {"labels": str(budget)} if budget is not None else {"mode": "unsupervised"}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = semivae.train(out=Path(tmp) / "run", progress=False, dataset="mnist", model=model, seed=seed,
                            epochs=epochs, val_fraction=0.0, **labels, **extra)
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        res = semivae.evaluate(run, iwae_k=iwae_k, iwae_points=iwae_points)
        eval_seconds = time.perf_counter() - t1
        summary = json.loads((run / "summary.json").read_text())
    row = {"model": model, "labels": budget, "seed": seed, "epochs": epochs, "seconds": seconds,
           "epochs_run": summary["epochs"], "eval_seconds": eval_seconds}
    row.update({k: res[k] for k in ("accuracy", "log_loss", "elbo", "nll", "iwae_k", "nll_points") if k in res})
    return row


def summarise(rows: list[dict]) -> str:
    lines = ["| model | labels | epochs | draws | accuracy | NLL (nats) | min / run |", "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["model"], r["labels"] or 0, r["epochs"], json.dumps(r.get("set", {}))) for r in rows})
    for k in keys:
        rs = [r for r in rows if (r["model"], r["labels"] or 0, r["epochs"], json.dumps(r.get("set", {}))) == k]
        acc = np.array([r.get("accuracy", np.nan) for r in rs])
        nll = np.array([r.get("nll", np.nan) for r in rs])
        sec = np.array([r["seconds"] for r in rs])
        acc_s = f"{acc.mean():.4f} ± {acc.std():.4f}" if np.isfinite(acc).all() else "-"
        nll_s = f"{nll.mean():.2f} (k={rs[0]['iwae_k']})" if np.isfinite(nll).all() else "-"
        lines.append(f"| {k[0]} {k[3] if k[3] != '{}' else ''} | {k[1]} | {k[2]} | {len(rs)} | {acc_s} | {nll_s} | {sec.mean() / 60:.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="m2")
    p.add_argument("--budgets", nargs="+", default=["100"], help="label counts, or 'none' for an unsupervised VAE")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--iwae-k", type=int, default=0, help="also report test NLL with this many importance samples")
    p.add_argument("--iwae-points", type=int, default=None, help="test points scored for the NLL (default: all)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra training options, e.g. alpha=100")
    p.add_argument("--out", default="bench-results/model_family.json")
    a = p.parse_args()
    extra = parse_set(a.set)
    results = ResultsFile(a.out, vars(a))
    done = {(r["model"], r["labels"], r["seed"], r["epochs"], json.dumps(r.get("set", {}))) for r in results.rows}
    for b in a.budgets:
        budget = None if b == "none" else int(b)
        for seed in a.seeds:
            if (a.model, budget, seed, a.epochs, json.dumps(extra)) not in done:
                results.add(one_run(a.model, budget, seed, a.epochs, extra, a.iwae_k, a.iwae_points) | {"set": extra})
    rows = results.rows
    print(summarise(rows))


if __name__ == "__main__":
    main()
