"""Data: named data sets (digits, MNIST, Fashion-MNIST) and user files, label budgets and
splits, and the :class:`Batch` every model takes."""

from .batch import Batch, inputs_batch
from .config import DataConfig
from .dataset import KINDS, ArrayData, DataBundle, LabelColumn, data_kind
from .idx import read_idx
from .inputs import load_inputs
from .sources import load_dataset

__all__ = ["KINDS", "ArrayData", "Batch", "DataBundle", "DataConfig", "LabelColumn", "data_kind", "inputs_batch",
           "load_dataset", "load_inputs", "read_idx"]
