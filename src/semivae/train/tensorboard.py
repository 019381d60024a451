"""Optional TensorBoard logging (``--tensorboard``): every numeric metric of each epoch as a
scalar, and for image models a generated sample grid (one row per class, the same z down
each column). Needs the ``tensorboard`` extra: ``pip install 'semivae[tensorboard]'``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UserError
from ..models import BaseModel
from ..viz.canvas import mosaic
from ..viz.samples import generation_grid, generation_head


def check_available() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package; pip install 'semivae[tensorboard]' "
                        "or drop --tensorboard") from None


class TensorBoardLogger:
    def __init__(self, path: Path, model: BaseModel):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(path))
        self.model, self.step = model, 0

    def epoch(self, row: dict) -> None:
        self.step += 1
        for k, v in row.items():
            if isinstance(v, (int, float)) and k != "epoch":
                self.writer.add_scalar(k, v, self.step)
        if self.model.has_decoder and self.model.spec.kind == "image":
            was = self.model.training
            self.model.eval()
            head = generation_head(self.model)
            grid, _, _ = generation_grid(self.model, 10, list(range(head.size)) if head else None, seed=0)
            self.model.train(was)
            img = torch.from_numpy(mosaic(grid.clamp(0, 1).cpu().numpy()))
            self.writer.add_image("samples", img if img.dim() == 2 else img.permute(2, 0, 1), self.step,
                                  dataformats="HW" if img.dim() == 2 else "CHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
