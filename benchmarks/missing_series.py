"""Missing values in series: the model that reads around them against filling them in first.

    python benchmarks/missing_series.py --dataset basic-motions --per-class 2 --rates 0 0.2 0.4 \
        --seeds 0 1 2 --epochs 200 --set threads=1 --out bench-results/missing-series-bm.json

A real set shipped by aeon (``basic-motions``, ``japanese-vowels``; its own train / test split),
then a share ``rate`` of the values on the valid steps of every series, train and test, blanked
completely at random (drawn by the seed; a series keeps at least one value). Per seed and rate,
the default recurrent model, trained semi-supervised with ``per-class`` labels per class (drawn by
the seed), on the same values and labels in two ways:

  masked         the series with NaN, as a user gives them: the library reads around the gaps
  interpolated   each channel linearly interpolated between its observed values first (held
                 at the first / last one at the ends; the channel's training mean where a
                 series has none), no mask: what a user does first

and, at rate 0, ``complete`` (the reference). For each, test accuracy and, on the blanked test
values, the root mean squared error (in channel standard deviations) of the decoder's fill
(``eval.impute.fill_in``, what ``semivae impute`` gives tables: importance-weighted over 100 draws
of z; ``impute`` refuses series on this measurement) and, beside it, of linear interpolation and
of the channels' means. Rows are appended as runs finish (a restart skips
them) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import semivae
from semivae.data import load_dataset
from semivae.eval.impute import fill_in
from results_file import ResultsFile, grouped, parse_set


def _raw(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (N, T, C) in the data's units, lengths (N,), y (N,)) of a split."""
    x = data.x.numpy().astype(np.float32)
    lengths = np.full(len(x), x.shape[1]) if data.lengths is None else data.lengths.numpy()
    return x, lengths, data.labels[:, 0].numpy()


def _valid(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return np.broadcast_to((np.arange(x.shape[1])[None, :] < lengths[:, None])[..., None], x.shape)


def _blank(x: np.ndarray, lengths: np.ndarray, rate: float, rng) -> np.ndarray:
    """(N, T, C) bool: ``rate`` of the valid values, at random; each series keeps one."""
    gone = (rng.random(x.shape) < rate) & _valid(x, lengths)
    keep_t = (rng.random(len(x)) * lengths).astype(int)
    gone[np.arange(len(x)), keep_t, rng.integers(0, x.shape[2], len(x))] = False
    return gone


def interpolate(x_nan: np.ndarray, lengths: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Each series' channels linearly interpolated over its valid steps (ends held); ``fill`` (C,)
    where a series has no value of a channel; padding 0."""
    out = np.zeros_like(x_nan)
    for i, n in enumerate(lengths):
        for c in range(x_nan.shape[2]):
            v = x_nan[i, :n, c]
            seen = np.flatnonzero(~np.isnan(v))
            out[i, :n, c] = np.interp(np.arange(n), seen, v[seen]) if len(seen) else fill[c]
    return out


def _rmse(filled, truth, gone, std) -> float:
    return float(np.sqrt((((filled - truth) / std)[gone] ** 2).mean())) if gone.any() else float("nan")


def run(a, extra: dict) -> list[dict]:
    results = ResultsFile(a.out, vars(a))
    done = {(r["model"], r["seed"], r["rate"]) for r in results.rows}
    b = load_dataset(a.dataset)
    (x, lengths, y), (xt, lt, yt) = _raw(b.train), _raw(b.test)
    for rate in a.rates:
        for seed in a.seeds:
            rng = np.random.default_rng(seed)
            gone, gone_t = _blank(x, lengths, rate, rng), _blank(xt, lt, rate, rng)
            x_nan, xt_nan = np.where(gone, np.nan, x), np.where(gone_t, np.nan, xt)
            seen = _valid(x, lengths) & ~gone
            flat = np.where(seen, x, np.nan).reshape(-1, x.shape[2])
            mean, std = np.nanmean(flat, 0), np.nanstd(flat, 0)
            std = np.where(std > 0, std, 1.0)
            lin, lin_t = interpolate(x_nan, lengths, mean), interpolate(xt_nan, lt, mean)
            base = {"dataset": a.dataset, "seed": seed, "rate": rate, "per_class": a.per_class,
                    "missing_share": float(gone.sum() / _valid(x, lengths).sum())}
            arms = {"masked": (x_nan, xt_nan), "interpolated": (lin, lin_t)} if rate > 0 else {"complete": (x, xt)}
            for name, (xa, xta) in arms.items():
                if (name, seed, rate) in done or name not in a.arms:
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "data.npz"
                    np.savez(path, x=xa, lengths=lengths, y=y, x_test=xta, lengths_test=lt, y_test=yt)
                    t0 = time.perf_counter()
                    out = semivae.train(dataset=str(path), out=Path(tmp) / "r", progress=False, arch="recurrent",
                                        mode="semi", seed=seed, epochs=a.epochs, val_fraction=0.0,
                                        labels_per_class=a.per_class, **extra)
                    seconds = time.perf_counter() - t0
                    res = semivae.evaluate(out)
                    row = {**base, "model": name, "accuracy": res["accuracy"], "log_loss": res["log_loss"],
                           "seconds": seconds, "epochs": a.epochs, "set": extra}
                    if name == "masked":
                        r = semivae.load_run(out)
                        filled = fill_in(r, r.dataset().test)
                        row |= {"rmse_model": _rmse(filled, xt, gone_t, std),
                                "rmse_interpolation": _rmse(lin_t, xt, gone_t, std),
                                "rmse_mean": _rmse(np.broadcast_to(mean, xt.shape), xt, gone_t, std)}
                results.add(row)
    return results.rows


def table(rows: list[dict]) -> str:
    out = ["| data | values missing | model | accuracy (mean ± sd) | per seed | RMSE of the filled test values: "
           "model / interpolation / mean |", "|---|---|---|---|---|---|"]
    for (data, rate, model), rs in grouped(rows, "dataset", "rate", "model"):
        acc = np.array([r["accuracy"] for r in rs])
        rmse = " / ".join(f"{np.mean([r[k] for r in rs]):.3f}" for k in ("rmse_model", "rmse_interpolation",
                                                                          "rmse_mean")) if "rmse_model" in rs[0] else ""
        out.append(f"| {data} | {rate:.0%} | {model} | {acc.mean():.4f} ± {acc.std():.4f} | "
                   f"{' / '.join(f'{v:.3f}' for v in acc)} | {rmse} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="basic-motions", choices=["basic-motions", "japanese-vowels"])
    p.add_argument("--per-class", type=int, default=2)
    p.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--arms", nargs="+", default=["masked", "interpolated", "complete"])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra training options")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    print(table(run(a, parse_set(a.set))))


if __name__ == "__main__":
    main()
