"""Run directories, below train/, eval/ and viz/: writing them as training goes, and
loading them into one :class:`Run` that every command after training takes."""

from .run import ARRAYS, REQUIRED, SPLITS, Run, as_run, label_columns, load_run, model_spec, preprocessing, status
from .writer import ELBO_VALIDATION, RunWriter, check_out_dir, check_writable, data_info, default_run_dir, save_weights

__all__ = ["ARRAYS", "ELBO_VALIDATION", "REQUIRED", "SPLITS", "Run", "RunWriter", "as_run", "check_out_dir",
           "check_writable", "data_info", "default_run_dir", "label_columns", "load_run", "model_spec", "preprocessing",
           "save_weights", "status"]
