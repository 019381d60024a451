"""Distillation (issue 15): conv students taught by kept runs (``semivae distill``), scored
beside their teachers, and where their test predictions part.

    # the student of each draw's kept runs (quality.py classify --keep), one --group per draw
    SEMIVAE_DATA=../shared/datasets python benchmarks/distill.py students \
        --group bench-results/runs/member-100-{0,100,200} --draws 0 --epochs 10 --tag student \
        --set threads=1 augment_flip=true --keep bench-results/students --out bench-results/students.json
    # a screen on the budget's validation labels (teachers trained with --val-labels; the test split untouched)
    python benchmarks/distill.py students --group bench-results/t/default-1000-0 --split val --tag weak ...
    # of the teachers' test errors, the share a student fixes; of their right answers, the share it loses
    python benchmarks/distill.py agree --group bench-results/students/student-0 \
        bench-results/runs/member-100-{0,100,200} --out bench-results/agree.json
    # pi averaged with pi of the mirrored image (test-time views), on val budget labels or test
    python benchmarks/distill.py mirror --runs bench-results/students/student-0 --split test --out bench-results/m.json
    # the runs' class marginal on their training images balanced to the budget labels' (prior correction)
    python benchmarks/distill.py balance --group bench-results/students/student-0 --out bench-results/b.json

Rows are appended as runs finish (a restart skips them) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import semivae
from semivae.eval.metrics import accuracy, log_loss
from results_file import ResultsFile, grouped, parse_set


def split_points(run, split: str):
    """The test split, or the budget's validation labels alone (``val``)."""
    if split == "test":
        return run.split_data("test")
    rows = np.flatnonzero(np.isin(run.split.val, run.split.val_labelled[0]))  # (V,) the budget's val labels
    if not len(rows):
        raise SystemExit("--split val needs runs trained with --val-labels")
    return run.split_data("val").take(torch.from_numpy(rows))


def scored(paths: list, split: str) -> dict:
    """The runs' (averaged) scores on the test split, or on the budget's validation labels alone
    (``val``: the points of ``--val-labels``, never the carve's other labels)."""
    if split == "test":
        return semivae.evaluate(paths)
    from semivae.eval.ensemble import evaluate_members

    runs = [semivae.load(p) for p in paths]
    return evaluate_members(runs, [split_points(runs[0], split)] * len(runs), "val")


def students(a, extra: dict) -> list[dict]:
    """A student per ``--group`` of kept teacher runs (``semivae distill``), seeded by ``--draws``
    (default: the group's index), scored beside its teachers' ensemble (or single teacher) on
    ``--split`` (``val`` for a screen on the budget's validation labels)."""
    results = ResultsFile(a.out, vars(a))
    done = {(r["tag"], r["draw"]) for r in results.rows}
    draws = a.draws or list(range(len(a.group)))
    for draw, group in zip(draws, a.group):
        if (a.tag, draw) in done:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(a.keep) / f"{a.tag}-{draw}" if a.keep else Path(tmp) / "r"
            t0 = time.perf_counter()
            run = semivae.distill(group, out=out, progress=False, seed=draw, epochs=a.epochs, **extra)
            seconds = time.perf_counter() - t0
            res, teacher = scored([run], a.split), scored(group, a.split)
            results.add({"tag": a.tag, "draw": draw, "split": a.split, "teachers": group, "epochs": a.epochs,
                         "set": extra,
                         "teacher_accuracy": teacher["accuracy"], "teacher_log_loss": teacher["log_loss"],
                         "accuracy": res["accuracy"], "log_loss": res["log_loss"], "ece": res["ece"],
                         "seconds": seconds})
    return results.rows


def agree(a, extra: dict) -> list[dict]:
    """Where a student's test predictions part from its teachers': of the teachers' errors, the
    share it gets right; of their right answers, the share it gets wrong. ``--group STUDENT
    TEACHER [TEACHER ...]`` per draw."""
    from semivae.eval.ensemble import average, member_outputs

    def predicted(paths: list[str]) -> np.ndarray:  # the runs' averaged test probabilities' argmax
        runs = [semivae.load(p) for p in paths]
        return average([member_outputs(r, r.split_data("test"))["proba"] for r in runs])["label"].argmax(1)

    results = ResultsFile(a.out, vars(a))
    for draw, (student, *teachers) in enumerate(a.group):
        y = semivae.load(student).split_data("test").labels[:, 0].numpy()
        s, t = predicted([student]), predicted(teachers)
        wrong = t != y
        results.add({"tag": a.tag, "draw": draw, "student": student, "teachers": teachers,
                     "agreement": float(np.mean(s == t)), "fixed": float(np.mean(s[wrong] == y[wrong])),
                     "broken": float(np.mean(s[~wrong] != y[~wrong])), "teacher_errors": int(wrong.sum())})
    return results.rows


@torch.no_grad()
def mirror(a, extra: dict) -> list[dict]:
    """Each run's accuracy and log loss from pi (softmax of the logits, uncalibrated) and from pi
    averaged with pi of the left-right mirrored image, on ``--split``."""
    results = ResultsFile(a.out, vars(a))
    for path in a.runs:
        run = semivae.load(path)
        run.model.eval()
        data = split_points(run, a.split)
        y = data.labels[:, 0].numpy()
        row, head = {"run": path, "split": a.split, "n": len(y)}, run.model.heads[0].name
        probs: dict[str, list] = {"": [], "_with_mirror": []}
        for i in range(0, len(y), 2048):
            x = data.inputs(torch.arange(i, min(i + 2048, len(y))))  # (B, C, H, W)
            plain = run.model.inference(x, sample=False).logits[head].softmax(-1)  # (B, K)
            mirrored = run.model.inference(x.flip(-1), sample=False).logits[head].softmax(-1)
            probs[""].append(plain)
            probs["_with_mirror"].append((plain + mirrored) / 2)
        for name, parts in probs.items():
            p = torch.cat(parts).numpy()  # (N, K)
            row["accuracy" + name], row["log_loss" + name] = accuracy(y, p), log_loss(y, p)
        results.add(row)
    return results.rows


