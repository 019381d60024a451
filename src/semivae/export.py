"""``semivae export RUN --out model.onnx``: a trained run as one ONNX graph (the ``[export]`` extra).

The graph takes ``x``: float32 inputs in the training data's own units, (N, *shape) with
any N (e.g. MNIST pixels 0..255 as (N, 1, 28, 28), table features as in the CSV, NaN where
one is missing; images of a run trained with ``--image-size`` at any height and width, resized
in the graph as ``predict`` resizes files: bilinear, antialiased; series as (N, T, C), padded to
a common T (any T for a recurrent model, the training length for a dense one), NaN where a value
is missing, beside a second input ``lengths`` (N,) int64, their valid steps), applies the run's
normalisation (and, for series, the interpolation of missing values that data/sequences.py
applies), and returns

    proba[_<head>]  (N, K) class probabilities per head (temperature-scaled where calibrated; a
                           class layer per step, ``--preset paper`` on series: its mean over the
                           valid steps, as ``predict`` gives)
    z_mean          (N, D) means of q(z|x); (N, T, D) for a latent per step
    score           (N,)   the negative ELBO with the latents at their means (higher = more
                           unusual; the run's unknown-input score), for models with a decoder
    unknown         (N,)   score above the run's threshold (bool), where the run has one

A recurrent encoder runs in the graph as in the library (``RecurrentEncoder.unpacked``: each
direction once, over the valid steps alone). ``check_export`` runs the file in onnxruntime against
PyTorch.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .atomic import write_atomic
from .data.sequences import fill_gaps
from .errors import UserError
from .models.base import class_probabilities
from .runs import Run, as_run
from .runs.run import preprocessing


class ExportGraph(nn.Module):
    """The run's model, normalisation, temperatures and threshold as one forward(x)."""

    def __init__(self, run: Run):
        super().__init__()
        self.model = run.model
        shift, scale = preprocessing(run.data_info)
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.heads = [h.name for h in run.model.heads]
        self.temperatures = [float(run.temperatures.get(h, 1.0)) for h in self.heads]
        self.has_decoder = run.model.has_decoder
        with torch.no_grad():  # a classifier (finetune, distill) has no q(z|x): no z_mean output
            probe = run.model.inference(torch.zeros(1, *run.spec.data_shape), None, sample=False)
        self.has_latent = probe.mu is not None
        self.vector = run.kind == "vector"  # NaN in a vector = a missing feature, as in the library
        self.sequence = run.kind == "sequence"  # and in a series, a missing value
        size = run.data_info.get("image_size") if run.kind == "image" else None
        self.size = None if not size else (int(size[0]), int(size[-1]))  # (H, W) every input is resized to
        self.threshold = float(run.unknown["threshold"]) if run.unknown and run.unknown["score"] == "neg_elbo_point" \
            else None

    def input_names(self) -> list[str]:
        return ["x", "lengths"] if self.sequence else ["x"]

    def output_names(self) -> list[str]:
        proba = ["proba"] if len(self.heads) == 1 else [f"proba_{h}" for h in self.heads]
        return proba + (["z_mean"] if self.has_latent else []) + (["score"] if self.has_decoder else []) + \
            (["unknown"] if self.threshold is not None else [])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        if self.size is not None:  # (N, C, h, w) any size -> (N, C, H, W), as Pillow's bilinear resize
            x = F.interpolate(x, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        mask = None
        if self.vector:
            mask = ~torch.isnan(x)  # (N, D) the observed features; the missing ones -> the training mean
            x = torch.where(mask, x, self.shift)
        elif self.sequence:  # gaps interpolated, padding 0, as stored; mask (N, T, C) the observed values
            x, mask = fill_gaps(x, lengths, self.shift)
        x = (x - self.shift) * self.scale  # (N, *shape) normalised as in training
        inf = self.model.inference(x, mask, sample=False)
        probas = class_probabilities(inf.logits, mask)  # (N, K) per head; a per-step head's mean over the valid steps
        outs = []
        for name, t in zip(self.heads, self.temperatures):  # softmax(log p / T), as apply_temperature
            outs.append(torch.softmax(probas[name].clamp(min=1e-12).log() / t, -1))
        if self.has_latent:
            outs.append(inf.mu)  # (N, D), or (N, T, D) for per-step latents
        if self.has_decoder:
            log_px, kl = self.model.elbo_terms(x, mask, sample=False)
            score = kl - log_px  # (N,)
            outs.append(score)
            if self.threshold is not None:
                outs.append(score > self.threshold)
        return tuple(outs)


def _onnx():
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError("ONNX export needs the export extra; install it with pip install 'semivae[export]'") from None


def export_onnx(run: Run | str | Path, out: str | Path, *, opset: int = 18) -> dict:
    """Write the run's graph to ``out`` (written whole); returns {inputs, outputs, input_shape, opset}."""
    run = as_run(run)
    if Path(out).suffix.lower() != ".onnx":
        raise UserError(f"--out {out} must end in .onnx; e.g. --out model.onnx")
    _onnx()
    graph = ExportGraph(run).eval()
    batch = torch.export.Dim("batch", min=1)
    example, dims = (torch.zeros(2, *run.spec.data_shape),), ({0: batch},)
    any_steps = graph.sequence and run.config.arch.any_length  # a recurrent net: series of any length
    if graph.sequence:  # and the series' lengths
        example, dims = example + (torch.full((2,), run.spec.data_shape[0]),), dims + ({0: batch},)
    if any_steps:
        dims[0][1] = torch.export.Dim("steps", min=2)
    if graph.size is not None:  # any height and width
        dims[0].update({2: torch.export.Dim("height", min=2), 3: torch.export.Dim("width", min=2)})
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its notes on absent torchvision ops are not ours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, example, input_names=graph.input_names(),
                                        output_names=graph.output_names(), dynamic_shapes=dims, opset_version=opset,
                                        dynamo=True, verbose=False)
    finally:
        quiet.setLevel(level)
    _check_any_batch(program.model.graph.inputs[0].shape[0], run)
    written = program.model.opset_imports.get("", opset)
    if written != opset:  # the exporter could not convert to it and kept its own
        raise UserError(f"--opset {opset} is not one the exporter can write for this model (it gave {written}); "
                        "give 18, the default, or a nearby opset such as 17 or 21")
    buf = io.BytesIO()
    program.save(buf)
    write_atomic(Path(out), buf.getvalue())
    shape = ["N", *run.spec.data_shape] if graph.size is None else ["N", run.spec.data_shape[0], "H", "W"]
    if any_steps:
        shape[1] = "T"
    return {"inputs": graph.input_names(), "outputs": graph.output_names(), "input_shape": shape, "opset": opset}


