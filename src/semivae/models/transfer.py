"""Carrying weights from one model into another of a related shape.

``carry_state(old, new)``: every tensor of ``new`` whose name ``old`` also has is copied when
the shapes agree. A 2-D weight that gained input columns (a decoder that now also reads class
probabilities: Berkhahn et al. section 2.4, an unsupervised run reused once labels arrive) keeps
the old columns and starts the new ones at zero, so its output is unchanged at first. With
``grow_rows`` (``semivae feedback``: classes added to a head) a weight or bias that gained
output rows keeps the old ones and the new rows their fresh initialisation. Any other
difference is reported, not guessed at.
"""

from __future__ import annotations

import torch


def carry_state(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor], grow_rows: bool = False
                ) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """(state for the new model, names carried over, 'name: old shape vs new shape' mismatches)."""
    out, carried, mismatched = {}, [], []
    for k, t in new.items():
        t = t.clone()
        if k in old:
            o = old[k].to(t.dtype)
            fits = o.dim() == t.dim() and all(a <= b for a, b in zip(o.shape, t.shape))
            more_inputs = o.dim() == 2 and o.shape[0] == t.shape[0] and o.shape[1] < t.shape[1]
            if o.shape == t.shape:
                t = o.clone()
            elif fits and (more_inputs or grow_rows):
                t[tuple(slice(0, s) for s in o.shape)] = o
                if t.dim() == 2 and t.shape[1] > o.shape[1]:
                    t[:, o.shape[1]:] = 0.0  # new inputs start silent
            else:
                mismatched.append(f"{k}: {tuple(o.shape)} there, {tuple(t.shape)} here")
                out[k] = t
                continue
            carried.append(k)
        out[k] = t
    return out, carried, mismatched