def balance(a, extra: dict) -> list[dict]:
    """Prior correction (Saerens et al. 2002, without EM's prior re-estimation): class weights w (K,)
    such that the runs' averaged probabilities, reweighted, average to the budget labels' class
    frequencies f over the training images (no test label read):
        p'(y | x) = w_y p(y | x) / sum_k w_k p(k | x),   mean_n p'(. | x_n) = f   (iterative scaling)
    then test accuracy with and without w. ``--group RUN [RUN ...]`` per draw."""
    from semivae.eval.ensemble import average, member_outputs

    results = ResultsFile(a.out, vars(a))
    for draw, group in enumerate(a.group):
        runs = [semivae.load(p) for p in group]
        train, test, split = runs[0].split_data("train"), runs[0].split_data("test"), runs[0].split
        p_train = average([member_outputs(r, train)["proba"] for r in runs])["label"]  # (N, K), the carve left out
        p_test, y = average([member_outputs(r, test)["proba"] for r in runs])["label"], test.labels[:, 0].numpy()
        budget = runs[0].dataset().train.labels[split.labelled[0], 0].numpy()  # the labels trained on
        f = np.bincount(budget, minlength=p_train.shape[1]) + 1.0
        f /= f.sum()  # (K,) the budget labels' frequencies (add-one, so no class is ruled out)
        w = np.ones_like(f)
        for _ in range(500):
            q = p_train * w
            w *= f / (q / q.sum(1, keepdims=True)).mean(0)
        balanced = p_test * w / (p_test @ w)[:, None]  # (N, K)
        results.add({"draw": draw, "runs": group, "marginal": p_train.mean(0).tolist(), "weights": w.tolist(),
                     "accuracy": accuracy(y, p_test), "balanced_accuracy": accuracy(y, balanced)})
    return results.rows


def table(rows: list[dict], command: str) -> str:
    if command == "balance":
        return "\n".join(f"draw {r['draw']}: {r['accuracy']:.4f} -> {r['balanced_accuracy']:.4f} (largest weight "
                         f"{max(r['weights']):.3g}, smallest class share {min(r['marginal']):.3f})" for r in rows)
    if command == "mirror":
        return "\n".join(f"{r['run']}: {r['accuracy']:.4f} / {r['log_loss']:.3f} -> {r['accuracy_with_mirror']:.4f} / "
                         f"{r['log_loss_with_mirror']:.3f} ({r['split']}, {r['n']} points)" for r in rows)
    if command == "agree":
        lines = ["| configuration | draws | agreement with the teachers | teachers' errors fixed | "
                 "right answers lost |", "|---|---|---|---|---|"]
        for tag, rs in grouped(rows, "tag"):
            lines.append(f"| {tag} | {len(rs)} | " + " | ".join(f"{np.mean([r[k] for r in rs]):.3f}"
                                                            for k in ("agreement", "fixed", "broken")) + " |")
        return "\n".join(lines)
    if command == "students":
        lines = ["| configuration | draws | teacher accuracy | student accuracy | per draw | log loss (teacher) | "
                 "ECE | s / run |", "|---|---|---|---|---|---|---|---|"]
        for tag, rs in grouped(rows, "tag"):
            acc, tea = np.array([r["accuracy"] for r in rs]), np.array([r["teacher_accuracy"] for r in rs])
            lines.append(f"| {tag} | {len(rs)} | {tea.mean():.4f} ± {tea.std():.4f} | "
                         f"{acc.mean():.4f} ± {acc.std():.4f} | {' / '.join(f'{v:.4f}' for v in acc)} | "
                         f"{np.mean([r['log_loss'] for r in rs]):.2f} "
                         f"({np.mean([r['teacher_log_loss'] for r in rs]):.2f}) | "
                         f"{np.mean([r['ece'] for r in rs]):.3f} | {np.mean([r['seconds'] for r in rs]):.0f} |")
        return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("students")
    d.add_argument("--group", nargs="+", action="append", required=True, help="one draw's teacher runs (repeat)")
    d.add_argument("--draws", type=int, nargs="+", default=None, help="each group's draw, the student's seed")
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--tag", default="student")
    d.add_argument("--split", choices=["test", "val"], default="test", help="the split scored (val: a screen)")
    d.add_argument("--keep", default=None, help="folder to keep each student in (default: thrown away)")
    d.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra distill options")
    ag = sub.add_parser("agree")
    ag.add_argument("--group", nargs="+", action="append", required=True, help="STUDENT TEACHER [TEACHER ...] (repeat)")
    ag.add_argument("--tag", default="student")
    m = sub.add_parser("mirror")
    m.add_argument("--runs", nargs="+", required=True, help="kept runs of image classifiers")
    m.add_argument("--split", choices=["test", "val"], default="test")
    b = sub.add_parser("balance")
    b.add_argument("--group", nargs="+", action="append", required=True, help="one draw's runs (repeat)")
    for q in (d, ag, m, b):
        q.add_argument("--out", required=True)
    a = p.parse_args()
    command = {"students": students, "agree": agree, "mirror": mirror, "balance": balance}[a.command]
    rows = command(a, parse_set(getattr(a, "set", [])))
    print(table(rows, a.command))


if __name__ == "__main__":
    main()
