"""``semivae bench speed``: how close training runs to what the machine's matmul rate allows.

Three figures, measured in one process:

1. the sustained matrix-multiply rate R (GFLOP/s): median time of a 2048^2 matmul, per precision;
2. the training throughput T (samples/s) of a model on MNIST-shaped batches through the
   trainer's own step (``make_step``): by default the dense paper model (784-1024-1024, z=2,
   pi=10, mirrored decoder; RMSprop), or ``--model m2`` etc. at the preset each model's config
   names for it (``speed_preset``: the paper's for semivae, the model's defaults otherwise);
3. the bound B = R / F, where F is the step's matmul FLOPs per sample, counted by
   ``torch.utils.flop_counter`` on one forward + backward pass (so M2's K-fold enumeration
   counts), and the ratio T / B.
"""

from __future__ import annotations

import platform
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..config import resolve
from ..data.batch import Batch
from ..models import Head, ModelSpec, build_model, model_entry
from .trainer import OPTIMIZERS, make_step, resolve_device

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, precision: str, n: int = 2048, seconds: float = 1.0) -> float:
    """Sustained rate of an (n, n) @ (n, n) matmul in GFLOP/s: the median over ``seconds``."""
    a = torch.randn(n, n, device=device, dtype=DTYPES[precision])
    b = torch.randn(n, n, device=device, dtype=DTYPES[precision])
    a @ b
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def training_flops_per_sample(model: nn.Module, batch: Batch) -> float:
    """Matmul (and conv) FLOPs of one forward + backward pass per sample, as counted by
    PyTorch's FlopCounterMode (no input gradient for the first layer, as in training)."""
    with FlopCounterMode(display=False) as counter:
        model(batch).total.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(batch)


MNIST_SPEC = ModelSpec((1, 28, 28), (Head("label", tuple(str(k) for k in range(10))),), "bernoulli", "image")


def bench_model(name: str, device: torch.device | str) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A registry model at its ``speed_preset`` (semivae: the dense paper model)."""
    cfg = resolve({"preset": model_entry(name).config.speed_preset, "model": {"model": name}})
    torch.manual_seed(0)
    model = build_model(MNIST_SPEC, cfg.arch, cfg.model).to(device)
    return model, OPTIMIZERS[cfg.train.optimizer](model.parameters(), cfg.train)


def mnist_like_batch(batch_size: int, device: torch.device | str) -> Batch:
    """Random 28x28 images, the second half of the batch labelled."""
    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 256, (batch_size, 1, 28, 28), generator=g, dtype=torch.uint8).float() / 255).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=g).to(device)
    y = torch.where(torch.arange(batch_size, device=device) >= batch_size // 2, y, -1)
    return Batch(x, y[:, None])


def training_rate(batch_size: int, steps: int, precision: str, device: torch.device, compile: bool,
                  model_name: str = "semivae") -> float:
    """Samples per second of the trainer's step, half the batch labelled."""
    model, optimizer = bench_model(model_name, device)
    step = make_step(model, optimizer, precision, compile)
    batch = mnist_like_batch(batch_size, device)
    for _ in range(5):  # warm-up (and compilation)
        step(batch)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(batch)
    _sync(device)
    return batch_size * steps / (time.perf_counter() - t0)


def speed_benchmark(batch_size: int = 256, steps: int = 30, precision: str = "both", device: str = "auto",
                    compile: str = "both", model: str = "semivae") -> dict:
    dev = resolve_device(device)
    net, _ = bench_model(model, dev)
    flops = training_flops_per_sample(net, mnist_like_batch(batch_size, dev))
    out = {"device": str(dev), "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "batch_size": batch_size, "steps": steps, "model": model,
           "train_gflop_per_sample": flops / 1e9, "results": {}}
    precisions = ("fp32", "bf16") if precision == "both" else (precision,)
    modes = (False, True) if compile == "both" else (compile == "yes",)
    rates = {p: matmul_gflops(dev, p) for p in precisions}  # once per precision
    for p, c in [(p, c) for p in precisions for c in modes]:
        rate = rates[p]
        samples = training_rate(batch_size, steps, p, dev, c, model)
        bound = rate * 1e9 / flops
        out["results"][f"{p} {'compiled' if c else 'eager'}"] = {
            "matmul_gflops": rate, "samples_per_s": samples, "bound_samples_per_s": bound,
            "ratio_to_bound": samples / bound, "achieved_gflops": samples * flops / 1e9}
    return out


def format_speed(res: dict) -> str:
    preset = model_entry(res["model"]).config.speed_preset
    name = f"{res['model']} ({'the paper preset' if preset == 'paper' else 'its defaults'})"
    lines = [f"device {res['device']} ({res['cpu']}, {res['threads']} threads, torch {res['torch']}); "
             f"{name}, batch {res['batch_size']}, {res['train_gflop_per_sample'] * 1e3:.1f} "
             "MFLOP per training sample",
             f"{'step':<16}{'matmul GFLOP/s':>16}{'samples/s':>12}{'bound':>12}{'ratio':>8}"]
    for p, r in res["results"].items():
        lines.append(f"{p:<16}{r['matmul_gflops']:>16.1f}{r['samples_per_s']:>12.0f}"
                     f"{r['bound_samples_per_s']:>12.0f}{r['ratio_to_bound']:>8.1%}")
    return "\n".join(lines)
