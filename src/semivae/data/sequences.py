"""Sequences: multichannel time series of one or many lengths, padded to (N, T, C) with
``lengths`` (N,) the valid steps of each (the rest is padding, which no loss, score or
prediction reads).

Sources, each a :class:`DataBundle` of kind ``sequence``:

- ``sequential-mnist`` / ``sequential-fashion-mnist``: the images read row by row (28 steps of
  28 pixels in [0, 1], a Bernoulli likelihood), the large benchmark for recurrent models;
- ``basic-motions`` / ``japanese-vowels``: real recordings shipped by the time-series library
  aeon (optional extra ``semivae[timeseries]``): smart-watch accelerometer and gyroscope (6
  channels, 100 steps, 4 activities), and speakers' vowels (12 channels, 7 to 29 steps, 9
  speakers);
- a folder in the UCI-HAR layout (``train/Inertial Signals/*_train.txt``, ``train/y_train.txt``,
  the same for ``test``, ``activity_labels.txt``);
- an ``.npz`` with ``x`` (N, T, C) and ``lengths`` (N,) (or ``kind = "sequence"`` for series of
  one length), or ``x`` (sum of the lengths, C) holding the series one after another.

Real-valued channels are standardised with the training split's mean and standard deviation
over the valid steps (saved with the run, re-applied to new data) and get the Gaussian
likelihood whose variance the decoder gives per step and channel.

A value may be missing (NaN on a valid step: a sensor that dropped out, a channel not recorded
for a while): it is stored as the linear interpolation between its channel's observed values in
that series (held at the ends; the channel's training mean where the series has none), and
``observed`` (N, T, C) marks the real values. The encoder reads the interpolation; the likelihood
sums over the observed values only (semivae/masks.py), so the decoder never learns to reproduce
a placeholder. (Measured against the mean as placeholder, which tables use, and against
interpolating with no mask: docs/benchmarks.md section 11, "Missing values in series".) A series
with no value at all, a channel with no value in any training series, and infinities are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..masks import within
from .dataset import ArrayData, DataBundle, LabelColumn
from .splits import carve_note, carve_test

STD_FLOOR = 1e-8
HAR_SIGNALS = [f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"]


def pad(series: list[np.ndarray], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Series of shape (T_i, C) -> (x (N, T, C) float32 padded with 0, lengths (N,))."""
    if not series:
        raise UserError(f"{what} holds no series; add data")
    channels = {s.shape[1] if s.ndim == 2 else -1 for s in series}
    if len(channels) != 1 or -1 in channels:
        rows = {len(s) for s in series}
        hint = (f": they look like (C, T_i) with C = {rows.pop()}, as aeon gives them; transpose each "
                "([s.T for s in X])" if len(rows) == 1 and -1 not in channels else "")
        raise UserError(f"{what} has series of different channel counts {sorted(channels)[:5]}; give every series "
                        f"(T_i, C){hint}")
    lengths = np.array([len(s) for s in series], dtype=np.int64)
    x = np.zeros((len(series), int(lengths.max()), channels.pop()), dtype=np.float32)
    for i, s in enumerate(series):
        x[i, : len(s)] = s
    return check_sequences(x, lengths, what)