def _check_any_batch(dim: object, run: Run) -> None:
    """Refuse to write a graph whose batch size ``dim`` (its input's first dimension) was fixed
    while tracing (a model that read ``len(x)`` where ``x.shape[0]`` keeps the size symbolic):
    it would fail on any other N."""
    if isinstance(dim, int):
        raise RuntimeError(f"the ONNX graph of model {run.config.model.model} has a fixed batch size ({dim}); "
                           "its code must keep the batch size symbolic (x.shape[0], not len(x))")


@torch.no_grad()
def check_export(run: Run | str | Path, onnx_path: str | Path, x: np.ndarray,
                 lengths: np.ndarray | None = None) -> dict[str, float]:
    """Per output, the largest difference between onnxruntime and PyTorch on the raw inputs ``x``
    (float32, training units; series with their ``lengths``, all T where None), relative where a
    value is above 1: max |onnx - torch| / max(1, |torch|) (float32 sums of a score in the hundreds
    of nats differ in their last digits, about 1e-7 of the value, as sums in another order do)."""
    import onnxruntime as ort

    run = as_run(run)
    graph = ExportGraph(run).eval()
    feed = {"x": np.asarray(x, dtype=np.float32)}
    if graph.sequence:
        feed["lengths"] = np.full(len(x), x.shape[1], np.int64) if lengths is None else np.asarray(lengths, np.int64)
    expected = [t.float().numpy() for t in graph(*(torch.from_numpy(v) for v in feed.values()))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, feed)
    return {name: float((np.abs(np.asarray(g, dtype=np.float32) - e) / np.maximum(1.0, np.abs(e))).max())
            for name, g, e in zip(graph.output_names(), got, expected)}
