"""Missing cells in a table: the model that reads around them against filling them in first.

    python benchmarks/missing.py classify --rates 0 0.2 0.4 --seeds 0 1 2 --epochs 200 --set threads=1 \
        --out bench-results/missing.json
    # imputers alone: every row of a table, a share of its cells blanked, the error on those cells
    python benchmarks/missing.py impute --tables wine digits cancer --rates 0.2 0.4 --seeds 0 1 2 --set threads=1 \
        --out bench-results/imputers.json
    # a table with gaps as a user's file, for the other benchmarks (anomaly.py --dataset FILE)
    python benchmarks/missing.py write --table digits --rate 0.2 --seed 0 --out bench-results/digits-0.2.csv
    SEMIVAE_DATA=../shared/datasets python benchmarks/missing.py write --table fashion --rate 0.2 \
        --out bench-results/fashion-0.2.npz

The breast cancer table of ``quality.py owndata --kind table`` (30 % held out, stratified and
fixed; 10 % of the rest labelled, class-balanced, drawn by the seed), then a share ``rate`` of
the feature cells of every split blanked completely at random (drawn by the seed; a row keeps
at least one cell). Per seed and rate, four classifiers on the same cells and labels:

  logistic regression, mean   the training columns' means filled in, standardised, a logistic
                              regression on the labelled rows (what a user does first)
  logistic regression, kNN    scikit-learn's KNNImputer (5 neighbours) fitted on every training
                              row, labelled or not, then the same regression
  logistic regression, iterative  scikit-learn's IterativeImputer (BayesianRidge, 10 rounds)
                              fitted on every training row, then the same regression
  logistic regression, VAE    ``semivae.sklearn.SemiVAEImputer`` (the plain VAE, no labels) fitted
                              on every training row, then the same regression
  semivae, masked             ``semivae.train(x=...)`` given the NaN: the encoder reads 0 there,
                              the likelihood sums over the observed cells (the library's way)
  semivae, mean-filled        the same model given the training means in the gaps, no mask

and, for each way of filling, the root mean squared error on the blanked test cells in
standardised units (the regression rows: the imputer's; semivae: ``semivae impute``'s values,
importance-weighted over 100 draws of z, and beside them, ``rmse_at_mean``, the decoder at the
mean of q(z|x)). Rows are appended as runs finish (a
restart skips them) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import semivae
from semivae.eval.impute import fill_in
from results_file import ResultsFile, grouped, parse_set


def _table(seed: int, rate: float):
    """(x, y with -1 where unlabelled, x_test, y_test, gone, gone_test): the draw of ``seed``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    xa, ya = load_breast_cancer(return_X_y=True)
    x, x_test, y_all, y_test = train_test_split(xa, ya, test_size=0.3, stratify=ya, random_state=0)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.choice(np.flatnonzero(y_all == c), round(0.1 * (y_all == c).sum()), replace=False)
                           for c in (0, 1)])
    y = np.full(len(y_all), -1)
    y[keep] = y_all[keep]
    gone = []
    for part in (x, x_test):
        g = rng.random(part.shape) < rate
        g[np.arange(len(part)), rng.integers(0, part.shape[1], len(part))] = False  # a row keeps one cell
        gone.append(g)
    return x, y, x_test, y_test, gone[0], gone[1]


