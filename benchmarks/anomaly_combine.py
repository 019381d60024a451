"""Which combination of anomaly scores to make the default: measured on stored per-point scores.

    python benchmarks/anomaly_combine.py /work/bench/scores --dataset mnist [--out table.json]

Reads the run folders that ``benchmarks/anomaly.py --keep-scores DIR`` or ``--keep-runs DIR``
wrote (validation and test scores of every score, per point; a class's AUROC is the mean over
the seeds found), standardises each score by its normal validation
points (z-scores: no anomaly labels needed) and reports the test AUROC of candidate
combinations per left-out class, their mean and their worst class. Choose on one dataset
(MNIST) and confirm on another (Fashion-MNIST) to keep the choice honest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from semivae.eval.metrics import auroc

CANDIDATES = {
    "complexity+entropy": ("mean", ("complexity", "entropy")),
    "neg_elbo+entropy": ("mean", ("neg_elbo", "entropy")),
    "neg_elbo+complexity+entropy": ("mean", ("neg_elbo", "complexity", "entropy")),
    "max(neg_elbo,complexity,entropy)": ("max", ("neg_elbo", "complexity", "entropy")),
    "neg_elbo+complexity": ("mean", ("neg_elbo", "complexity")),
    "max(neg_elbo,complexity)": ("max", ("neg_elbo", "complexity")),
    # with the class latents' score (runs from commit fcd3faf on)
    "neg_elbo+complexity+entropy+latent_nll": ("mean", ("neg_elbo", "complexity", "entropy", "latent_nll")),
    "neg_elbo+complexity+latent_nll": ("mean", ("neg_elbo", "complexity", "latent_nll")),
    "complexity+latent_nll": ("mean", ("complexity", "latent_nll")),
    "complexity+entropy+latent_nll": ("mean", ("complexity", "entropy", "latent_nll")),
    # with the nearest-neighbour score (runs scored from session 25 on)
    "neg_elbo+complexity+entropy+latent_nll+knn": ("mean", ("neg_elbo", "complexity", "entropy", "latent_nll", "knn")),
    "neg_elbo+complexity+entropy+knn": ("mean", ("neg_elbo", "complexity", "entropy", "knn")),
    "complexity+entropy+latent_nll+knn": ("mean", ("complexity", "entropy", "latent_nll", "knn")),
    "complexity+entropy+knn": ("mean", ("complexity", "entropy", "knn")),
    "complexity+knn": ("mean", ("complexity", "knn")),
    "entropy+knn": ("mean", ("entropy", "knn")),
    "neg_elbo+complexity+knn": ("mean", ("neg_elbo", "complexity", "knn")),  # what a plain VAE could use
    "neg_elbo+knn": ("mean", ("neg_elbo", "knn")),
    # the class layer's free energy in place of its entropy (runs scored from session 31 on)
    "complexity+energy+latent_nll+knn": ("mean", ("complexity", "energy", "latent_nll", "knn")),
    "complexity+energy+knn": ("mean", ("complexity", "energy", "knn")),
    "complexity+entropy+energy+latent_nll+knn": ("mean", ("complexity", "entropy", "energy", "latent_nll", "knn")),
    "complexity+one_minus_max_pi+latent_nll+knn": ("mean", ("complexity", "one_minus_max_pi", "latent_nll", "knn")),
    "energy+knn": ("mean", ("energy", "knn")),
    "neg_elbo+complexity+energy+latent_nll": ("mean", ("neg_elbo", "complexity", "energy", "latent_nll")),
    # tables (session 43): complexity applies to images only
    "energy+latent_nll+knn": ("mean", ("energy", "latent_nll", "knn")),
    "neg_elbo+energy+latent_nll+knn": ("mean", ("neg_elbo", "energy", "latent_nll", "knn")),
    "neg_elbo+energy+latent_nll": ("mean", ("neg_elbo", "energy", "latent_nll")),
}

_NOW = ("complexity", "energy", "latent_nll")
EXPLORE = {  # with anomaly_explore.py's scores (--extra)
    "complexity+energy+latent_nll+knn+maha": ("mean", _NOW + ("knn", "maha")),
    "complexity+energy+maha+knn": ("mean", ("complexity", "energy", "maha", "knn")),
    "complexity+energy+latent_nll+maha": ("mean", _NOW + ("maha",)),
    **{f"complexity+energy+latent_nll+knn{k}": ("mean", _NOW + (f"knn{k}",)) for k in (1, 5, 20, 50)},
}


def standardise(ref: np.ndarray, x: np.ndarray, norm: str = "z") -> np.ndarray:
    """A part's scores ``x`` against its normal validation scores ``ref``: "z" (the library's
    ``combined``), "robust" (median and interquartile range / 1.349), or "tail" (-log of the share
    of ``ref`` at or above x, and past ref's largest value the z-score's excess over it)."""
    if norm == "robust":
        q1, med, q3 = np.percentile(ref, [25, 50, 75])
        return (x - med) / max((q3 - q1) / 1.349, 1e-12)
    std = max(ref.std(), 1e-12)
    if norm == "tail":
        r = np.sort(ref)
        share = (len(r) - np.searchsorted(r, x, side="left") + 0.5) / (len(r) + 1)
        return -np.log(share) + np.maximum((x - r[-1]) / std, 0)
    return (x - ref.mean()) / std


def combine(z: dict[str, np.ndarray], how: str, parts: tuple[str, ...], split: str,
            norm: str = "z") -> np.ndarray | None:
    if not all(f"{split}_{p}" in z for p in parts):
        return None
    cols = [standardise(z[f"val_{p}"], z[f"{split}_{p}"], norm) for p in parts]
    return np.max(cols, 0) if how == "max" else np.mean(cols, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--extra", action="store_true", help="also anomaly_explore.py's candidates")
    ap.add_argument("--out", help="also write each class's AUROC per candidate as JSON (appended under --dataset)")
    ap.add_argument("--normalise", choices=("z", "robust", "tail"), default="z",
                    help="how each part is put on one scale before the mean (standardise); z is the library's")
    a = ap.parse_args()
    candidates = CANDIDATES | (EXPLORE if a.extra else {})
    runs = sorted(Path(a.folder).glob(f"{a.dataset}-*"))
    per_seed: dict[tuple[str, str], list[dict[str, float]]] = {}  # (mode, class) -> one row per seed
    for run in runs:
        if not (run / "anomaly_scores.npz").is_file():
            continue
        cls, mode = run.name[len(a.dataset) + 1:].split("-")[:2]
        with np.load(run / "anomaly_scores.npz") as f:
            z = {k: f[k] for k in f.files}
        flags = z["is_anomaly"]
        row = {s[5:]: auroc(flags, z[s]) for s in z if s.startswith("test_")}
        for name, (how, parts) in candidates.items():
            c = combine(z, how, parts, "test", a.normalise)
            if c is not None:
                row[name] = auroc(flags, c)
        per_seed.setdefault((mode, cls), []).append(row)
    table = {k: {n: float(np.mean([r[n] for r in rows if n in r])) for n in set().union(*rows)}
             for k, rows in per_seed.items()}  # each class's AUROC: the mean over its seeds
    if a.out:
        out = Path(a.out)
        stored = json.loads(out.read_text()) if out.is_file() else {}
        stored[a.dataset] = {f"{m}/{c}": {n: round(v, 4) for n, v in sorted(r.items())} for (m, c), r in table.items()}
        stored[a.dataset]["seeds"] = {f"{m}/{c}": len(v) for (m, c), v in per_seed.items()}
        out.write_text(json.dumps(stored, indent=1))
    for mode in sorted({m for m, _ in table}):
        rows = {c: r for (m, c), r in table.items() if m == mode}
        names = sorted({n for r in rows.values() for n in r}, key=lambda n: -np.mean([r.get(n, np.nan) for r in rows.values()]))
        seeds = {len(v) for (m, _), v in per_seed.items() if m == mode}
        print(f"\n{a.dataset}, {mode}, {len(rows)} classes, {'/'.join(map(str, sorted(seeds)))} seeds each: "
              "mean AUROC (worst class)")
        for n in names:
            v = np.array([r.get(n, np.nan) for r in rows.values()])
            print(f"  {n:<36} {np.nanmean(v):.3f} ({np.nanmin(v):.3f})   " +
                  " ".join(f"{c}:{r.get(n, np.nan):.3f}" for c, r in sorted(rows.items())))


if __name__ == "__main__":
    main()
