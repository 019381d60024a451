"""semivae: one variational autoencoder for the whole label spectrum.

No labels (a VAE), a few labels (semi-supervised, Berkhahn et al. 2019) or all labels
(supervised), with the same names from Python and from the ``semivae`` command::

    import semivae
    run = semivae.train(dataset="digits", labels="50", epochs=10)
    print(semivae.evaluate(run)["accuracy"])
    proba, classes = semivae.predict(run, "new.npz")

``semivae.train`` is both the function above and the package of the training code
(``semivae.train.trainer``, ...); ``semivae.load_run(path)`` gives the loaded run object
that ``evaluate``, ``predict`` and the figures take.
"""

__version__ = "0.1.0"

from . import train  # noqa: E402  (the package, callable as the function)
from .config import RunConfig, resolve  # noqa: E402
from .errors import TrainingDiverged, UserError  # noqa: E402
from .eval import evaluate, predict  # noqa: E402
from .runs import Run, load_run  # noqa: E402

__all__ = ["Run", "RunConfig", "TrainingDiverged", "UserError", "evaluate", "load_run", "predict", "resolve", "train"]
