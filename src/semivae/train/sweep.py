"""``semivae sweep SPEC``: label budgets x seeds x named configurations, one cell after another.

A spec (YAML or TOML) names the budgets, the seeds and the configurations; a configuration is
any set of ``train`` options, or ``finetune: RUN`` plus finetune options::

    seeds: [0, 1, 2]
    budgets: {labels_per_class: [1, 2, 4, 8]}      # or labels: [...] or label_fraction: [...]
    configurations:
      plain: {model: classifier, head: ff, dataset: mnist, epochs: 30}
      vae-frozen: {finetune: runs/vae, head: ff, freeze: true, epochs: 30}

Each cell trains a run in ``OUT/runs/<configuration>/<budget>-s<seed>``, evaluates it on the
test split, and appends a row to ``OUT/results.csv`` (configuration, budget, seed, labels per
class, top-1, top-5, log loss, seconds). A cell with its row is finished: an interrupted sweep
resumes where it stopped (an unfinished cell's directory is made again). ``OUT/sweep.png``
plots accuracy against labels per class (log axis, mean and spread over seeds, one line per
configuration) and ``OUT/sweep.html`` shows it with the table.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..config import load_config_file, nest, resolve
from ..errors import UserError
from ..eval.evaluation import evaluate
from ..runs import load_run
from ..viz.canvas import new_figure, png_bytes
from .finetune import finetune
from .training import absolute_paths, prepare, train

COLUMNS = ["configuration", "budget_kind", "budget", "seed", "n_labelled", "labels_per_class", "top1", "top5",
           "log_loss", "seconds", "run"]
BUDGET_KINDS = ("labels_per_class", "labels", "label_fraction")


SPEC_KEYS = ("budgets", "configurations", "seeds", "out")


def read_spec(path: str) -> dict:
    spec = load_config_file(path)
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r}; a sweep reads {', '.join(SPEC_KEYS)} (options go "
                        "inside a configuration)")
    budgets = spec.get("budgets")
    if not isinstance(budgets, dict) or len(budgets) != 1 or next(iter(budgets)) not in BUDGET_KINDS:
        raise UserError(f"{path}: 'budgets' must name one of {', '.join(BUDGET_KINDS)} with a list of values, "
                        "e.g. budgets: {labels_per_class: [1, 2, 4]}")
    configs = spec.get("configurations")
    if not isinstance(configs, dict) or not configs or not all(isinstance(v, dict) for v in configs.values()):
        raise UserError(f"{path}: 'configurations' must map names to tables of options, e.g. plain: {{model: classifier}}")
    seeds = spec.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise UserError(f"{path}: 'seeds' must be a list of whole numbers, e.g. [0, 1, 2]")
    return {"kind": next(iter(budgets)), "budgets": list(next(iter(budgets.values()))), "seeds": seeds,
            "configurations": configs, "out": spec.get("out")}


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue())


def cell_options(options: dict, kind: str, budget, seed: int) -> tuple[str | None, dict]:
    """A cell's ``finetune`` run (None: train) and the options it trains with: the configuration's
    (which has no budget of its own: ``sweep`` refuses one), with the cell's budget (``labels`` is
    text: a number or "all") and seed."""
    options = dict(options)
    base = options.pop("finetune", None)
    return base, {**options, kind: str(budget) if kind == "labels" else budget, "seed": seed}


def run_cell(name: str, options: dict, kind: str, budget, seed: int, out: Path) -> dict:
    """Train and evaluate one cell; its result row."""
    base, options = cell_options(options, kind, budget, seed)
    t0 = time.perf_counter()
    path = (finetune(base, out=out, progress=False, **options) if base
            else train(out=out, progress=False, **options))
    seconds = time.perf_counter() - t0
    res = evaluate(path)
    info = json.loads((path / "data.json").read_text())
    n_classes = len(info["heads"][0]["classes"])
    return {"configuration": name, "budget_kind": kind, "budget": budget, "seed": seed,
            "n_labelled": info["n_labelled"], "labels_per_class": info["n_labelled"] / n_classes,
            "top1": res.get("accuracy"), "top5": res.get("top5_accuracy", ""), "log_loss": res.get("log_loss"),
            "seconds": round(seconds, 2), "run": str(path)}


def sweep(spec_path: str, out: str | Path | None = None) -> Path:
    spec = read_spec(spec_path)
    for name, options in spec["configurations"].items():  # every option checked before any folder is made
        own = [k for k in BUDGET_KINDS if k in options]
        if own:  # the grid's budget would replace it without a word
            raise UserError(f"configuration {name!r} of {spec_path} sets {own[0]}: {options[own[0]]}, but a sweep's "
                            "budgets come from its 'budgets' list; drop it from the configuration")
        base, first = cell_options(options, spec["kind"], spec["budgets"][0], spec["seeds"][0])
        try:
            if base is None:  # options, data and model, as training will check them
                prepare(absolute_paths(resolve(None, nest({k: v for k, v in first.items() if k != "quiet"}))))
            else:
                load_run(base)
        except UserError as e:
            raise UserError(f"configuration {name!r} of {spec_path}: {e}") from None
    root = Path(out or spec["out"] or Path(spec_path).with_suffix(""))
    record = root / "configurations.json"  # what each finished cell ran: a changed configuration reruns nothing
    ran = json.loads(record.read_text()) if record.is_file() else {}
    configs = json.loads(json.dumps(spec["configurations"]))
    changed = [n for n, o in configs.items() if n in ran and ran[n] != o]
    if changed:
        raise UserError(f"configuration {changed[0]!r} of {spec_path} differs from the one {root} ran under that "
                        "name; give a new --out, or the changed configuration a new name")
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(record, json.dumps({**ran, **configs}, indent=1))
    results = root / "results.csv"
    rows = _read_rows(results)
    done = {(r["configuration"], str(r["budget"]), str(r["seed"])) for r in rows}
    for name, options in spec["configurations"].items():
        for budget in spec["budgets"]:
            for seed in spec["seeds"]:
                if (name, str(budget), str(seed)) in done:
                    continue
                cell = root / "runs" / name / f"{budget}-s{seed}"
                if cell.exists():  # left by an interrupted cell
                    shutil.rmtree(cell)
                rows.append(run_cell(name, options, spec["kind"], budget, seed, cell))
                _write_rows(results, rows)
                write_page(root, rows)
    write_page(root, rows)
    return root


def sweep_figure(rows: list[dict]):
    """Accuracy against labels per class (log axis): mean and spread over seeds per configuration."""
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    for name in dict.fromkeys(r["configuration"] for r in rows):
        rs = [r for r in rows if r["configuration"] == name]
        xs = sorted({float(r["labels_per_class"]) for r in rs})
        acc = [[float(r["top1"]) for r in rs if float(r["labels_per_class"]) == x] for x in xs]
        mean, std = np.array([np.mean(a) for a in acc]), np.array([np.std(a) for a in acc])
        ax.plot(xs, mean, marker="o", ms=3, label=name)
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    ax.set_xscale("log")
    ax.set(xlabel="labels per class", ylabel="test accuracy (top-1)", title="accuracy against labels (mean ± std over seeds)")
    ax.legend(fontsize="small")
    return fig


def write_page(root: Path, rows: list[dict]) -> None:
    if not rows:
        return
    png = png_bytes(sweep_figure(rows))
    write_atomic(root / "sweep.png", png)
    head = "".join(f"<th>{c}</th>" for c in COLUMNS[:-1])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in COLUMNS[:-1]) + "</tr>" for r in rows)
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>semivae sweep: {html.escape(root.name)}"
            "</title><style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}</style></head><body>"
            f"<h1>Sweep {html.escape(root.name)}</h1><h2>Accuracy against labels</h2>"
            f'<img alt="sweep" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            f"<h2>Cells</h2><table><tr>{head}</tr>{body}</table></body></html>")
    write_atomic(root / "sweep.html", page)
