"""Training: the generic loop, ``train`` (configuration -> run directory), feedback, speed.

The package is also the function: ``semivae.train(dataset="digits", ...)`` calls
:func:`semivae.train.training.train`, while ``semivae.train.trainer`` and the other modules
stay importable under their own names (a plain function here would hide the package).
"""

import inspect
import sys
import types

from .loop import Interrupted, fit
from .trainer import TrainingDiverged
from .training import resume, train


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
__signature__ = inspect.signature(train)
__doc__ = f"{__doc__}\nsemivae.train{__signature__}\n\n{inspect.getdoc(train)}\n"  # help(semivae.train) shows it

__all__ = ["Interrupted", "TrainingDiverged", "fit", "resume", "train"]
