"""The training data as the encoder sees it: a bank of top-layer features for nearest-neighbour
anomaly scores (Sun et al. 2022, "Out-of-distribution detection with deep nearest neighbors").

An input is as unusual as its k-th nearest training point is far, both mapped to the unit sphere
by the top encoder layer h (the layer the class heads read):

    score(x) = || u(x) - u(x_(k)) ||,   u(x) = h(x) / ||h(x)||,
    x_(k) = the k-th nearest of the bank {x_i} (the run's training split) to x under that distance

No density is fitted and no labels are needed, so the score sees anomalies that a reconstruction
finds ordinary (simple shapes) wherever the encoder has put them apart from every normal class.
The bank is fitted after training (eval/neighbours.py) and stored in half precision
(``RUN/feature_bank.safetensors``: N x H x 2 bytes, 25 MB for 48,000 MNIST images and H = 256).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

K = 10  # the neighbour whose distance is the score; chosen on MNIST (docs/benchmarks.md section 11)
MAX_POINTS = 50_000  # a larger training split is subsampled to this many (seeded)


def unit_features(h: torch.Tensor) -> torch.Tensor:
    """Top-layer features (B, H) on the unit sphere: (B, H), float32."""
    return F.normalize(h.float(), dim=1)


@dataclass
class FeatureBank:
    """Unit-norm top-layer features of the training points: ``features`` (N, H), half precision."""

    features: torch.Tensor

    def kth_distance(self, h: torch.Tensor, k: int = K, chunk: int = 8192) -> torch.Tensor:
        """Distance from each of ``h`` (B, H), raw top-layer features, to its k-th nearest bank
        point: (B,). The bank is read in chunks, keeping the k best so far."""
        u = unit_features(h)  # (B, H)
        k = min(k, len(self.features))
        best = u.new_empty(len(u), 0)  # (B, <=k) the highest cosine similarities so far
        for start in range(0, len(self.features), chunk):
            sim = torch.cat([best, u @ self.features[start:start + chunk].to(u).T], 1)  # (B, <=k + C)
            best = sim.topk(min(k, sim.shape[1]), dim=1).values
        return (2.0 - 2.0 * best[:, -1]).clamp(min=0.0).sqrt()  # (B,): |u - v|^2 = 2 - 2 cos

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"features": self.features.contiguous()}
