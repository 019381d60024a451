"""semivae: one variational autoencoder for the whole label spectrum.

No labels (a VAE), a few labels (semi-supervised, Berkhahn et al. 2019) or all labels
(supervised), with the same names from Python and from the ``semivae`` command::

    import semivae
    run = semivae.train(dataset="digits", labels="50", epochs=10)   # or x=array, y=labels (-1 = none)
    print(semivae.evaluate(run)["accuracy"])
    proba, classes = semivae.predict(run, "new.npz")                  # or an array / data frame
    z = semivae.embed(run, x_new)["mu"]
    student = semivae.distill([run, other_run], epochs=10)            # a conv classifier they teach
    detector = semivae.anomaly(x=X, y=y, anomaly_class=7)             # then semivae.score(detector, X_new)

``semivae.train`` is both the function above and the package of the training code
(``semivae.train.trainer``, ...); ``semivae.load(path)`` gives the loaded run object that
``evaluate``, ``predict``, ``embed``, ``score`` and the figures take. The scikit-learn estimator
is ``semivae.sklearn.SemiVAEClassifier``; ONNX export ``semivae.export.export_onnx``.
"""

import importlib as _importlib

from .version import __version__  # noqa: F401  (re-exported)

# name -> (module, attribute; None: the module itself). Imported on first use, so `semivae --version`
# and the modules a script does not touch cost no start-up time (PEP 562).
_EXPORTS = {
    "train": (".train", None),  # the package, callable as the function
    "RunConfig": (".config", "RunConfig"), "resolve": (".config", "resolve"),
    "TrainingDiverged": (".errors", "TrainingDiverged"), "UserError": (".errors", "UserError"),
    "evaluate": (".eval", "evaluate"), "predict": (".eval", "predict"), "score": (".eval.anomaly", "score"),
    "calibrate": (".eval.calibration", "calibrate"), "embed": (".eval.embed", "embed"),
    "impute": (".eval.impute", "impute"), "suggest": (".eval.suggest", "suggest"),
    "Run": (".runs", "Run"), "load_run": (".runs", "load_run"), "load": (".runs", "load_run"),
    "distill": (".train.distill", "distill"), "anomaly": (".train.detector", "anomaly"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'semivae' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = _importlib.import_module(module, __name__)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(_EXPORTS) | {"__version__"})
