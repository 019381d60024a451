"""``semivae report RUN``: one self-contained HTML page per run.

The page holds the configuration, the summary and test metrics, and every figure that
applies (``figures.run_figures``), each embedded as a base64 PNG so the file stands alone;
the same PNGs are written to ``RUN/figures/``. Files are written whole (temporary file, then
rename): an interrupted report leaves the previous one, never half of one.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..atomic import write_atomic
from ..errors import UserError
from ..eval.anomaly import ANOMALY_COLUMNS, anomaly_table, load_anomaly
from ..eval.disentangle import load_disentanglement
from ..eval.disentanglement import HEADLINE
from ..eval.evaluation import evaluate
from ..runs import Run, as_run, status
from .canvas import png_bytes
from .figures import run_figures, title

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
pre{background:#f5f5f5;padding:1em;overflow:auto}img{max-width:100%;border:1px solid #eee}"""

SUMMARY_KEYS = ("status", "epochs", "seconds", "n_parameters", "n_labelled", "validation_labels", "best_epoch")
METRIC_KEYS = ("accuracy", "log_loss", "ece", "temperature", "ece_uncalibrated", "log_loss_uncalibrated", "elbo", "recon",
               "kl", "target_rmse", "target_r2")


def _table(rows: dict) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>" for k, v in rows.items()) + "</table>"


def _anomaly_part(res: dict) -> list[str]:
    """The detector's scores on the test split, the default one in bold (as ``semivae anomaly`` prints them)."""
    headline, rows = anomaly_table(res)
    cells = [[f"<strong>{c}</strong>" if row[0] == res["default_score"] else c for c in map(html.escape, row)]
             for row in rows]
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in ANOMALY_COLUMNS) + "</tr>"
    return ["<h2>Anomaly detection</h2>", f"<p>{html.escape(headline)}</p>", f"<table>{head}{body}</table>"]


def report_html(run: Run | str | Path, data_dir: str | None = None, seed: int = 0,
                device: str | None = None) -> tuple[str, dict[str, bytes]]:
    """(page, {figure name: PNG bytes})."""
    run = as_run(run, device)
    cfg, info, spec = run.config, run.data_info, run.spec
    summary_path = run.path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    what = cfg.model.run_name()
    facts = {"model": cfg.model.model + (f" ({what})" if what != cfg.model.model else ""), "dataset": info["dataset"],
             **{spec.key("classes", h.name): len(h.classes) for h in spec.heads},
             "arch": cfg.arch.arch, "latent_dim": cfg.arch.latent_dim}
    facts.update({k: summary[k] for k in SUMMARY_KEYS if k in summary})
    parts = [f"<h1>semivae run {html.escape(run.path.name)}</h1>"]
    unfinished = status(run)
    if unfinished:
        parts.append(f"<p><strong>{html.escape(unfinished)}</strong></p>")
    parts += ["<h2>Summary</h2>", _table(facts)]
    res = None
    try:
        res = evaluate(run, data_dir=data_dir)
        shown = {k: v for k, v in res.items() if k.split("/")[0] in METRIC_KEYS}
        parts += ["<h2>Test metrics</h2>", _table(shown | {"points": res["n"]})]
        parts += [f"<p>{html.escape(note)}</p>" for note in res.get("notes", []) if note != unfinished]
    except UserError as e:
        parts += ["<h2>Test metrics</h2>", f"<p>not available: {html.escape(str(e))}</p>"]
    if (run.path / "anomaly.json").is_file():
        parts += _anomaly_part(load_anomaly(run))
    dis = load_disentanglement(run.path)
    if dis:
        parts += ["<h2>Disentanglement</h2>", _table({f"{k} ({HEADLINE[k]})": v for k, v in dis["headline"].items()}),
                  f"<p>factors: {html.escape(', '.join(dis['factors']))}; each latent dimension's best factor labels "
                  "its row of the traversals</p>"]
    pngs: dict[str, bytes] = {}
    for name, fig in run_figures(run, data_dir, seed, results=res):
        pngs[name] = png_bytes(fig)
        b64 = base64.b64encode(pngs[name]).decode()
        parts += [f"<h2>{html.escape(title(name))}</h2>",
                  f'<img alt="{html.escape(name)}" src="data:image/png;base64,{b64}">']
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape((run.path / 'config.yaml').read_text())}</pre>"]
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>semivae: {html.escape(run.path.name)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    return page, pngs


def write_report(run: Run | str | Path, data_dir: str | None = None, seed: int = 0, device: str | None = None) -> Path:
    """Write ``RUN/report.html`` and ``RUN/figures/<name>.png``; returns the page's path."""
    run = as_run(run, device)
    page, pngs = report_html(run, data_dir, seed)
    path = run.path
    (path / "figures").mkdir(exist_ok=True)
    for name, data in pngs.items():
        write_atomic(path / "figures" / f"{name}.png", data)
    write_atomic(path / "report.html", page)
    return path / "report.html"
