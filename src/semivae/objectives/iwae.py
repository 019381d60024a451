"""The importance-weighted bound on log p(x) (Burda et al. 2016), for any model.

    log p(x) >= L_k = E[ log (1/k) sum_s w_s ],   w_s = p(x, latents_s) / q(latents_s | x)

L_1 is the ELBO, L_k does not decrease with k and tends to log p(x). A model supplies
``log_weights(x, k) -> (k, B)``; this module only combines them, in chunks of samples so a
large k (5,000) fits in memory.
"""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def iwae_log_px(model: nn.Module, x: torch.Tensor, k: int, mask: torch.Tensor | None = None,
                max_rows: int = 2**16) -> torch.Tensor:
    """L_k per point, in nats: (B,). ``max_rows`` bounds samples x points per chunk."""
    chunk = max(1, min(k, max_rows // max(len(x), 1)))
    parts = []
    for start in range(0, k, chunk):
        parts.append(torch.logsumexp(model.log_weights(x, min(chunk, k - start), mask).double(), 0))  # (B,)
    return (torch.logsumexp(torch.stack(parts), 0) - math.log(k)).float()
