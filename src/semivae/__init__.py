"""semivae: one variational autoencoder for the whole label spectrum.

No labels (a VAE), a few labels (semi-supervised, Berkhahn et al. 2019) or all labels
(supervised), with the same names from Python and from the ``semivae`` command::

    import semivae
    run = semivae.train(dataset="digits", labels="50", epochs=10)   # or x=array, y=labels (-1 = none)
    print(semivae.evaluate(run)["accuracy"])
    proba, classes = semivae.predict(run, "new.npz")                  # or an array / data frame
    z = semivae.embed(run, x_new)["mu"]
    student = semivae.distill([run, other_run], epochs=10)            # a conv classifier they teach

``semivae.train`` is both the function above and the package of the training code
(``semivae.train.trainer``, ...); ``semivae.load(path)`` gives the loaded run object that
``evaluate``, ``predict``, ``embed``, ``score`` and the figures take. The scikit-learn estimator
is ``semivae.sklearn.SemiVAEClassifier``; ONNX export ``semivae.export.export_onnx``.
"""

from .version import __version__  # noqa: F401  (re-exported)
from . import train  # noqa: E402  (the package, callable as the function)
from .config import RunConfig, resolve  # noqa: E402
from .errors import TrainingDiverged, UserError  # noqa: E402
from .eval import evaluate, predict  # noqa: E402
from .eval.anomaly import score  # noqa: E402
from .eval.calibration import calibrate  # noqa: E402
from .eval.embed import embed  # noqa: E402
from .eval.impute import impute  # noqa: E402
from .eval.suggest import suggest  # noqa: E402
from .runs import Run, load_run  # noqa: E402
from .train.distill import distill  # noqa: E402

load = load_run

__all__ = ["Run", "RunConfig", "TrainingDiverged", "UserError", "calibrate", "distill", "embed", "evaluate", "impute",
           "load", "load_run", "predict", "resolve", "score", "suggest", "train"]