def _rmse(filled: np.ndarray, truth: np.ndarray, gone: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """On the blanked cells, in units of the training columns' standard deviations."""
    return float(np.sqrt((((filled - truth) / std)[gone] ** 2).mean())) if gone.any() else float("nan")


def _regressions(x_nan, y, xt_nan, y_test, truth_test, gone_test, mean, std, imputers=("mean", "kNN"),
                 epochs: int = 200, extra: dict | None = None, seed: int = 0) -> list[dict]:
    from sklearn.impute import KNNImputer, SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    from semivae.sklearn import SemiVAEImputer

    made = {"mean": SimpleImputer, "kNN": lambda: KNNImputer(n_neighbors=5),
            "iterative": lambda: IterativeImputer(max_iter=10, random_state=seed),
            "VAE": lambda: SemiVAEImputer(epochs=epochs, seed=seed, **(extra or {}))}
    rows = []
    lab = y >= 0
    for name in imputers:
        imputer = made[name]().fit(x_nan)  # every training row, labelled or not
        filled, filled_test = imputer.transform(x_nan), imputer.transform(xt_nan)
        lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(filled[lab], y[lab])
        accuracy = float((lr.predict(filled_test) == y_test).mean())
        rows.append({"model": f"logistic regression, {name}", "accuracy": accuracy,
                     "rmse": _rmse(filled_test, truth_test, gone_test, mean, std)})
    return rows


def _semivae(x_in, y, xt_in, y_test, truth_test, gone_test, mean, std, seed, epochs, extra) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = semivae.train(x=x_in, y=y, x_test=xt_in, y_test=y_test, out=Path(tmp) / "r", progress=False,
                             mode="semi", seed=seed, epochs=epochs, val_fraction=0.0, **extra)
        seconds = time.perf_counter() - t0
        acc = semivae.evaluate(path)["accuracy"]
        run = semivae.load_run(path)
        test = run.dataset().test
        idx = torch.arange(len(test))
        with torch.no_grad():
            recon = run.model.eval().reconstruct(test.inputs(idx), test.mask(idx)).numpy()  # normalised units
        at_mean = recon / test.scale.numpy() + test.shift.numpy()  # the decoder at the mean of q
        filled = fill_in(run, test)  # the library's: importance-weighted over 100 draws
    return {"accuracy": acc, "rmse": _rmse(filled, truth_test, gone_test, mean, std),
            "rmse_at_mean": _rmse(at_mean, truth_test, gone_test, mean, std), "seconds": seconds}


def run(a, extra: dict) -> list[dict]:
    results = ResultsFile(a.out, vars(a))
    done = {(r["model"], r["seed"], r["rate"]) for r in results.rows}
    for rate in a.rates:
        for seed in a.seeds:
            x, y, x_test, y_test, gone, gone_test = _table(seed, rate)
            x_nan, xt_nan = np.where(gone, np.nan, x), np.where(gone_test, np.nan, x_test)
            mean, std = np.nanmean(x_nan, 0), np.nanstd(x_nan, 0)
            base = {"seed": seed, "rate": rate, "n_labels": int((y >= 0).sum()), "missing_share": float(gone.mean())}
            todo = [m for m in ("mean", "kNN", "iterative", "VAE")
                    if (f"logistic regression, {m}", seed, rate) not in done and (m in ("mean", "kNN") or rate > 0)]
            for row in _regressions(x_nan, y, xt_nan, y_test, x_test, gone_test, mean, std, todo, a.epochs, extra,
                                    seed):
                results.add({**base, **row})
            arms = {"semivae, masked": (x_nan, xt_nan),
                    "semivae, mean-filled": (np.where(gone, mean, x), np.where(gone_test, mean, x_test))}
            for name, (x_in, xt_in) in arms.items():
                if (name, seed, rate) in done or (rate == 0 and name != "semivae, masked"):
                    continue
                r = _semivae(x_in, y, xt_in, y_test, x_test, gone_test, mean, std, seed, a.epochs, extra)
                results.add({**base, "model": name, **r, "epochs": a.epochs, "set": extra})
    return results.rows


def table(rows: list[dict]) -> str:
    out = ["| cells missing | model | accuracy (mean ± sd) | per seed | RMSE of the filled test cells |",
           "|---|---|---|---|---|"]
    for (rate, model), rs in grouped(rows, "rate", "model"):
        acc = np.array([r["accuracy"] for r in rs])
        rmse = [r["rmse"] for r in rs if np.isfinite(r["rmse"])]
        per_seed = " / ".join(f"{v:.4f}" for v in acc)
        out.append(f"| {rate:.0%} | {model} | {acc.mean():.4f} ± {acc.std():.4f} | {per_seed}"
                   f" | {f'{np.mean(rmse):.3f}' if rmse else ''} |")
    return "\n".join(out)


def _source(table: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features (N, D), classes (N,), class names) of a table: scikit-learn's digits (8x8 images
    as 64 columns), wine or breast cancer, or the first 12,000 Fashion-MNIST training images as
    784 columns (``fashion``; the data folder of ``SEMIVAE_DATA``)."""
    if table == "fashion":
        from semivae.data import load_dataset

        b = load_dataset("fashion-mnist")
        return (b.train.x[:12000].flatten(1).numpy().astype(np.float32), b.train.labels[:12000, 0].numpy(),
                list(b.heads[0].classes))
    from sklearn import datasets

    d = {"digits": datasets.load_digits, "wine": datasets.load_wine, "cancer": datasets.load_breast_cancer}[table]()
    return d.data, d.target, [str(v) for v in d.target_names]


def imputers(a, extra: dict) -> list[dict]:
    """Each imputer fitted on every row of a table with ``rate`` of its cells blanked (seeded; a
    row keeps one), scored by the RMSE on the blanked cells in column standard deviations:
    column means, kNN (5 neighbours), scikit-learn's IterativeImputer (BayesianRidge, 10 rounds)
    and ``SemiVAEImputer`` (its defaults: 200 epochs, 100 weighted draws)."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    from semivae.sklearn import SemiVAEImputer

    results = ResultsFile(a.out, vars(a))
    done = {(r["table"], r["rate"], r["seed"], r["imputer"]) for r in results.rows}
    for table in a.tables:
        x, _, _ = _source(table)
        for rate in a.rates:
            for seed in a.seeds:
                rng = np.random.default_rng(seed)
                gone = rng.random(x.shape) < rate
                gone[np.arange(len(gone)), rng.integers(0, gone.shape[1], len(gone))] = False
                x_nan = np.where(gone, np.nan, x)
                std = np.nanstd(x_nan, 0)
                std = np.where(std > 0, std, 1.0)
                made = {"mean": SimpleImputer, "kNN": lambda: KNNImputer(n_neighbors=5),
                        "iterative": lambda: IterativeImputer(max_iter=10, random_state=seed),
                        "SemiVAEImputer": lambda: SemiVAEImputer(seed=seed, **extra)}
                for name, make in made.items():
                    if (table, rate, seed, name) in done:
                        continue
                    t0 = time.perf_counter()
                    filled = make().fit_transform(x_nan)
                    results.add({"table": table, "rate": rate, "seed": seed, "imputer": name,
                                 "rmse": float(np.sqrt((((filled - x) / std)[gone] ** 2).mean())),
                                 "seconds": time.perf_counter() - t0, "rows": len(x), "columns": x.shape[1]})
    return results.rows


