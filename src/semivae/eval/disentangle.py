"""``semivae disentangle RUN``: the disentanglement metrics of a run's latent space.

The representation is the mean of q(z|x); the factors come from the run's data set
(``semivae.data.factors``: the dSprites generator, or a data set whose labels form a complete
grid of factors). Results go to ``RUN/disentanglement.json``, with the factor each latent
dimension captures best (by normalised mutual information), which the report's traversal
labels its rows with.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_atomic
from ..data.factors import bundle_sampler
from ..errors import UserError
from ..models import model_device
from ..runs import Run, as_run
from .disentanglement import HEADLINE, METRICS, mig


def representation_fn(model, device: torch.device | str = "cpu"):
    """x -> the mean of q(z|x) as a numpy array (N, D)."""
    @torch.no_grad()
    def represent(x: torch.Tensor) -> np.ndarray:
        return model.inference(x.to(device), sample=False).mu.float().cpu().numpy()
    return represent


# the number of points each metric draws (disentanglement_lib uses 10,000 for most); ``scale`` multiplies them
SIZES = {"beta_vae": {"n_train": 1000, "n_eval": 1000}, "factor_vae": {"n_train": 1000, "n_eval": 500, "n_variance": 5000},
         "mig": {"n": 5000}, "dci": {"n_train": 2000, "n_test": 1000}}


def disentangle(run: Run | str | Path, metrics: list[str] | None = None, *, seed: int = 0, scale: float = 1.0,
                data_dir: str | None = None, device: str | None = None) -> dict:
    run = as_run(run, device)
    device = model_device(run.model)
    names = metrics or list(METRICS)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    if not scale > 0:
        raise UserError(f"--scale {scale} must be > 0; 1 is the default number of points per metric")
    if not run.model.has_decoder:
        raise UserError(f"run {run.path} has no latent space (a supervised classifier); disentangle a run with a decoder")
    sampler = bundle_sampler(run.dataset(data_dir))
    model = run.model.eval()
    represent = representation_fn(model, device)
    torch.manual_seed(seed)
    res: dict = {"factors": list(sampler.factor_names), "seed": seed, "scale": scale}

    def sizes(name):
        return {k: max(20, int(round(v * scale))) for k, v in SIZES[name].items()}
    for name in names:
        res[name] = METRICS[name](sampler, represent, np.random.default_rng(seed), **sizes(name))
    info = res["mig"] if "mig" in res else mig(sampler, represent, np.random.default_rng(seed), **sizes("mig"))
    res["dims"] = [{"dim": d, "factor": sampler.factor_names[f], "normalized_mi": float(v)}
                   for d, (f, v) in enumerate(zip(info["best_factor_per_dim"], info["normalized_mi_per_dim"]))]
    res["headline"] = {name: res[name][HEADLINE[name]] for name in names}
    _keep_earlier(res, load_disentanglement(run.path))
    write_atomic(run.path / "disentanglement.json", json.dumps(res, indent=1))
    return res


def _keep_earlier(res: dict, earlier: dict | None) -> None:
    """Metrics of an earlier ``disentangle`` on the same run, seed and scale that this one did not
    recompute stay in the file (``--metrics mig`` after a full run keeps the other three)."""
    if not earlier or (earlier.get("seed"), earlier.get("scale")) != (res["seed"], res["scale"]):
        return
    for name in METRICS:
        if name not in res and name in earlier and name in earlier.get("headline", {}):
            res[name] = earlier[name]
            res["headline"][name] = earlier["headline"][name]
    res["headline"] = {name: res["headline"][name] for name in METRICS if name in res["headline"]}


def load_disentanglement(path: Path) -> dict | None:
    f = Path(path) / "disentanglement.json"
    return json.loads(f.read_text()) if f.is_file() else None
