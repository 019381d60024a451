"""Data loading: named data sets (digits, MNIST, Fashion-MNIST) and user files."""

from .dataset import ArrayData, DataBundle
from .idx import read_idx
from .sources import load_dataset, load_inputs

__all__ = ["ArrayData", "DataBundle", "load_dataset", "load_inputs", "read_idx"]
