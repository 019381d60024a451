"""Sequences (issue 10): the recurrent model against its supervised sibling, anomaly detection
with one class held out, and training throughput.

    # Table 10 protocol: 100 / 1,000 / all labels, semi-supervised vs the sibling, label draws
    SEMIVAE_DATA=../shared/datasets python benchmarks/sequences.py classify --dataset sequential-mnist \
        --budgets 100 1000 all --seeds 0 1 2 --out bench-results/seq-table10-mnist.json
    # the small real sets: 1, 2 and 5 labels per class
    python benchmarks/sequences.py classify --dataset basic-motions --per-class 1 2 5 --seeds 0 1 2 \
        --semi-epochs 200 --sup-epochs 200 --out bench-results/seq-small-basic-motions.json
    # Table 11 protocol: each class held out in turn, semi-supervised vs the plain VAE
    python benchmarks/sequences.py anomaly --dataset basic-motions --label-fraction 0.2 --epochs 200 \
        --out bench-results/seq-table11-basic-motions.json
    # the scikit-learn estimator on an aeon set as a user calls it (series as a list of (T_i, C) arrays)
    python benchmarks/sequences.py sklearn --dataset japanese-vowels --per-class 2 --seeds 0 1 2 --epochs 200 \
        --out bench-results/seq-sklearn.json
    # sequences per second of a training step (the recurrent default, sequential-MNIST shapes)
    python benchmarks/sequences.py speed --out bench-results/seq-speed.json

Each (budget, seed) trains both models on the same labelled indices (the seed draws them).
No validation carve (``--val-fraction 0``) unless ``--set val_fraction=...``: fixed epochs, no
early stopping, so nothing is tuned on the test split. Rows are appended as runs finish (a
restart skips them) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import semivae
from results_file import ResultsFile, parse_set


def _train(out: Path, **options) -> tuple[Path, float]:
    t0 = time.perf_counter()
    run = semivae.train(out=out, progress=False, arch="recurrent", **options)
    return run, time.perf_counter() - t0


def classify(a, extra: dict) -> list[dict]:
    results = ResultsFile(a.out, vars(a))
    done = {(r["mode"], r["budget"], r["seed"], r.get("tag", "")) for r in results.rows}
    budgets = [("labels_per_class", k) for k in a.per_class] or [("labels", b) for b in a.budgets]
    split = "val" if a.val_labels else "test"  # a screen: labels held out of the budget score it, not the test split
    for key, budget in budgets:
        for seed in a.seeds:
            for mode, epochs in (("semi", a.semi_epochs), ("supervised", a.sup_epochs[str(budget)]
                                 if isinstance(a.sup_epochs, dict) else a.sup_epochs)):
                if (mode, str(budget), seed, a.tag) in done or mode not in a.modes:
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    options = {"dataset": a.dataset, "mode": mode, "seed": seed, "epochs": epochs, "val_fraction": 0.0,
                               key: str(budget) if key == "labels" else budget, **extra}
                    if a.val_labels:
                        options["val_labels"] = a.val_labels
                    run, seconds = _train(Path(tmp) / "r", **options)
                    res = semivae.evaluate(run, split)
                results.add({"dataset": a.dataset, "mode": mode, "budget": str(budget), "budget_kind": key,
                             "seed": seed, "epochs": epochs, "accuracy": res["accuracy"], "log_loss": res["log_loss"],
                             "seconds": seconds, "set": extra, "tag": a.tag, "split": split})
    return results.rows


def anomaly(a, extra: dict) -> list[dict]:
    from semivae.data import load_dataset
    from semivae.eval.anomaly import evaluate_anomaly

    results = ResultsFile(a.out, vars(a))
    done = {(r["class"], r["mode"], r["seed"]) for r in results.rows}
    classes = a.classes or list(load_dataset(a.dataset).heads[0].classes)
    for cls in classes:
        for seed in a.seeds:
            for mode in ("semi", "unsupervised"):
                if (cls, mode, seed) in done:
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    run, seconds = _train(Path(tmp) / "r", dataset=a.dataset, anomaly_class=cls, mode=mode, seed=seed,
                                          epochs=a.epochs, label_fraction=a.label_fraction, **extra)
                    res = evaluate_anomaly(run, samples=a.score_samples, iwae_k=a.score_iwae_k)
                results.add({"dataset": a.dataset, "class": cls, "mode": mode, "seed": seed, "epochs": a.epochs,
                             "label_fraction": a.label_fraction, "seconds": seconds, "set": extra,
                             "auroc": {n: m["auroc"] for n, m in res["scores"].items()}})
    return results.rows


def speed(a, extra: dict) -> list[dict]:
    """Sequences per second of the trainer's step on (B, 28, 28) batches, half labelled."""
    from semivae.config import nest, resolve
    from semivae.data import Batch
    from semivae.models import Head, ModelSpec, build_model
    from semivae.train.trainer import OPTIMIZERS, make_step, resolve_device

    results = ResultsFile(a.out, vars(a))
    device = resolve_device(a.device)
    if extra.get("threads"):
        torch.set_num_threads(int(extra["threads"]))
    for preset in ("default", "paper"):
        cfg = resolve({"preset": preset}, nest({"arch": "recurrent", **extra}))
        spec = ModelSpec((28, 28), (Head("label", tuple(str(k) for k in range(10))),), "bernoulli", "sequence")
        torch.manual_seed(0)
        model = build_model(spec, cfg.arch, cfg.model).to(device)
        step = make_step(model, OPTIMIZERS[cfg.train.optimizer](model.parameters(), cfg.train))
        x = torch.rand(a.batch_size, 28, 28, device=device)
        y = torch.where(torch.arange(a.batch_size, device=device) >= a.batch_size // 2,
                        torch.randint(0, 10, (a.batch_size,), device=device), -1)
        batch = Batch(x, y[:, None])
        for _ in range(3):
            step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = a.batch_size * a.steps / (time.perf_counter() - t0)
        results.add({"preset": preset, "device": str(device), "threads": torch.get_num_threads(),
                     "batch_size": a.batch_size, "sequences_per_s": rate,
                     "n_parameters": sum(p.numel() for p in model.parameters())})
    return results.rows