def imputer_table(rows: list[dict]) -> str:
    names = list(dict.fromkeys(r["imputer"] for r in rows))
    out = ["| table, cells missing | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for (table, rate), rs in grouped(rows, "table", "rate"):
        cells = [np.mean([r["rmse"] for r in rs if r["imputer"] == n]) for n in names]
        out.append(f"| {table}, {rate:.0%} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    return "\n".join(out)


def write(a) -> None:
    """A table (``_source``) as a CSV with a ``label`` column, or an ``.npz`` (x with NaN, y,
    classes), ``rate`` of its feature cells left empty completely at random (a row keeps at least
    one)."""
    import csv

    x, y, names = _source(a.table)
    rng = np.random.default_rng(a.seed)
    gone = rng.random(x.shape) < a.rate
    gone[np.arange(len(gone)), rng.integers(0, gone.shape[1], len(gone))] = False
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    if a.out.endswith(".npz"):
        np.savez(a.out, x=np.where(gone, np.nan, x).astype(np.float32), y=y, classes=np.array(names))
        print(f"wrote {a.out}: {gone.mean():.1%} of {gone.size} cells NaN")
        return
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{j}" for j in range(x.shape[1])] + ["label"])
        for row, g, t in zip(x, gone, y):
            w.writerow(["" if m else f"{v:g}" for v, m in zip(row, g)] + [names[t]])
    print(f"wrote {a.out}: {gone.mean():.1%} of {gone.size} cells empty")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="breast cancer, 10 % labels: accuracy and the filled cells' error")
    c.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--epochs", type=int, default=200)
    c.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra training options")
    c.add_argument("--out", required=True)
    m = sub.add_parser("impute", help="imputers alone on tables with blanked cells: RMSE on those cells")
    m.add_argument("--tables", nargs="+", choices=["digits", "wine", "cancer", "fashion"], default=["wine", "cancer"])
    m.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.4])
    m.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    m.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="SemiVAEImputer options")
    m.add_argument("--out", required=True)
    w = sub.add_parser("write", help="a scikit-learn table as a CSV with empty cells")
    w.add_argument("--table", choices=["digits", "wine", "cancer", "fashion"], default="digits")
    w.add_argument("--rate", type=float, default=0.2)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--out", required=True)
    a = p.parse_args()
    if a.command == "write":
        write(a)
    elif a.command == "impute":
        print(imputer_table(imputers(a, parse_set(a.set))))
    else:
        print(table(run(a, parse_set(a.set))))


if __name__ == "__main__":
    main()