def check_sequences(x: np.ndarray, lengths: np.ndarray | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate padded series: numeric (N, T, C), lengths in 1..T (without them, each series
    ends at its last step holding a value: NaN after it is padding), no infinity and some value
    on the valid steps of each series. Returns float32 x with the padding set to 0 (NaN kept
    where a value is missing), and the lengths."""
    if x.dtype == object:
        raise UserError(f"{what} is a ragged (object) array; save the series padded to (N, T, C) with 'lengths', "
                        "or one after another as (sum T_i, C) with 'lengths'")
    if not np.issubdtype(x.dtype, np.number) or x.ndim != 3:
        raise UserError(f"{what} has shape {x.shape} ({x.dtype}); sequences are a numeric (N, T, C) array")
    n, t = x.shape[:2]
    if lengths is None:  # steps after a series' last value are padding (NaN-padded series, as the estimator reads them)
        seen = ~np.isnan(x).all(2) if np.issubdtype(x.dtype, np.floating) else np.ones((n, t), dtype=bool)  # (N, T)
        lengths = np.where(seen.any(1), t - np.argmax(seen[:, ::-1], axis=1), t).astype(np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (n,) or not np.issubdtype(lengths.dtype, np.integer):
        raise UserError(f"lengths of {what} must be {n} whole numbers, one per series; fix 'lengths'")
    if n and (lengths.min() < 1 or lengths.max() > t):
        bad = int(np.flatnonzero((lengths < 1) | (lengths > t))[0])
        raise UserError(f"series {bad} of {what} has length {int(lengths[bad])}, outside 1..{t}; "
                        "drop empty series and keep lengths within the padded length")
    valid = valid_steps(lengths, t)  # (N, T)
    x = np.where(valid[..., None], x, 0).astype(np.float32)
    bad = np.argwhere(np.isinf(x))
    if len(bad):
        raise UserError(f"{what} has an infinite value at series {bad[0][0]}, step {bad[0][1]}, channel {bad[0][2]}; "
                        "replace it with a number, or with NaN where the value is missing")
    empty = np.flatnonzero((np.isnan(x) | ~valid[..., None]).all(axis=(1, 2)))  # no value on a valid step
    if len(empty):
        i = int(empty[0])
        raise UserError(f"series {i} of {what} has no value on its {int(lengths[i])} steps (all NaN); "
                        "drop it or give its values")
    return x, lengths.astype(np.int64)


def valid_steps(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(N, T) bool: the steps within each series' length (``masks.within`` on arrays)."""
    return within(torch.as_tensor(lengths), steps).numpy()


def fill_series(x: np.ndarray, lengths: np.ndarray, fill) -> tuple[np.ndarray, torch.Tensor | None]:
    """Series (N, T, C) with NaN where a value is missing -> (x with those values interpolated
    (:func:`interpolate_gaps`; ``fill`` (C,) where a series has none of a channel), padding 0;
    observed (N, T, C) bool, False on padding too; or None where nothing is missing)."""
    if not np.issubdtype(x.dtype, np.floating) or not np.isnan(x).any():
        return x, None  # whole numbers (pixels read row by row) hold no NaN
    filled, observed = fill_gaps(torch.from_numpy(x), torch.from_numpy(lengths), torch.as_tensor(fill))
    return filled.numpy().astype(x.dtype), observed


def fill_gaps(x: torch.Tensor, lengths: torch.Tensor, fill: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``fill_series`` in torch, for data and the ONNX graph alike: series (N, T, C), NaN where a
    value is missing, and their lengths (N,) -> (x with the gaps interpolated and padding 0,
    observed (N, T, C) bool, False on padding)."""
    valid = within(lengths, x.shape[1])[..., None]  # (N, T, 1)
    observed = ~torch.isnan(x) & valid
    return torch.where(valid, interpolate_gaps(x, observed, fill), 0.0), observed


def interpolate_gaps(x: torch.Tensor, observed: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Each value not ``observed`` (N, T, C) replaced by the linear interpolation between the
    nearest observed values of its channel before and after it in its series, the nearest one
    where there is only one side, or ``fill`` (C,) where the channel has none: (N, T, C). Ranks
    and gathers only (no cumulative max), so the ONNX export runs the same code."""
    n, steps, c = x.shape
    t = torch.arange(steps, device=x.device).view(1, steps, 1).expand(n, steps, c)
    k = observed.long().cumsum(1)  # (N, T, C) how many values are observed up to step t
    pos = torch.zeros(n, steps + 1, c, dtype=torch.long, device=x.device)
    pos = pos.scatter(1, torch.where(observed, k, 0), t)  # pos[:, r] = the step of the r-th observed value
    before = pos.gather(1, k)  # (N, T, C) the last observed step <= t, where k > 0
    rank_after = k + 1 - observed.long()  # the rank of the first observed value at or after t
    after = pos.gather(1, rank_after.clamp(max=steps))
    has_before, has_after = k > 0, rank_after <= k[:, -1:]
    x = torch.where(observed, x, 0.0)
    x_before, x_after = x.gather(1, before), x.gather(1, after)
    between = x_before + (t - before).to(x.dtype) / (after - before).clamp(min=1).to(x.dtype) * (x_after - x_before)
    one_side = torch.where(has_before, x_before, torch.where(has_after, x_after, fill.to(x.dtype).expand_as(x)))
    return torch.where(observed, x, torch.where(has_before & has_after, between, one_side))


def from_concatenated(x: np.ndarray, lengths: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Series stored one after another, (sum T_i, C), cut by ``lengths`` and padded."""
    if lengths is None:
        raise UserError(f"{what} is 2-D {tuple(x.shape)} without lengths; give the series as (N, T, C) (NaN after a "
                        "shorter one's end), or one after another as (sum T_i, C) with their lengths")
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.sum() != len(x) or (lengths < 1).any():
        raise UserError(f"lengths of {what} sum to {int(lengths.sum())} but x has {len(x)} steps (and every length "
                        "must be >= 1); give one length per series")
    return pad(np.split(x, np.cumsum(lengths)[:-1]), what)


def channel_stats(x: np.ndarray, lengths: np.ndarray,
                  what: str = "the training series") -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and 1/std over the valid steps' observed values: (C,), (C,)."""
    steps = x.reshape(-1, x.shape[2])[valid_steps(lengths, x.shape[1]).reshape(-1)].astype(np.float64)
    seen = (~np.isnan(steps)).sum(0)  # (C,)
    if (seen == 0).any():
        raise UserError(f"channel {int(np.flatnonzero(seen == 0)[0])} of {what} has no value in any series (all NaN); "
                        "drop that channel")
    std = np.nanstd(steps, 0)  # a channel constant in training keeps its units
    return (np.nanmean(steps, 0).astype(np.float32),
            np.where(std > STD_FLOOR, 1.0 / np.maximum(std, STD_FLOOR), 1.0).astype(np.float32))


def sequence_bundle(name: str, train: tuple, test: tuple, heads: list[LabelColumn], meta: dict,
                    standardise: bool = True, scale: float = 1.0, ids: tuple = (None, None)) -> DataBundle:
    """A bundle from (x, lengths, labels (N, F)) per split; real-valued channels standardised
    with the training split's statistics, else scaled by ``scale`` into [0, 1] (Bernoulli);
    ``ids`` (train, test): the series' names, or None."""
    (x, lengths, y), (x_te, len_te, y_te) = train, test
    if standardise:
        shift, inv = channel_stats(x, lengths, f"{name} (train)")
        shift_t, scale_t, likelihood = torch.from_numpy(shift), torch.from_numpy(inv), "gaussian-hetero"
    else:
        shift, shift_t, scale_t, likelihood = 0.0, 0.0, scale, "bernoulli"

    def part(xa, la, ya, ia) -> ArrayData:
        lengths_t = None if (la == xa.shape[1]).all() else torch.from_numpy(la)
        xa, observed = fill_series(xa, la, shift)
        return ArrayData(torch.from_numpy(np.ascontiguousarray(xa)), torch.from_numpy(ya.astype(np.int64)), shift_t,
                         scale_t, lengths=lengths_t, observed=observed, ids=ia)
    return DataBundle(name, part(x, lengths, y, ids[0]), part(x_te, len_te, y_te, ids[1]), heads, "sequence",
                      likelihood, meta)


def _split_off_test(x, lengths, y, ids=None):
    """A stratified 20 % test split of series without one, and each part's ids: the given ones,
    else the series' numbers in the file, which the carve would otherwise change."""
    tr, te = carve_test(y[:, 0] if y.shape[1] else np.full(len(y), -1))
    ids = np.arange(len(y)).astype(str).astype(object) if ids is None else np.asarray(ids, dtype=object)
    return (x[tr], lengths[tr], y[tr]), (x[te], lengths[te], y[te]), te, (ids[tr], ids[te])


# ------------------------------------------------------------------------- named sets


def load_sequential_images(name: str, images: DataBundle) -> DataBundle:
    """MNIST-style images (N, 1, 28, 28) read row by row: 28 steps of 28 pixels."""
    def rows(d: ArrayData):
        x = d.x[:, 0].numpy()  # (N, 28, 28) uint8
        return x, np.full(len(x), x.shape[1], dtype=np.int64), d.labels.numpy()
    meta = dict(images.meta, source=f"{images.name} (rows as steps)", channel_names=None)
    return sequence_bundle(f"sequential-{images.name}", rows(images.train), rows(images.test), images.heads, meta,
                           standardise=False, scale=1.0 / 255.0)


def load_aeon(name: str, loader: str) -> DataBundle:
    """A set shipped with aeon: X (N, C, T) or a list of (C, T_i), string labels."""
    try:
        import aeon.datasets as datasets
    except ImportError:
        raise UserError(f"--dataset {name} needs the time-series extra; pip install 'semivae[timeseries]' "
                        "(it installs aeon, which ships this data set)") from None
    parts = []
    for split in ("train", "test"):
        X, y = getattr(datasets, loader)(split=split)
        series = [np.asarray(s, dtype=np.float32).T for s in X]  # (T_i, C) each
        parts.append((*pad(series, f"{name} ({split})"), [str(v) for v in y]))
    names = set(parts[0][2]) | set(parts[1][2])
    classes = sorted(names, key=int) if all(c.isdigit() for c in names) else sorted(names)
    index = {c: i for i, c in enumerate(classes)}
    splits = [(x, lengths, np.array([[index[c]] for c in y], dtype=np.int64)) for x, lengths, y in parts]
    width = max(splits[0][0].shape[1], splits[1][0].shape[1])
    splits = [(np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0))), lengths, y) for x, lengths, y in splits]
    meta = {"source": f"aeon.datasets.{loader}", "feature_names": None, "channel_names": None}
    return sequence_bundle(name, splits[0], splits[1], [LabelColumn("label", tuple(classes))], meta)