def table(rows: list[dict], command: str) -> str:
    if command == "classify":
        lines = ["| dataset | budget | mode | setting | epochs | draws | accuracy | log loss | s / run |",
                 "|---|---|---|---|---|---|---|---|---|"]

        def key(r):
            return r["dataset"], r["budget"], r["mode"], r.get("tag", ""), r["epochs"]
        for k in sorted({key(r) for r in rows}, key=lambda k: (k[0], int(k[1]) if k[1].isdigit() else 10**9, *k[2:4])):
            rs = [r for r in rows if key(r) == k]
            acc, ll, sec = (np.array([r[f] for r in rs]) for f in ("accuracy", "log_loss", "seconds"))
            lines.append(f"| {' | '.join(str(v) for v in k)} | {len(rs)} | {acc.mean():.4f} ± {acc.std():.4f} "
                         f"| {ll.mean():.3f} ± {ll.std():.3f} | {sec.mean():.0f} |")
        return "\n".join(lines)
    if command == "anomaly":
        scores = sorted({n for r in rows for n in r["auroc"]})
        lines = ["| class | mode | " + " | ".join(scores) + " |", "|---|---|" + "---|" * len(scores)]
        for cls in dict.fromkeys(r["class"] for r in rows):
            for mode in ("semi", "unsupervised"):
                rs = [r for r in rows if r["class"] == cls and r["mode"] == mode]
                if rs:
                    cells = [f"{np.mean([r['auroc'][n] for r in rs if n in r['auroc']]):.3f}"
                             if any(n in r["auroc"] for r in rs) else "" for n in scores]
                    lines.append(f"| {cls} | {mode} | " + " | ".join(cells) + " |")
        for mode in ("semi", "unsupervised"):
            rs = [r for r in rows if r["mode"] == mode]
            cells = [f"{np.mean([r['auroc'][n] for r in rs if n in r['auroc']]):.3f}"
                     if any(n in r["auroc"] for r in rs) else "" for n in scores]
            lines.append(f"| **mean** | {mode} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
    if command == "sklearn":
        return "\n".join(f"{r['dataset']}, {r['per_class']} labels per class, seed {r['seed']}: accuracy "
                         f"{r['accuracy']:.4f}, log loss {r['log_loss']:.3f}, {r['seconds']:.0f} s" for r in rows)
    return "\n".join(f"{r['preset']}: {r['sequences_per_s']:.0f} sequences/s ({r['device']}, {r['threads']} threads, "
                     f"batch {r['batch_size']}, {r['n_parameters']} parameters)" for r in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify")
    c.add_argument("--dataset", default="sequential-mnist")
    c.add_argument("--budgets", nargs="+", default=["100", "1000", "all"])
    c.add_argument("--per-class", type=int, nargs="*", default=[], help="labels per class instead of --budgets")
    c.add_argument("--modes", nargs="+", default=["semi", "supervised"])
    c.add_argument("--val-labels", type=int, default=0, help="hold this many budget labels out and score them "
                   "(the validation split) instead of the test split: a screen")
    c.add_argument("--tag", default="", help="names the rows' setting (--set), so one file holds several")
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--semi-epochs", type=int, default=10)
    c.add_argument("--sup-epochs", type=parse_epochs, default={"100": 200, "1000": 100, "all": 10},
                   help="one number, or budget:epochs,... (default 100:200,1000:100,all:10)")
    an = sub.add_parser("anomaly")
    an.add_argument("--dataset", default="basic-motions")
    an.add_argument("--classes", nargs="*", default=[])
    an.add_argument("--seeds", type=int, nargs="+", default=[0])
    an.add_argument("--epochs", type=int, default=5)
    an.add_argument("--label-fraction", type=float, default=0.01)
    an.add_argument("--score-samples", type=int, default=5)
    an.add_argument("--score-iwae-k", type=int, default=20)
    sk = sub.add_parser("sklearn")
    sk.add_argument("--dataset", default="japanese-vowels")
    sk.add_argument("--per-class", type=int, default=2)
    sk.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sk.add_argument("--epochs", type=int, default=200)
    s = sub.add_parser("speed")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--device", default="auto")
    for q in (c, an, sk, s):
        q.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra training options")
        q.add_argument("--out", required=True)
    a = p.parse_args()
    rows = {"classify": classify, "anomaly": anomaly, "sklearn": sklearn_fit, "speed": speed}[a.command](
        a, parse_set(a.set))
    print(table(rows, a.command))


def sklearn_fit(a, extra: dict) -> list[dict]:
    """``SemiVAEClassifier`` on aeon's train split with ``per_class`` labels per class (drawn by the
    seed, the rest -1), scored on its test split."""
    import aeon.datasets
    from sklearn.metrics import accuracy_score, log_loss
    from semivae.sklearn import SemiVAEClassifier

    load = getattr(aeon.datasets, "load_" + a.dataset.replace("-", "_"))
    (x, y), (x_te, y_te) = load(split="train"), load(split="test")
    x, x_te = [s.T for s in x], [s.T for s in x_te]  # aeon's (C, T_i) -> (T_i, C)
    results = ResultsFile(a.out, vars(a))
    for seed in a.seeds:
        rng = np.random.default_rng(seed)
        keep = np.concatenate([rng.choice(np.flatnonzero(y == c), a.per_class, replace=False) for c in np.unique(y)])
        y_semi = np.full(len(y), "-1", dtype=object)
        y_semi[keep] = y[keep]
        t0 = time.perf_counter()
        clf = SemiVAEClassifier(epochs=a.epochs, seed=seed, threads=1, options=extra).fit(x, y_semi)
        seconds = time.perf_counter() - t0
        proba = clf.predict_proba(x_te)
        results.add({"dataset": a.dataset, "per_class": a.per_class, "seed": seed, "epochs": a.epochs,
                     "accuracy": accuracy_score(y_te, clf.classes_[proba.argmax(1)]),
                     "log_loss": log_loss(y_te, proba, labels=clf.classes_), "seconds": seconds, "set": extra})
    return results.rows


def parse_epochs(text: str) -> int | dict:
    if text.isdigit():
        return int(text)
    return {k: int(v) for k, v in (item.split(":") for item in text.split(","))}


if __name__ == "__main__":
    main()
