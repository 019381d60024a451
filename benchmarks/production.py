"""From Python into production (issue 14): calibration, active learning, ONNX throughput.

    # ECE before and after temperature scaling, 100 and 1,000 labels, 3 label draws
    SEMIVAE_DATA=../shared/datasets python benchmarks/production.py calibration --dataset mnist \
        --budgets 100 1000 --seeds 0 1 2 --out bench-results/calibration-mnist.json
    # active learning: 1 label per class, then 5 rounds of 20 suggested vs 20 random labels
    python benchmarks/production.py active --dataset mnist --seeds 0 1 2 --out bench-results/active-mnist.json
    # the first budget: 100 typical points of a VAE trained without labels vs 100 random class-balanced labels
    python benchmarks/production.py first --dataset fashion-mnist --n 100 --seeds 0 1 2 --out bench-results/first.json
    # inference throughput, PyTorch vs onnxruntime on CPU
    python benchmarks/production.py onnx --dataset mnist --out bench-results/onnx-speed.json
    python benchmarks/production.py onnx --dataset japanese-vowels --archs recurrent --labels 18 \
        --out bench-results/onnx-speed-seq.json

Calibration: validation labels come from the budget (``--val-labels``: 10 % of it), the
temperature is fitted on them alone, ECE and log loss are measured on the test split.
Active learning: both arms start from the same run (1 label per class, drawn by the seed);
each round adds 20 labels, chosen by ``semivae.suggest`` (uncertainty with diversity) or
uniformly at random among the unlabelled training points, and fine-tunes the previous
round's model (``init_from``) for ``--round-epochs`` epochs; no validation carve, fixed
epochs, nothing tuned on the test split. The first budget (``first``): a VAE trained without
labels (``--mode unsupervised``, ``--vae-epochs``) names ``--n`` typical points
(``semivae.suggest(..., strategy="typical")``) and the model is trained on their labels, against
the same model on ``--n`` labels drawn class-balanced at random by the seed (the draw every other
benchmark uses); both train on every label they have (``--val-labels 0``) for ``--epochs``.
``--arms typical-margin`` adds a third: ``--n`` // 2 typical points (``--typical-share`` of them), the model
trained on them, then the rest of the budget by margin (``strategy="margin"``) and the model trained again
on all of them; its rows also give ``half_accuracy``, the test accuracy of the model margin asked.
Rows are appended as runs finish (a restart skips them) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import semivae
from results_file import ResultsFile, grouped, parse_set


def _train(out: Path, **options) -> tuple[Path, float]:
    t0 = time.perf_counter()
    run = semivae.train(out=out, progress=False, **options)
    return run, time.perf_counter() - t0


def calibration(a, extra: dict) -> list[dict]:
    results = ResultsFile(a.out, vars(a))
    done = {(r["budget"], r["seed"]) for r in results.rows}
    for budget in a.budgets:
        for seed in a.seeds:
            if (budget, seed) in done:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                run, seconds = _train(Path(tmp) / "r", dataset=a.dataset, labels=str(budget), seed=seed,
                                      epochs=a.epochs, val_labels=max(1, budget // 10), calibrate=True, **extra)
                res = semivae.evaluate(run)
            results.add({"dataset": a.dataset, "budget": budget, "seed": seed, "epochs": a.epochs,
                         "val_labels": max(1, budget // 10), "temperature": res["temperature"],
                         "accuracy": res["accuracy"], "ece_before": res["ece_uncalibrated"], "ece_after": res["ece"],
                         "log_loss_before": res["log_loss_uncalibrated"], "log_loss_after": res["log_loss"],
                         "seconds": seconds, "set": extra})
    return results.rows


def _write_ids(path: Path, rows: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row"])
        w.writerows([[int(r)] for r in rows])


def active(a, extra: dict) -> list[dict]:
    results = ResultsFile(a.out, vars(a))
    done = {(r["arm"], r["seed"], r["round"]) for r in results.rows}
    base = {"dataset": a.dataset, "val_fraction": 0.0, **extra}
    for seed in a.seeds:
        if all((arm, seed, r) in done for arm in ("suggest", "random") for r in range(a.rounds + 1)):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            first, seconds = _train(root / "r0", labels_per_class=1, seed=seed, epochs=a.first_epochs, **base)
            acc0 = semivae.evaluate(first)["accuracy"]
            run0 = semivae.load(first)
            for arm in ("suggest", "random"):
                if (arm, seed, 0) not in done:
                    results.add({"dataset": a.dataset, "arm": arm, "seed": seed, "round": 0,
                                 "n_labels": len(run0.split.pool), "accuracy": acc0, "seconds": seconds, "set": extra})
            n_train = len(run0.dataset().train)
            for arm in ("suggest", "random"):
                rng = np.random.default_rng([seed, 1])
                prev, labelled = first, run0.split.pool.copy()
                for r in range(1, a.rounds + 1):
                    t0 = time.perf_counter()
                    if arm == "suggest":
                        new = np.array([s["row"] for s in semivae.suggest(prev, a.per_round)])
                    else:
                        new = rng.choice(np.setdiff1d(np.arange(n_train), labelled), a.per_round, replace=False)
                    labelled = np.union1d(labelled, new)
                    _write_ids(root / f"{arm}{r}.csv", labelled)
                    out, _ = _train(root / f"{arm}{r}", label_ids=str(root / f"{arm}{r}.csv"), seed=seed,
                                    epochs=a.round_epochs, init_from=str(prev), **base)
                    seconds = time.perf_counter() - t0
                    if (arm, seed, r) not in done:
                        results.add({"dataset": a.dataset, "arm": arm, "seed": seed, "round": r,
                                     "n_labels": len(labelled), "accuracy": semivae.evaluate(out)["accuracy"],
                                     "seconds": seconds, "set": extra})
                    if prev != first:
                        shutil.rmtree(prev, ignore_errors=True)
                    prev = out
    return results.rows


def first(a, extra: dict) -> list[dict]:
    results = ResultsFile(a.out, vars(a))
    done = {(r["arm"], r["seed"]) for r in results.rows}
    base = {"dataset": a.dataset, "val_labels": 0, "epochs": a.epochs, **extra}
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(a.keep) if a.keep else Path(tmp)
            vae = None
            for arm in a.arms:
                if (arm, seed) in done:
                    continue
                t0, extra_row = time.perf_counter(), {}
                if arm == "random":
                    run, _ = _train(root / f"random-{seed}", labels=str(a.n), seed=seed, **base)
                    seconds = time.perf_counter() - t0
                else:
                    if vae is None:  # one VAE a seed; its time counts in every arm that reads it
                        vae, vae_seconds = _train(root / f"vae-{seed}", dataset=a.dataset, mode="unsupervised",
                                                  seed=seed, epochs=a.vae_epochs,
                                                  **{k: v for k, v in extra.items() if k == "threads"})
                        t0 = time.perf_counter()
                    n_typical = a.n if arm == "typical" else int(round(a.n * a.typical_share))
                    picked = np.array([s["row"] for s in semivae.suggest(vae, n_typical, strategy="typical")])
                    if arm == "typical-margin":  # half typical, a model trained on them names the other half
                        _write_ids(root / f"half-{seed}.csv", picked)
                        half = semivae.load(_train(root / f"half-{seed}", label_ids=str(root / f"half-{seed}.csv"),
                                                   seed=seed, **base)[0])
                        extra_row["half_accuracy"] = semivae.evaluate(half)["accuracy"]  # the model margin asks
                        extra_row["typical_share"] = a.typical_share
                        more = [s["row"] for s in semivae.suggest(half, a.n - n_typical, strategy="margin")]
                        picked = np.union1d(picked, more)
                    _write_ids(root / f"{arm}-{seed}.csv", picked)
                    run, _ = _train(root / f"{arm}-{seed}", label_ids=str(root / f"{arm}-{seed}.csv"), seed=seed,
                                    **base)
                    seconds = time.perf_counter() - t0 + vae_seconds
                trained = semivae.load(run)
                per_class = np.bincount(trained.dataset().train.labels.numpy()[trained.split.pool, 0],
                                        minlength=trained.model.heads[0].size)
                res = semivae.evaluate(trained)
                results.add({"dataset": a.dataset, "arm": arm, "seed": seed, "n_labels": a.n,
                             "labels_per_class": per_class.tolist(), "accuracy": res["accuracy"],
                             "log_loss": res["log_loss"], "seconds": seconds, **extra_row, "set": extra})
    return results.rows


def onnx_speed(a, extra: dict) -> list[dict]:
    import onnxruntime as ort

    from semivae.export import ExportGraph, export_onnx

    results = ResultsFile(a.out, vars(a))
    with tempfile.TemporaryDirectory() as tmp:
        for arch in a.archs:
            run, _ = _train(Path(tmp) / arch, dataset=a.dataset, arch=arch, labels=a.labels, epochs=1, **extra)
            loaded = semivae.load(run)
            export_onnx(loaded, Path(tmp) / f"{arch}.onnx")
            test = loaded.dataset().test.take(slice(0, a.batch_size))
            feed = {"x": np.asarray(test.stored(), dtype=np.float32)}  # training units
            if test.lengths is not None or arch == "recurrent":  # series: their lengths too
                steps = feed["x"].shape[1]
                feed["lengths"] = np.full(len(test), steps, np.int64) if test.lengths is None else test.lengths.numpy()
            graph = ExportGraph(loaded).eval()
            for threads in a.threads:
                torch.set_num_threads(threads)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
                session = ort.InferenceSession(str(Path(tmp) / f"{arch}.onnx"), opts, providers=["CPUExecutionProvider"])
                tensors = [torch.from_numpy(v) for v in feed.values()]
                engines = {"pytorch": lambda: graph(*tensors), "onnxruntime": lambda: session.run(None, feed)}
                for name, call in engines.items():
                    with torch.no_grad():
                        for _ in range(3):
                            call()
                        t0, n = time.perf_counter(), 0
                        while time.perf_counter() - t0 < a.seconds:
                            call()
                            n += 1
                    rate = n * len(test) / (time.perf_counter() - t0)
                    results.add({"dataset": a.dataset, "arch": arch, "engine": name, "threads": threads,
                                 "batch_size": len(test), "samples_per_s": rate})
    return results.rows


def table(rows: list[dict], command: str) -> str:
    if command == "calibration":
        lines = ["| dataset | labels | draws | accuracy | T | ECE before | ECE after | log loss before | log loss after |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for key in sorted({(r["dataset"], r["budget"]) for r in rows}):
            rs = [r for r in rows if (r["dataset"], r["budget"]) == key]

            def m(f):
                v = np.array([r[f] for r in rs])
                return f"{v.mean():.4f} ± {v.std():.4f}"
            lines.append(f"| {key[0]} | {key[1]} | {len(rs)} | {m('accuracy')} | {m('temperature')} | "
                         f"{m('ece_before')} | {m('ece_after')} | {m('log_loss_before')} | {m('log_loss_after')} |")
        return "\n".join(lines)
    if command == "active":
        lines = ["| dataset | round | labels | suggest | random | draws |", "|---|---|---|---|---|---|"]
        for key in sorted({(r["dataset"], r["round"]) for r in rows}):
            cells = []
            for arm in ("suggest", "random"):
                v = np.array([r["accuracy"] for r in rows if (r["dataset"], r["round"]) == key and r["arm"] == arm])
                cells.append(f"{v.mean():.4f} ± {v.std():.4f}" if len(v) else "")
            n = [r["n_labels"] for r in rows if (r["dataset"], r["round"]) == key]
            draws = len({r["seed"] for r in rows if (r["dataset"], r["round"]) == key})
            lines.append(f"| {key[0]} | {key[1]} | {int(np.mean(n))} | {cells[0]} | {cells[1]} | {draws} |")
        return "\n".join(lines)
    if command == "first":
        lines = ["| dataset | labels | arm | draws | accuracy | per draw | fewest labels of a class |",
                 "|---|---|---|---|---|---|---|"]
        for (dataset, n, arm), rs in grouped(rows, "dataset", "n_labels", "arm"):
            v = np.array([r["accuracy"] for r in rs])
            lines.append(f"| {dataset} | {n} | {arm} | {len(rs)} | {v.mean():.4f} ± {v.std():.4f} | "
                         f"{' / '.join(f'{x:.4f}' for x in v)} | {min(min(r['labels_per_class']) for r in rs)} |")
        return "\n".join(lines)
    return "\n".join(f"{r['arch']} {r['engine']}: {r['samples_per_s']:.0f} samples/s ({r['threads']} threads, "
                     f"batch {r['batch_size']})" for r in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("calibration")
    c.add_argument("--budgets", type=int, nargs="+", default=[100, 1000])
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--epochs", type=int, default=10)
    ac = sub.add_parser("active")
    ac.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ac.add_argument("--rounds", type=int, default=5)
    ac.add_argument("--per-round", type=int, default=20)
    ac.add_argument("--first-epochs", type=int, default=5)
    ac.add_argument("--round-epochs", type=int, default=2)
    f = sub.add_parser("first")
    f.add_argument("--n", type=int, default=100, help="labels in the first budget")
    f.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    f.add_argument("--epochs", type=int, default=20, help="of the model trained on the labels")
    f.add_argument("--vae-epochs", type=int, default=20, help="of the VAE whose latents pick the typical points")
    f.add_argument("--arms", nargs="+", default=["typical", "random"], choices=["typical", "random", "typical-margin"],
                   help="typical-margin: n // 2 typical points, then the rest by margin from a model trained on them")
    f.add_argument("--typical-share", type=float, default=0.5, help="typical-margin: the typical share of --n")
    f.add_argument("--keep", help="keep the runs and label files in this folder")
    o = sub.add_parser("onnx")
    o.add_argument("--archs", nargs="+", default=["dense", "conv"])
    o.add_argument("--labels", default="100", help="the budget of the 1-epoch run timed (e.g. 18 on japanese-vowels)")
    o.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    o.add_argument("--batch-size", type=int, default=256)
    o.add_argument("--seconds", type=float, default=5.0)
    for q in (c, ac, f, o):
        q.add_argument("--dataset", default="mnist")
        q.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra training options")
        q.add_argument("--out", required=True)
    a = p.parse_args()
    command = {"calibration": calibration, "active": active, "first": first, "onnx": onnx_speed}[a.command]
    rows = command(a, parse_set(a.set))
    print(table(rows, a.command))


if __name__ == "__main__":
    main()