# ---------------------------------------------------------------------------- folders


def is_har_folder(path: Path) -> bool:
    return (path / "train" / "Inertial Signals").is_dir()


def _read_table(path: Path, what: str) -> np.ndarray:
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path} as a table of numbers ({str(err).splitlines()[0]}); replace {what}") from None


def load_har_folder(path: Path) -> DataBundle:
    """The UCI-HAR layout: one (N, 128) file per inertial signal and split, labels 1..6 in
    y_<split>.txt, class names in activity_labels.txt. Channels in a fixed order:
    body_acc, body_gyro, total_acc, each x, y, z (those present)."""
    names = [n for n in HAR_SIGNALS if (path / "train" / "Inertial Signals" / f"{n}_train.txt").is_file()]
    if not names:
        raise UserError(f"{path}/train/Inertial Signals holds none of {HAR_SIGNALS[0]}_train.txt ...; "
                        "point --dataset at the unpacked UCI HAR Dataset folder")
    labels_file = path / "activity_labels.txt"
    classes = []
    if labels_file.is_file():
        rows = [line.split(maxsplit=1) for line in labels_file.read_text().splitlines() if line.strip()]
        classes = [name.strip() for _, name in sorted(rows, key=lambda r: int(r[0]))]
    splits = []
    for split in ("train", "test"):
        signals = []
        for n in names:
            f = path / split / "Inertial Signals" / f"{n}_{split}.txt"
            if not f.is_file():
                raise UserError(f"{f} is missing but {n}_train.txt is there; give every signal for both splits")
            signals.append(_read_table(f, f"{n}_{split}.txt"))
        if len({s.shape for s in signals}) != 1:
            raise UserError(f"the {split} signal files of {path} differ in shape; give each one row per window")
        x = np.stack(signals, -1).astype(np.float32)  # (N, T, C)
        y = _read_table(path / split / f"y_{split}.txt", f"y_{split}.txt").reshape(-1).astype(np.int64) - 1
        if len(y) != len(x):
            raise UserError(f"{path}/{split}/y_{split}.txt has {len(y)} labels for {len(x)} windows; fix it")
        if len(y) and (y.min() < 0 or (classes and y.max() >= len(classes))):
            raise UserError(f"{path}/{split}/y_{split}.txt has labels outside 1..{len(classes) or 'K'}; fix it")
        splits.append((*check_sequences(x, None, f"{path}/{split}"), y[:, None]))
    k = max(int(splits[0][2].max()), int(splits[1][2].max())) + 1
    classes = classes or [str(i + 1) for i in range(k)]
    meta = {"source": str(path.resolve()), "feature_names": None, "channel_names": names}
    return sequence_bundle(path.name, splits[0], splits[1], [LabelColumn("label", tuple(classes))], meta)


