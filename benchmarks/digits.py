"""Semi-supervised vs the supervised sibling on the bundled digits, several label draws.

    python benchmarks/digits.py --labels-per-class 10 --seeds 0 1 2 3 4 --epochs 100

Both models use the default preset (dense 512-256, dropout 0.5; semi: alpha 20, beta 0.25)
and the same labelled indices per seed; accuracy and log loss on the fixed test split (360
images). ``--set KEY=VALUE`` changes an option for both, e.g. ``--set beta=1.0``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import semivae


def run(mode: str, seed: int, a: argparse.Namespace, extra: dict) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = semivae.train(out=Path(tmp) / "r", progress=False, dataset="digits", mode=mode, seed=seed,
                             labels_per_class=a.labels_per_class, epochs=a.epochs, threads=a.threads, **extra)
        res = semivae.evaluate(path)
    return res["accuracy"], res["log_loss"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels-per-class", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
    print("| mode | seeds | accuracy per seed | mean accuracy | mean log loss |\n|---|---|---|---|---|")
    for mode in ("semi", "supervised"):
        r = np.array([run(mode, s, a, extra) for s in a.seeds])
        print(f"| {mode} | {len(a.seeds)} | {' '.join(f'{v:.3f}' for v in r[:, 0])} | {r[:, 0].mean():.4f} ± "
              f"{r[:, 0].std():.4f} | {r[:, 1].mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
