"""Does `semivae feedback` make a detector better? A user's marks simulated on the digits.

    python benchmarks/feedback.py --classes 0 1 2 3 4 --seeds 0 1 --out bench-results/feedback-a.json

For each held-out class c and seed s: ``semivae anomaly`` on ``--dataset`` (the bundled digits; ``--anomaly-class c``,
the options in ``--set``), its test split (normal and anomalous points) cut in two halves by a
seeded permutation: the user looks at one half and marks the ``--fp`` normal points the default
score ranks highest (false alarms) and the ``--fn`` anomalous points it ranks lowest (misses);
``semivae feedback`` fine-tunes on them; AUROC is measured on the other half only, before and
after, for the default score and ``neg_elbo``, under each way of adjusting the scores with the
fine-tuned model's probabilities p_fp, p_fn of the two new classes:

    none     the fine-tuned model's scores as they are
    paper    x -> shift + (x - shift) (1 - p_fp) / (1 - p_fn)      (Berkhahn et al. section 5)
    argmax   the same, applied only where the class layer's most probable class is FP / FN
    floor    the same with the lowest normal validation score as shift (the library's is min(0, that)),
             so the factor scales a score's distance above the normal range's floor

The marked half's ranks say whether the marks themselves moved (the marked false alarms' mean
percentile among the eval half's normal points, before and after).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from semivae.eval import metrics
from semivae.eval.anomaly import FN, FP, _proba, evaluate_anomaly
from semivae.eval.scores import available_scores, combine_stats, combined_parts, combined_score, compute_scores
from semivae.runs import load_run
from semivae.train import train
from semivae.train.feedback import feedback

SCORES = ("combined", "neg_elbo")


def raw_scores(path: Path) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray | None, tuple, np.ndarray]:
    """The run's test scores as ``evaluate_anomaly`` computes them, before any feedback adjustment;
    the shifts, the first head's probabilities, its classes and the anomaly flags."""
    run = load_run(path)
    bundle = run.dataset()
    val, test = bundle.train.take(torch.from_numpy(run.split.val)), bundle.test
    names = available_scores(run.model)
    torch.manual_seed(0)
    anomaly = json.loads((path / "anomaly.json").read_text())
    val_s = compute_scores(run.model, val, [n for n in names if n != "combined"], anomaly["samples"], anomaly["iwae_k"])
    combine = combine_stats(val_s, tuple(anomaly["combine"]) if anomaly.get("combine")  # the parts the library used
                            else combined_parts(names, run.model.spec.kind))
    val_s["combined"] = combined_score(val_s, combine)
    test_s = compute_scores(run.model, test, list(SCORES), anomaly["samples"], anomaly["iwae_k"], combine=combine)
    shift = {n: (float(min(0.0, val_s[n].min())), float(val_s[n].min())) for n in SCORES}  # the library's; the floor
    classes = tuple(run.spec.heads[0].classes) if run.spec.heads else ()
    return test_s, shift, _proba(run.model, test), classes, bundle.meta["test_anomalous"]


def adjusted(s: np.ndarray, shift: tuple[float, float], proba: np.ndarray, classes: tuple, how: str) -> np.ndarray:
    if how == "none":
        return s
    p_fp, p_fn = proba[:, classes.index(FP)], proba[:, classes.index(FN)]
    if how == "argmax":
        top = proba.argmax(1)
        p_fp, p_fn = np.where(top == classes.index(FP), p_fp, 0.0), np.where(top == classes.index(FN), p_fn, 0.0)
    factor = (1 - p_fp) / np.clip(1 - p_fn, 1e-6, None)
    if how == "floor":  # measured from the lowest normal validation score: the factor acts on the spread
        return shift[1] + np.clip(s - shift[1], 0, None) * factor + np.clip(s - shift[1], None, 0)
    return shift[0] + (s - shift[0]) * factor


def one(c: int, seed: int, a, tmp: Path) -> dict:
    base = tmp / f"a{c}-{seed}"
    train(dataset=a.dataset, anomaly_class=str(c), seed=seed, out=base, progress=False, threads=1,
          **{k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.set)})
    evaluate_anomaly(base, samples=a.samples, iwae_k=a.iwae_k)
    test_s, shift, _, _, flags = raw_scores(base)
    rng = np.random.default_rng(seed)
    marked_half = np.zeros(len(flags), dtype=bool)
    marked_half[rng.permutation(len(flags))[: len(flags) // 2]] = True
    default = test_s["combined"]
    normal_m, anom_m = np.flatnonzero(marked_half & ~flags), np.flatnonzero(marked_half & flags)
    fp = normal_m[np.argsort(-default[normal_m])[: a.fp]]
    fn = anom_m[np.argsort(default[anom_m])[: a.fn]]
    test = load_run(base).dataset().test
    np.savez(tmp / "fp.npz", x=test.stored()[fp][:, 0])
    np.savez(tmp / "fn.npz", x=test.stored()[fn][:, 0])
    fb = tmp / f"fb{c}-{seed}"
    feedback(base, tmp / "fp.npz", tmp / "fn.npz", out=fb, epochs=a.epochs, progress=False)
    after, shift_a, proba, classes, _ = raw_scores(fb)
    ev = ~marked_half
    row = {"class": c, "seed": seed, "n_eval": int(ev.sum()), "n_eval_anomalous": int((ev & flags).sum())}
    for n in SCORES:
        row[f"{n}/before"] = metrics.auroc(flags[ev], test_s[n][ev])
        for how in ("none", "paper", "argmax", "floor"):
            s = adjusted(after[n], shift_a[n], proba, classes, how)
            row[f"{n}/{how}"] = metrics.auroc(flags[ev], s[ev])
            ref = s[ev & ~flags]
            row[f"{n}/{how}/fp_pct"] = float(np.mean([(ref < v).mean() for v in s[fp]]))  # marked alarms' rank
            row[f"{n}/{how}/fn_pct"] = float(np.mean([(ref < v).mean() for v in s[fn]]))
        ref = test_s[n][ev & ~flags]
        row[f"{n}/before/fp_pct"] = float(np.mean([(ref < v).mean() for v in test_s[n][fp]]))
        row[f"{n}/before/fn_pct"] = float(np.mean([(ref < v).mean() for v in test_s[n][fn]]))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--fp", type=int, default=5, help="false alarms the user marks")
    ap.add_argument("--fn", type=int, default=2, help="misses the user marks")
    ap.add_argument("--epochs", type=int, default=5, help="feedback's fine-tuning epochs")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--iwae-k", type=int, default=100)
    ap.add_argument("--set", nargs="*", default=["label_fraction=0.1", "epochs=20"], help="anomaly run options")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for c in a.classes:
            for s in a.seeds:
                rows.append(one(c, s, a, Path(d)))
                r = rows[-1]
                print(c, s, " ".join(f"{k}={v:.3f}" for k, v in r.items() if "/" in k and "pct" not in k), flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))
    for k in [k for k in rows[0] if "/" in k]:
        print(f"{k:28s} {np.mean([r[k] for r in rows]):.3f}")


if __name__ == "__main__":
    main()
