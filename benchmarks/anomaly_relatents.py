"""Score ``latent_nll`` again on kept anomaly runs with their class latents refitted: one Gaussian
per class (as before session 30) or the BIC-chosen mixtures (the library's default now).

    python benchmarks/anomaly_relatents.py bench-runs/mnist-* --components 1 --out bench-results/one-gaussian
    python benchmarks/anomaly_relatents.py bench-runs/mnist-* --out bench-results/mixture
    python benchmarks/anomaly_combine.py bench-results/one-gaussian --dataset mnist   # and mixture

Reads runs that ``benchmarks/anomaly.py --keep-runs DIR`` trained and scored (their
``anomaly_scores.npz``), refits the latents to the training split's codes, recomputes
``latent_nll`` for the same validation and test points and writes OUT/RUN/anomaly_scores.npz
with only that score replaced (and ``combined`` recomputed from its parts, standardised by the
validation points as the library does), for ``anomaly_combine.py``. The runs are not changed.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch

import semivae
from semivae.eval.latents import training_codes
from semivae.eval.scores import combine_stats, combined_score, compute_scores
from semivae.models.latents import COMPONENTS, fit_class_latents


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--components", type=int, nargs="+", default=list(COMPONENTS), help="mixture sizes BIC picks from")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    for path in map(Path, a.runs):
        target = Path(a.out) / path.name / "anomaly_scores.npz"
        if target.is_file() or not (path / "anomaly_scores.npz").is_file():
            continue
        run = semivae.load(path)
        model = run.model
        model.class_latents = fit_class_latents(*training_codes(run), tuple(a.components))
        bundle = run.dataset()
        with np.load(path / "anomaly_scores.npz") as f:
            z = {k: f[k] for k in f.files}
        for split, data in (("val", bundle.train.take(torch.from_numpy(run.split.val))), ("test", bundle.test)):
            z[f"{split}_latent_nll"] = compute_scores(model, data, ["latent_nll"])["latent_nll"]
        if "val_combined" in z:  # the library's own standardisation by the validation points
            stats = combine_stats({k[4:]: v for k, v in z.items() if k.startswith("val_") and k != "val_combined"})
            for split in ("val", "test"):
                z[f"{split}_combined"] = combined_score({p: z[f"{split}_{p}"] for p in stats}, stats)
        target.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **z)
        target.write_bytes(buf.getvalue())
        sizes = (model.class_latents.weight > 0).sum(1).tolist()
        print(path.name, "components", sizes, flush=True)


if __name__ == "__main__":
    main()
