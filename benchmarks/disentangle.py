"""Disentanglement (issue 11): the beta sweep, Berkhahn et al.'s Table 12 protocol, Varano's claim.

    # beta-VAE without labels: beta 1, 4, 16
    python benchmarks/disentangle.py beta --dataset dsprites-small --betas 1 4 16 --seeds 0 1 2 \
        --out bench-results/dis-beta.json
    # Table 12: unlabelled only; unlabelled + 100 / 300 / 1,000 / 3,000 factor-labelled points;
    # 1,000 labelled points alone (the same number of steps); hyperparameters fixed at --set
    python benchmarks/disentangle.py table12 --dataset dsprites-small --set beta=4 --seeds 0 1 2 \
        --out bench-results/dis-table12.json
    # Varano: logistic regression on the mean of q(z|x) of a beta = 1 and a beta = 4 VAE, MNIST
    SEMIVAE_DATA=../shared/datasets python benchmarks/disentangle.py varano --per-class 3 10 \
        --seeds 0 1 2 --out bench-results/dis-varano.json

The metrics draw their own points from the factor generator (no test split is involved); the
labelled points of Table 12 keep every factor's label (``--joint-labels``). Rows are appended
as runs finish (a restart skips them) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import semivae
from results_file import ResultsFile, parse_set
from semivae.eval.disentangle import disentangle


def train_and_score(options: dict, scale: float, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = semivae.train(out=Path(tmp) / "r", progress=False, seed=seed, **options)
        seconds = time.perf_counter() - t0
        res = disentangle(run, scale=scale, seed=seed)
    return {"seconds": seconds, **res["headline"],
            "informativeness": res["dci"]["informativeness_test"] if "dci" in res else None,
            "factor_vae_active": res["factor_vae"].get("num_active_dims") if "factor_vae" in res else None}


def settings_table12(a) -> list[tuple[str, dict]]:
    """(name, options) of every row of Table 12."""
    out = [("unlabelled", {"mode": "unsupervised"})]
    out += [(f"unlabelled + {n}", {"mode": "semi", "labels": str(n), "joint_labels": True}) for n in a.budgets]
    steps = max(1, round(a.n_train / a.alone))  # the same number of steps on the labelled points alone
    out.append((f"{a.alone} labelled alone", {"mode": "semi", "labels": str(a.alone), "joint_labels": True,
                                              "unlabelled": False, "epochs": a.epochs * steps}))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("beta")
    b.add_argument("--betas", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    t = sub.add_parser("table12")
    t.add_argument("--budgets", type=int, nargs="+", default=[100, 300, 1000, 3000])
    t.add_argument("--alone", type=int, default=1000)
    t.add_argument("--n-train", type=int, default=29_184, help="training points of the data set (dsprites-small)")
    t.add_argument("--only", nargs="*", default=None, help="run only the settings with these names")
    t.add_argument("--tag", default="", help="appended to every setting's name (e.g. ', heads read z')")
    for q in (b, t):
        q.add_argument("--dataset", default="dsprites-small")
        q.add_argument("--scale", type=float, default=1.0, help="of the metrics' point counts")
    v = sub.add_parser("varano")
    v.add_argument("--dataset", default="mnist")
    v.add_argument("--per-class", type=int, nargs="+", default=[3, 10])
    v.add_argument("--betas", type=float, nargs="+", default=[1.0, 4.0])
    for q in (b, t, v):
        q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        q.add_argument("--epochs", type=int, default=20)
        q.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training options for every run")
        q.add_argument("--out", required=True)
    a = p.parse_args()
    extra = parse_set(a.set)
    results = ResultsFile(a.out, vars(a))
    done = {(r["setting"], r["seed"]) for r in results.rows}
    if a.command == "varano":
        rows = varano(a, extra, results, done)
    else:
        settings = ([(f"beta {beta:g}", {"mode": "unsupervised", "beta": beta}) for beta in a.betas]
                    if a.command == "beta" else settings_table12(a))
        if getattr(a, "only", None):
            settings = [(n, o) for n, o in settings if n in a.only]
        settings = [(n + getattr(a, "tag", ""), o) for n, o in settings]
        for name, options in settings:
            for seed in a.seeds:
                if (name, seed) not in done:
                    opts = {"dataset": a.dataset, "epochs": a.epochs, "val_fraction": 0.02, **extra, **options}
                    results.add({"setting": name, "seed": seed, "options": opts} | train_and_score(opts, a.scale, seed))
        rows = results.rows
    print(table(rows))


def varano(a, extra: dict, results: ResultsFile, done: set) -> list[dict]:
    """A VAE per beta on the unlabelled images, then a logistic regression on the mean of
    q(z|x) of the labelled ones, scored on the test split."""
    from sklearn.linear_model import LogisticRegression

    import torch

    from semivae.data.budget import select_labelled
    from semivae.eval.disentangle import representation_fn
    from semivae.runs import load_run

    for beta in a.betas:
        for seed in a.seeds:
            if all((f"beta {beta:g}, {k}/class", seed) in done for k in a.per_class):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run = load_run(semivae.train(out=Path(tmp) / "r", progress=False, dataset=a.dataset, mode="unsupervised",
                                             beta=beta, epochs=a.epochs, seed=seed, val_fraction=0.0, **extra))
                seconds = time.perf_counter() - t0
                train, test = run.split_data("train"), run.split_data("test")
                represent = representation_fn(run.model)
                z_train = np.concatenate([represent(train.inputs(torch.arange(i, min(i + 4096, len(train)))))
                                          for i in range(0, len(train), 4096)])
                z_test = np.concatenate([represent(test.inputs(torch.arange(i, min(i + 4096, len(test)))))
                                         for i in range(0, len(test), 4096)])
                y_train, y_test = train.labels[:, 0].numpy(), test.labels[:, 0].numpy()
                for k in a.per_class:
                    idx = select_labelled(y_train, 10, labels_per_class=k, rng=np.random.default_rng(seed))
                    clf = LogisticRegression(max_iter=5000).fit(z_train[idx], y_train[idx])
                    results.add({"setting": f"beta {beta:g}, {k}/class", "seed": seed, "beta": beta, "per_class": k,
                                 "accuracy": float(clf.score(z_test, y_test)), "seconds": seconds,
                                 "latent_dim": int(z_train.shape[1])})
    return results.rows


def table(rows: list[dict]) -> str:
    keys = [k for k in ("beta_vae", "factor_vae", "mig", "dci", "informativeness", "accuracy") if any(k in r for r in rows)]
    lines = ["| setting | seeds | " + " | ".join(keys) + " | s / run |", "|---|---|" + "---|" * (len(keys) + 1)]
    for name in dict.fromkeys(r["setting"] for r in rows):
        rs = [r for r in rows if r["setting"] == name]
        cells = []
        for k in keys:
            v = np.array([r[k] for r in rs if r.get(k) is not None], dtype=float)
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}" if len(v) else "")
        lines.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + f" | {np.mean([r['seconds'] for r in rs]):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