def npz_sequences(path: Path, x: np.ndarray, lengths: np.ndarray | None, y: np.ndarray,
                  test: tuple | None, heads: list[LabelColumn], ids: tuple = (None, None)) -> DataBundle:
    """Sequences of an ``.npz``: x (N, T, C) [+ lengths] or (sum T_i, C) + lengths; ``ids``
    (train, test): the file's ``ids`` and ``ids_test``, or None."""
    x, lengths = (from_concatenated(x, lengths, f"x in {path}") if x.ndim == 2
                  else check_sequences(x, lengths, f"x in {path}"))
    meta = {"source": str(path.resolve()), "feature_names": None, "channel_names": None}
    carve: dict = {}
    if test is None:
        train, test_part, te, ids = _split_off_test(x, lengths, y, ids[0])
        carve = carve_note(y[:, 0] if y.shape[1] else None, te, heads)
    else:
        x_te, len_te, y_te = test
        x_te, len_te = (from_concatenated(x_te, len_te, f"x_test in {path}") if x_te.ndim == 2
                        else check_sequences(x_te, len_te, f"x_test in {path}"))
        if x_te.shape[2] != x.shape[2]:
            raise UserError(f"x_test in {path} has {x_te.shape[2]} channels but x {x.shape[2]}; save the same channels")
        width = max(x.shape[1], x_te.shape[1])
        x, x_te = (np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0))) for a in (x, x_te))
        train, test_part = (x, lengths, y), (x_te, len_te, y_te)
    return sequence_bundle(path.stem, train, test_part, heads, {**meta, **carve}, ids=ids)


def sequence_inputs(x: np.ndarray, lengths: np.ndarray | None, steps: int, channels: int,
                    what: str, any_length: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """New series for a trained model: checked, padded to the training length ``steps`` (NaN
    kept where a value is missing), or to the longest series where that is longer and the model
    reads ``any_length``."""
    if x.ndim == 2 and lengths is None and channels == 1:  # (N, T): one channel
        x = x[:, :, None]
    x, lengths = from_concatenated(x, lengths, what) if x.ndim == 2 else check_sequences(x, lengths, what)
    if x.shape[2] != channels:
        raise UserError(f"{what} has {x.shape[2]} channels but the model was trained on {channels}; "
                        "give series with the training channels")
    if lengths.max(initial=0) > steps and not any_length:
        raise UserError(f"{what} has a series of {int(lengths.max())} steps, longer than the {steps} the model was "
                        f"trained on; cut it into windows of at most {steps} steps")
    width = max(steps, int(lengths.max(initial=0)))  # the training length, or the longest series
    return np.pad(x[:, :width], ((0, 0), (0, width - min(x.shape[1], width)), (0, 0))), lengths
