"""``SemiVAEClassifier``: semivae as a scikit-learn estimator; ``SemiVAEImputer``: its VAE as an imputer.

    from semivae.sklearn import SemiVAEClassifier
    clf = SemiVAEClassifier(epochs=50).fit(X, y)      # y = -1 marks an unlabelled row
    clf.predict(X_new); clf.predict_proba(X_new)      # classes_ order
    clf.transform(X_new)                              # means of q(z|x), (N, latent_dim)
    clf.score_samples(X_new)                          # ELBO at the latent means: higher = more normal
    clf.save("my-run"); SemiVAEClassifier.load("my-run")
    SemiVAEImputer(epochs=200).fit_transform(X_with_nan)   # missing values filled in by the decoder

It follows scikit-learn's semi-supervised convention (``-1`` = unlabelled, as
``SelfTrainingClassifier``), so it fits in a ``Pipeline``, ``cross_val_score`` and
``GridSearchCV``; ``tests/test_sklearn.py`` runs scikit-learn's estimator checks. Each ``fit``
trains one run (``semivae.train``) into ``out`` or a temporary directory that lives as long as
the estimator; the fitted model is held in memory. Options beyond the constructor's go in
``options`` by their CLI names, e.g. ``options={"kl_schedule": "warmup"}``.

X is a 2-D feature matrix (vectors, standardised per feature by the run; NaN marks a missing
feature, which the model reads around, as scikit-learn's ``allow_nan`` estimators do) unless ``input_shape``
is given, e.g. ``(1, 28, 28)`` for flattened MNIST images in [0, 1] or 0..255. For the classifier X may
also hold series: a 3-D array (N, T, C), shorter series padded at the end with NaN, or a list of
(T_i, C) arrays; a NaN inside a series is a missing value. They train the recurrent model (aeon's
(N, C, T) arrays: pass ``X.transpose(0, 2, 1)``; its lists of (C, T_i): ``[s.T for s in X]``); new
series may be of any length.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.metrics import accuracy_score
from sklearn.utils import _safe_indexing
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (_check_feature_names_in, check_array, check_consistent_length,
                                      check_is_fitted, column_or_1d, validate_data)

from .data.arrays import series_lengths
from .data.sequences import pad, valid_steps
from .errors import UserError
from .eval.embed import latent
from .eval.evaluation import predict, read_inputs
from .eval.impute import fill_in
from .eval.scores import compute_scores
from .runs import ARRAYS, load_run
from .train import train

ESTIMATOR_FILE = "sklearn.json"  # in the run directory: the estimator's parameters and fitted attributes
PICKLE_SKIPS = (ARRAYS, "checkpoint.safetensors")  # run files a pickled estimator leaves out: data, optimiser state


class _RunEstimator(BaseEstimator):
    """What the estimators share: each ``fit`` trains one run (``semivae.train``) into ``out`` or a
    temporary directory that lives as long as the estimator; ``save`` copies it, ``load`` reads it."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a NaN feature is missing; the model reads around it
        return tags

    def _fit_run(self, x: np.ndarray, y: np.ndarray | None, settings: dict, lengths: np.ndarray | None = None) -> None:
        """Train into a temporary directory the estimator owns, then copy the run to ``out`` when
        given (replacing an estimator's run there: refits and a search's clones leave the last fit;
        each keeps its own, so its ``save`` and pickle are the model it predicts with)."""
        out = None if self.out is None else Path(self.out)
        if out is not None:
            _check_replaceable(out)
            out.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="semivae-sklearn-")
        try:
            run_dir = train(x=x, y=y, lengths=lengths, out=Path(tmp) / "run", progress=self.verbose, carve_test=False,
                            notes=self.verbose, **{k: v for k, v in settings.items() if v is not None})
            (run_dir / ESTIMATOR_FILE).write_text(json.dumps(self._description()))
            if out is not None:
                _publish(run_dir, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._own(tmp, run_dir)

    def _own(self, tmp: str, run_dir: Path) -> None:
        """Hold the run at ``run_dir``, in a temporary directory ``tmp`` that lives as long as the estimator."""
        self.run_, self.run_dir_ = load_run(run_dir, self.device), str(run_dir)
        self._cleanup = weakref.finalize(self, shutil.rmtree, tmp, True)

    def _description(self) -> dict:
        return {"params": {k: v for k, v in self.get_params().items() if k != "out"},
                "n_features_in": int(self.n_features_in_)}

    def _restore(self, d: dict) -> None:
        """The fitted attributes ``_description`` saved, besides the run."""
        self.n_features_in_ = d["n_features_in"]

    def save(self, path: str | Path) -> Path:
        """Copy the fitted run directory (with this estimator's description) to ``path``."""
        check_is_fitted(self, "run_")
        dest = Path(path)
        if dest.exists():
            raise ValueError(f"{dest} already exists; choose a new path")
        shutil.copytree(self.run_dir_, dest)
        return dest

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu"):
        """The estimator saved at ``path`` (by ``save`` or a ``fit`` with ``out=``), fitted."""
        p = Path(path)
        if not (p / ESTIMATOR_FILE).is_file():
            raise ValueError(f"{p} holds no {ESTIMATOR_FILE}; give a directory that {cls.__name__}.save wrote")
        d = json.loads((p / ESTIMATOR_FILE).read_text())
        params = d["params"]
        if params.get("input_shape") is not None:
            params["input_shape"] = tuple(params["input_shape"])
        est = cls(**{**params, "device": device})
        est._restore(d)
        est.run_, est.run_dir_ = load_run(p, device), str(p)
        return est

    def __getstate__(self):
        """The parameters, fitted attributes and the run's files (weights as safetensors bytes; not
        the training arrays or the checkpoint): a copy restores its own run directory from them."""
        state = self.__dict__.copy()
        state.pop("_cleanup", None)
        if "run_" in state:
            del state["run_"], state["run_dir_"]
            run = Path(self.run_dir_)
            state["_run_files"] = {f.name: f.read_bytes() for f in sorted(run.iterdir())
                                   if f.is_file() and f.name not in PICKLE_SKIPS}
        return state

    def __setstate__(self, state):
        files = state.pop("_run_files", None)
        self.__dict__.update(state)
        if files is not None:
            tmp = tempfile.mkdtemp(prefix="semivae-sklearn-")
            run = Path(tmp) / "run"
            run.mkdir()
            for name, data in files.items():
                (run / name).write_bytes(data)
            _own_arrays(run)
            self._own(tmp, run)


def _own_arrays(run: Path) -> None:
    """A restored copy's config names its own (absent) training arrays, not the original's, which
    live only as long as it does: evaluating the copy on its training split is refused at any time."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if Path(cfg["data"]["dataset"]).name == ARRAYS:
        cfg["data"]["dataset"] = str(run / ARRAYS)
        (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _publish(run_dir: Path, out: Path) -> None:
    """A copy of ``run_dir`` at ``out`` (replacing an estimator's run there), renamed into place whole."""
    staging = Path(tempfile.mkdtemp(prefix=".semivae-sklearn-", dir=out.parent)) / "run"
    try:
        shutil.copytree(run_dir, staging)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)


def _check_replaceable(out: Path) -> None:
    """``out`` may take a new run: it does not exist, is empty, or holds a run an estimator wrote
    (refitting, or a search's clones, replace it: the last fit stays)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (out / ESTIMATOR_FILE).is_file():
        raise UserError(f"output directory {out} already exists and holds no estimator's run; choose a new out")


class SemiVAEClassifier(ClassifierMixin, TransformerMixin, _RunEstimator):
    """A semi-supervised VAE classifier (Berkhahn et al. 2019 by default; ``model`` picks another).

    Parameters mirror ``semivae train``'s options of the same names; ``None`` keeps the
    model's default. ``val_fraction`` is 0 by default so every label is trained on (give it
    with ``val_labels`` and ``calibrate=True`` for temperature-scaled probabilities).
    """

    def __init__(self, model: str = "semivae", mode: str | None = None, epochs: int = 20, batch_size: int = 128,
                 lr: float = 1e-3, latent_dim: int | None = None, hidden: list[int] | None = None,
                 dropout: float | None = None, alpha: float | None = None, beta: float | None = None,
                 val_fraction: float = 0.0, val_labels: int = 0, calibrate: bool = False,
                 input_shape: tuple[int, ...] | None = None, seed: int = 0, threads: int | None = None,
                 device: str = "cpu", out: str | None = None, options: dict | None = None, verbose: bool = False):
        _keep_params(self, locals())

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X, y):
        """Train on X (N, D), or series (N, T, C), with labels y (N,), -1 where unlabelled; returns self."""
        if self.mode == "unsupervised":
            raise ValueError("mode='unsupervised' trains no class layer, so nothing could predict; use mode='semi' "
                             "or 'supervised' (SemiVAEImputer or semivae.train(mode='unsupervised') for a plain VAE)")
        series = _as_series(X, ensure_min_samples=2)
        if series is None:  # y checked below: NaN there marks an unlabelled row, which scikit-learn's checks refuse
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2,
                              ensure_all_finite="allow-nan")
        elif self.input_shape is not None:
            raise ValueError(f"X has shape {series.shape}, series, but input_shape {tuple(self.input_shape)} reads "
                             "flattened rows; give X as (N, D) rows, or drop input_shape for series")
        else:
            X, self.n_features_in_ = series, series.shape[2]  # a series' features are its channels
            if len(y) != len(X):
                raise ValueError(f"y has {len(y)} labels but X has {len(X)} series; give one label per series")
        self.series_ = series is not None
        nullable_int = str(getattr(y, "dtype", "")).startswith(("Int", "UInt"))  # pandas' Int64: NaN-able integers
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        labelled = ~_unlabelled(y)
        if not labelled.any():
            raise ValueError("y has no labelled row (all -1); label at least one row of two classes")
        check_classification_targets(y[labelled])
        negative = y[labelled][y[labelled] < 0] if y.dtype.kind in "iuf" else []
        if len(negative):  # -1 marks an unlabelled row; another negative number is most likely a typo for it
            raise ValueError(f"y holds the label {negative[0].item()!r}; mark unlabelled rows -1 (or NaN), and give "
                             "classes as numbers >= 0 or as text")
        self.classes_ = np.unique(y[labelled]).astype(np.int64 if nullable_int else y.dtype)  # Int64: ints, not floats
        if len(self.classes_) < 2:
            raise ValueError(f"y has 1 class ({self.classes_.tolist()[0]!r}); a classifier needs at least 2 classes")
        codes = np.full(len(y), -1, dtype=np.int64)
        codes[labelled] = np.searchsorted(self.classes_, y[labelled])
        top = float(np.nanmax(X, initial=0.0))
        if self.input_shape is not None and 1 < top < 64:  # never rescaled by guess: 0..16 is not 0..255
            raise ValueError(f"X's pixels go up to {top:g}; with input_shape they are read as floats in [0, 1] or as "
                             f"0..255, so these would be nearly black: pass X / {top:g}")
        self.pixel_max_ = 255.0 if self.input_shape is not None and top > 1 else 1.0
        self._fit_run(self._shaped(X), codes, self._train_options(), series_lengths(X) if self.series_ else None)
        return self

    def _train_options(self) -> dict:
        return {"model": self.model, "mode": self.mode, "epochs": self.epochs,
                "batch_size": self.batch_size, "lr": self.lr, "latent_dim": self.latent_dim, "hidden": self.hidden,
                "dropout": self.dropout, "alpha": self.alpha, "beta": self.beta, "val_fraction": self.val_fraction,
                "val_labels": self.val_labels, "calibrate": self.calibrate, "seed": self.seed,
                "threads": self.threads, "device": self.device, **(self.options or {})}

    def _shaped(self, X: np.ndarray) -> np.ndarray:
        """X as the run's inputs: rows reshaped to ``input_shape`` when given, pixels in [0, 1]
        (divided by 255 where the training pixels went above 1: 0..255 images)."""
        if self.input_shape is None:
            return X
        shape = tuple(int(s) for s in self.input_shape)
        if int(np.prod(shape)) != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but input_shape {shape} holds {int(np.prod(shape))}; "
                             "fix input_shape")
        scale = getattr(self, "pixel_max_", 1.0)
        if hasattr(self, "run_"):  # new inputs must be in the units the estimator was fitted on
            _check_units(X, scale)
        return (X.reshape(len(X), *shape) / scale).astype(np.float32)

    # -- using a fitted model -------------------------------------------------------------
    def _inputs(self, X):
        check_is_fitted(self, "run_")
        if not getattr(self, "series_", False):
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
            return read_inputs(self.run_, self._shaped(X))
        series = _as_series(X, ensure_min_samples=1)
        if series is None:
            raise ValueError(f"X has shape {np.shape(X)} but this classifier was fitted on series; give an (N, T, "
                             f"{self.n_features_in_}) array or a list of (T_i, {self.n_features_in_}) arrays")
        return read_inputs(self.run_, {"x": series, "lengths": series_lengths(series)})

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, n_classes) in ``classes_`` order (calibrated if fitted so)."""
        data = self._inputs(X)
        proba = predict(self.run_, data)[0].astype(np.float64)
        return proba / proba.sum(1, keepdims=True)  # rows sum to 1 in float64 too, as scikit-learn's metrics check

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy on the labelled rows of y; its unlabelled rows (-1, NaN, as in ``fit``) are left
        out, so cross-validation on semi-supervised y scores what it can."""
        y = column_or_1d(y, warn=True)
        keep = np.flatnonzero(~_unlabelled(y))
        if not len(keep):
            raise ValueError("y has no labelled row to score against (all -1); give labels")
        weight = None if sample_weight is None else np.asarray(sample_weight)[keep]
        return float(accuracy_score(y[keep], self.predict(_safe_indexing(X, keep)), sample_weight=weight))

    def transform(self, X) -> np.ndarray:
        """Means of q(z|x): (N, latent_dim)."""
        mu, _ = latent(self.run_, self._inputs(X))
        return mu.reshape(len(mu), -1).astype(np.float64)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``transform``'s column names: z0, z1, ... (so ``set_output(transform="pandas")`` works)."""
        check_is_fitted(self, "run_")
        if not self.run_.model.has_decoder:
            raise AttributeError(f"mode {self.mode!r} has no latent space, so transform has no columns")
        return np.asarray([f"z{i}" for i in range(int(np.prod(self.run_.model.prior_shape)))], dtype=object)

    def score_samples(self, X) -> np.ndarray:
        """The ELBO with the latents at their means, per row (nats; higher = more like the
        training data, as scikit-learn's outlier detectors score): (N,)."""
        data = self._inputs(X)
        if not self.run_.model.has_decoder:
            raise AttributeError(f"model {self.model!r} has no decoder to score inputs with")
        return -compute_scores(self.run_.model, data, ["neg_elbo_point"])["neg_elbo_point"]

    # -- a run directory ------------------------------------------------------------------
    def _description(self) -> dict:
        return {**super()._description(), "classes": self.classes_.tolist(), "classes_dtype": str(self.classes_.dtype),
                "series": self.series_, "pixel_max": self.pixel_max_}

    def _restore(self, d: dict) -> None:
        super()._restore(d)
        self.classes_ = np.asarray(d["classes"], dtype=d["classes_dtype"])
        self.series_ = bool(d.get("series", False))  # estimators saved before series were taken: tables
        self.pixel_max_ = float(d.get("pixel_max", 1.0))  # saved before 0..255 pixels were taken: [0, 1]


