"""Score kept anomaly runs again after a score changed: compute named scores afresh (a new score,
such as ``energy`` in session 31) and, optionally, ``latent_nll`` with the class latents refitted
(one Gaussian per class as before session 30, or the BIC-chosen mixtures of the library now).

    python benchmarks/anomaly_rescore.py bench-runs/mnist-* --scores energy --out bench-results/energy
    python benchmarks/anomaly_rescore.py bench-runs/mnist-* --refit-latents --components 1 \
        --out bench-results/one-gaussian
    python benchmarks/anomaly_combine.py bench-results/energy --dataset mnist

Reads runs that ``benchmarks/anomaly.py --keep-runs DIR`` trained and scored (their
``anomaly_scores.npz``; ``--base DIR`` reads that file from DIR/RUN instead, e.g. an earlier
rescoring's output), computes the scores (and any part of ``combined`` the file lacks) for the
same validation and test points and writes OUT/RUN/anomaly_scores.npz with them added or
replaced and ``combined`` recomputed from the parts the library averages now, standardised by
the validation points as the library does, for ``anomaly_combine.py``. The runs are not changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import semivae
from semivae.atomic import write_npz
from semivae.data import ArrayData
from semivae.eval.latents import training_codes
from semivae.eval.scores import available_scores, combine_stats, combined_parts, combined_score, compute_scores
from semivae.models.latents import COMPONENTS, fit_class_latents


def scored_splits(run) -> list[tuple[str, ArrayData]]:
    """The points ``semivae anomaly`` scored: its normal validation split and the anomaly test split."""
    bundle = run.dataset()
    return [("val", bundle.train.take(torch.from_numpy(run.split.val))), ("test", bundle.test)]


def read_scores(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def write_scores(path: Path, z: dict[str, np.ndarray]) -> None:
    """``z`` as an .npz file at ``path`` (its folder made), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_npz(path, **z)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--scores", nargs="+", default=[], help="scores to compute afresh (library names)")
    ap.add_argument("--refit-latents", action="store_true", help="refit the class latents and score latent_nll again")
    ap.add_argument("--components", type=int, nargs="+", default=list(COMPONENTS), help="mixture sizes BIC picks from")
    ap.add_argument("--base", help="read RUN/anomaly_scores.npz from this folder instead of the run's own")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    names = list(dict.fromkeys(a.scores + (["latent_nll"] if a.refit_latents else [])))
    if not names:
        ap.error("nothing to score: give --scores NAME ... and/or --refit-latents")
    for path in map(Path, a.runs):
        source = (Path(a.base) / path.name if a.base else path) / "anomaly_scores.npz"
        target = Path(a.out) / path.name / "anomaly_scores.npz"
        if target.is_file() or not source.is_file():
            continue
        run = semivae.load(path)
        model = run.model
        if a.refit_latents:
            model.class_latents = fit_class_latents(*training_codes(run), tuple(a.components))
        z = read_scores(source)
        parts = combined_parts(available_scores(model), model.spec.kind)
        todo = names + [n for n in parts if f"val_{n}" not in z and n not in names]
        torch.manual_seed(0)
        for split, data in scored_splits(run):
            z.update({f"{split}_{n}": s for n, s in compute_scores(model, data, todo).items()})
        if "val_combined" in z:  # the library's parts now, standardised by the validation points
            stats = combine_stats({k[4:]: v for k, v in z.items() if k.startswith("val_")}, parts)
            for split in ("val", "test"):
                z[f"{split}_combined"] = combined_score({p: z[f"{split}_{p}"] for p in stats}, stats)
        write_scores(target, z)
        sizes = (model.class_latents.weight > 0).sum(1).tolist() if a.refit_latents else ""
        print(path.name, *todo, sizes, flush=True)


if __name__ == "__main__":
    main()
