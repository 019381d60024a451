"""semivae: one variational autoencoder for the whole label spectrum.

No labels (a VAE), a few labels (semi-supervised, Berkhahn et al. 2019) or all labels
(supervised), with the same names from Python and from the ``semivae`` command::

    import semivae
    run = semivae.train(dataset="digits", labels="50", epochs=10)
    print(semivae.evaluate(run)["accuracy"])
    proba, classes = semivae.predict(run, "new.npz")
"""

__version__ = "0.1.0"

from .config import RunConfig, resolve  # noqa: E402
from .errors import TrainingDiverged, UserError  # noqa: E402
from .eval import evaluate, predict  # noqa: E402
from .train import load_run, train  # noqa: E402

__all__ = ["RunConfig", "TrainingDiverged", "UserError", "evaluate", "load_run", "predict", "resolve", "train"]
