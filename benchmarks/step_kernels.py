"""One training step of the dense default on MNIST-shaped batches (128: 64 unlabelled, 64
labelled, as the 1:1 sampler gives), with semivae's CPU kernels (nn/dropout.py's mask, the
fused Adam of train/trainer.py, the consistency term's affine_grid) against PyTorch's reference
ones (``nn.Dropout``, per-tensor Adam, ``F.affine_grid``). The two alternate in blocks within one
process, since these machines' speed drifts from minute to minute; the median block is reported
(docs/benchmarks.md section 3).

    python benchmarks/step_kernels.py --threads 2 --blocks 6 --steps 50
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from semivae.config import resolve
from semivae.models import build_model
from semivae.nn import Dropout
from semivae.objectives import consistency
from semivae.train.speed import MNIST_SPEC, mnist_like_batch
from semivae.train.trainer import OPTIMIZERS, make_step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--steps", type=int, default=50)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cfg = resolve({})  # the default preset
    torch.manual_seed(0)
    model = build_model(MNIST_SPEC, cfg.arch, cfg.model)
    ref = copy.deepcopy(model)  # the same weights, its own optimiser state
    t = cfg.train
    ours = (Dropout.forward, consistency.affine_grid)
    pytorch = (torch.nn.Dropout.forward,
               lambda theta, h, w: F.affine_grid(theta, [len(theta), 1, h, w], align_corners=False))
    variants = {  # name -> (step, the dropout forward and the affine grid it runs with)
        "semivae (CPU dropout mask, fused Adam, broadcast affine grid)":
            (make_step(model, OPTIMIZERS["adam"](model.param_groups(t.lr), t)), ours),
        "PyTorch (nn.Dropout, per-tensor Adam, F.affine_grid)":
            (make_step(ref, torch.optim.Adam(ref.param_groups(t.lr), lr=t.lr, weight_decay=t.weight_decay)), pytorch),
    }
    batch = mnist_like_batch(128, "cpu")
    ms: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(a.blocks):
        for name, (step, (dropout, grid)) in variants.items():
            Dropout.forward, consistency.affine_grid = dropout, grid
            for _ in range(5):  # warm-up
                step(batch)
            t0 = time.perf_counter()
            for _ in range(a.steps):
                step(batch)
            ms[name].append((time.perf_counter() - t0) / a.steps * 1e3)
    Dropout.forward, consistency.affine_grid = ours
    print(f"{sum(isinstance(m, Dropout) for m in model.modules())} dropout layers, {a.threads} threads")
    for name, v in ms.items():
        print(f"{name}: {statistics.median(v):.2f} ms/step (blocks: {', '.join(f'{t:.1f}' for t in sorted(v))})")


if __name__ == "__main__":
    main()