class SemiVAEImputer(TransformerMixin, _RunEstimator):
    """Missing values (NaN) filled in by a VAE trained on the rows themselves, gaps and all (the
    plain VAE, ``--mode unsupervised``; ``semivae impute``'s way: each missing value is its mean
    under the decoder, importance-weighted over ``samples`` draws of z ~ q(z | the row's observed
    values); ``samples=0``: the decoder at the mean of q). Observed values pass
    through unchanged; ``y`` is ignored. On the breast cancer table with a fifth of its cells
    missing its values are off by 0.56-0.64 column standard deviations against kNN's 0.88-0.94,
    but scikit-learn's IterativeImputer's by 0.41-0.53 (docs/benchmarks.md, section 11).
    Parameters mirror ``semivae train``'s options."""

    def __init__(self, epochs: int = 200, batch_size: int = 128, lr: float = 1e-3, latent_dim: int | None = None,
                 hidden: list[int] | None = None, dropout: float | None = None, beta: float | None = None,
                 samples: int = 100, seed: int = 0, threads: int | None = None, device: str = "cpu",
                 out: str | None = None, options: dict | None = None, verbose: bool = False):
        _keep_params(self, locals())

    def fit(self, X, y=None):
        """Train the VAE on X (N, D), NaN where a value is missing; returns self."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, ensure_all_finite="allow-nan")
        settings = {"mode": "unsupervised", "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                    "latent_dim": self.latent_dim, "hidden": self.hidden, "dropout": self.dropout, "beta": self.beta,
                    "seed": self.seed, "threads": self.threads, "device": self.device, **(self.options or {})}
        self._fit_run(X.astype(np.float32), None, settings)
        return self

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The input's column names (``transform`` keeps the columns)."""
        check_is_fitted(self, "run_")
        return _check_feature_names_in(self, input_features)

    def transform(self, X) -> np.ndarray:
        """X with every NaN replaced by the model's value: (N, D), X's dtype."""
        check_is_fitted(self, "run_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan")
        gaps, out = np.isnan(X), X.copy()
        if gaps.any():
            out[gaps] = fill_in(self.run_, read_inputs(self.run_, X.astype(np.float32)), self.samples)[gaps]
        return out


