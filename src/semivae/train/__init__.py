"""Training: the generic loop, the run directory, and ``train`` that ties them together."""

from .run import LoadedRun, load_run
from .train import train
from .trainer import TrainingDiverged, fit

__all__ = ["LoadedRun", "TrainingDiverged", "fit", "load_run", "train"]