def _check_units(X: np.ndarray, pixel_max: float) -> None:
    """Pixels in the units the estimator was fitted on, or a ValueError that says how to convert:
    fitted on 0..255, floats in [0, 1] with fractions would be divided by 255 again; fitted on
    [0, 1], anything above 1 is another unit."""
    top = float(np.nanmax(X, initial=0.0))
    if pixel_max == 1.0 and top > 1:
        raise ValueError(f"X's pixels go up to {top:g}, but this estimator was fitted on pixels in [0, 1]; pass X / "
                         f"{255 if top > 64 else top:g}")
    if pixel_max > 1 and top <= 1 and not np.array_equal(X, np.round(X), equal_nan=True):
        raise ValueError("X's pixels are fractions in [0, 1], but this estimator was fitted on pixels in 0..255; "
                         "pass X * 255")


def _keep_params(est: BaseEstimator, values: dict) -> None:
    """``__init__``'s arguments stored as they are, one attribute each (scikit-learn's rule)."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


def _as_series(X, ensure_min_samples: int) -> np.ndarray | None:
    """X as series (N, T, C), NaN past each one's end, when it holds them: a 3-D array, or a list of
    (T_i, C) arrays (padded here); None for anything else (a table, left to scikit-learn's checks)."""
    if isinstance(X, (list, tuple)) and len(X) and all(np.ndim(s) == 2 for s in X):
        X, lengths = pad([np.asarray(s, dtype=np.float64) for s in X], "X")  # (N, T, C), 0 after each series
        X = np.where(valid_steps(lengths, X.shape[1])[..., None], X, np.nan)  # the 3-D form: NaN after each end
    try:
        if (X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim) != 3:
            return None
    except ValueError:  # ragged nested lists: scikit-learn's checks say what is wrong
        return None
    return check_array(X, allow_nd=True, dtype=[np.float64, np.float32], ensure_all_finite="allow-nan",
                       ensure_min_samples=ensure_min_samples)


def _unlabelled(y: np.ndarray) -> np.ndarray:
    """(N,) bool: -1 (numbers), "-1" or "" (text) or None/NaN mark an unlabelled row."""
    if y.dtype.kind in "iu":
        return y == -1
    if y.dtype.kind == "f":
        return (y == -1) | np.isnan(y)
    return np.array([v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("-1", "") for v in y.tolist()])
