"""Command line: ``semivae train | evaluate | predict | bench speed``.

Training flags are generated from the config dataclasses (``semivae.config``), so each
flag has the name, type and help of the field it sets. Bad input prints one line,
``error: <problem>; <fix>``, and exits with code 2.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from importlib.metadata import version
from pathlib import Path

from .atomic import write_atomic
from .config import SECTIONS, load_config_file, nest, resolve, section_fields
from .errors import TrainingDiverged, UserError
from .models import MODELS
from .options import default_of, flag_kwargs, hints, shown


def _default_text(section: str, name: str) -> str:
    """The default of an option; a [model] option whose default differs by model lists them."""
    if section != "model" or name == "model":
        v = default_of(section_fields(section)[name])
        return "" if v is None else f" (default: {shown(v)})"
    per_model = {m: default_of(e.config.__dataclass_fields__[name]) for m, e in MODELS.items()
                 if name in e.config.__dataclass_fields__}
    values = list(per_model.values())
    if all(v == values[0] for v in values):
        return "" if values[0] is None else f" (default: {shown(values[0])})"
    return " (default: " + "; ".join(f"{m} {shown(v)}" for m, v in per_model.items()) + ")"


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    for section in SECTIONS:
        group = parser.add_argument_group(f"{section} options")
        klasses = SECTIONS[section] if isinstance(SECTIONS[section], list) else [SECTIONS[section]]
        types_ = {k: v for klass in reversed(klasses) for k, v in hints(klass).items()}
        for name, f in section_fields(section).items():
            group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                               help=f.metadata["help"] + _default_text(section, name), **flag_kwargs(types_[name]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semivae", description="One variational autoencoder for 0-100 % labels: "
                                "train, evaluate and predict from the command line.")
    p.add_argument("--version", action="version", version=f"semivae {version('semivae')}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model and write a run directory",
                       description="Train a semi-supervised (or unsupervised / supervised) VAE. "
                       "Precedence: defaults < --preset < --config file < flags.")
    _add_run_flags(t)

    ft = sub.add_parser("finetune", help="a classifier on a trained run's encoder (frozen or trainable), as a new run",
                        description="Transfer learning: the base run's data and encoder, a fresh --head ff|conv, the "
                        "encoder started from the run's weights; --freeze keeps it fixed, else --encoder-lr.")
    ft.add_argument("base_run", help="a run with an encoder (e.g. trained with --mode unsupervised)")
    _add_run_flags(ft)

    sw = sub.add_parser("sweep", help="label budgets x seeds x configurations, resumable; one CSV, a plot and a page",
                        description="Runs each cell of a spec (YAML or TOML: seeds, budgets, configurations) in turn, "
                        "skipping finished cells; writes OUT/results.csv, OUT/sweep.png and OUT/sweep.html.")
    sw.add_argument("spec", help="the sweep's spec file")
    sw.add_argument("--out", help="folder for the sweep (default: the spec's 'out', else the spec's name)")

    an = sub.add_parser("anomaly", help="train on the normal classes of a dataset, then score held-out normal and "
                        "anomalous points (AUROC, AP, thresholds, ROC figure)",
                        description="The anomaly protocol of Berkhahn et al. 2019: --anomaly-class is left out of "
                        "training; add --mode unsupervised for the plain VAE on the same data and seed.")
    _anomaly_scoring_flags(an)
    _add_run_flags(an)

    sc = sub.add_parser("score", help="anomaly scores of new data as CSV: score, flag, predicted class")
    sc.add_argument("run", help="run directory written by `semivae anomaly` or `semivae feedback`")
    sc.add_argument("input", help=".npz (x), image folder or .csv of the same form as the training data")
    sc.add_argument("--score", default=None, help="which score (default: the run's default, see anomaly.json)")
    sc.add_argument("--out", help="CSV file to write (default: stdout)")

    fb = sub.add_parser("feedback", help="fine-tune an anomaly run on marked false positives / negatives")
    fb.add_argument("run", help="run directory written by `semivae anomaly`")
    fb.add_argument("--false-positives", help="normal points the detector flagged (.npz x, image folder or .csv)")
    fb.add_argument("--false-negatives", help="anomalies the detector missed (same forms)")
    fb.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default: 5)")
    fb.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: the run's)")
    fb.add_argument("--out", required=True, help="the new run directory")
    fb.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="accuracy, log loss, ELBO and confusion matrix of a run on a split")
    e.add_argument("run", help="run directory written by `semivae train`")
    e.add_argument("--split", default="test", choices=["test", "val", "train"], help="which split (default: test)")
    e.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    e.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    e.add_argument("--iwae-k", type=int, default=0,
                   help="also report the test negative log-likelihood, the IWAE bound with this many samples (e.g. 5000)")
    e.add_argument("--iwae-points", type=int, default=None, help="score only the first N points for the NLL (default: all)")

    r = sub.add_parser("predict", help="class probabilities (and continuous targets) for new data, as CSV")
    r.add_argument("run", help="run directory written by `semivae train`")
    r.add_argument("input", help=".npz (x), image folder or .csv of the same form as the training data")
    r.add_argument("--out", help="CSV file to write (default: stdout)")

    g = sub.add_parser("generate", help="samples from a run's decoder as a PNG grid (one row per class)")
    g.add_argument("run", help="run directory written by `semivae train`")
    g.add_argument("--class", dest="only_class", default=None, help="one class (name or index) instead of all")
    g.add_argument("--n", type=int, default=10, help="samples per class (columns), or in all for a plain VAE (default: 10)")
    g.add_argument("--seed", type=int, default=0, help="seed of the z draws (default: 0)")
    g.add_argument("--out", help="PNG to write (default: RUN/figures/generate.png)")
    g.add_argument("--npz", help="also save the samples as arrays (x: (rows, n, *shape), z, classes) to this .npz")

    v = sub.add_parser("traverse", help="latent traversals: one row per dimension, ranked by KL")
    v.add_argument("run", help="run directory written by `semivae train`")
    v.add_argument("--index", type=int, default=0, help="test point whose code the others stay at (default: 0)")
    v.add_argument("--span", type=float, default=3.0, help="sweep each dimension over [-span, span] (default: 3)")
    v.add_argument("--steps", type=int, default=9, help="values per sweep (default: 9)")
    v.add_argument("--dims", type=int, default=None, help="show only the N dimensions with the most KL")
    v.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    v.add_argument("--out", help="PNG to write (default: RUN/figures/traverse.png)")

    d = sub.add_parser("disentangle", help="disentanglement metrics of a run's latent space (betaVAE, FactorVAE, MIG, DCI)")
    d.add_argument("run", help="run directory of a model with a decoder, trained on data with known factors")
    d.add_argument("--metrics", type=lambda s: [m.strip() for m in s.split(",") if m.strip()], default=None,
                   help="comma-separated subset of beta_vae,factor_vae,mig,dci (default: all)")
    d.add_argument("--seed", type=int, default=0, help="seed of the factor draws (default: 0)")
    d.add_argument("--scale", type=float, default=1.0,
                   help="multiply each metric's number of points (default 1: 1,000-5,000; 0.1 for a quick look)")
    d.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    d.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")

    h = sub.add_parser("report", help="write RUN/report.html: config, metrics and every figure, self-contained")
    h.add_argument("run", help="run directory written by `semivae train`")
    h.add_argument("--data-dir", help="where the dataset lives now, if it moved")

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True, metavar="BENCH")
    s = bsub.add_parser("speed", help="matmul GFLOP/s, training samples/s of a model, and their ratio")
    s.add_argument("--batch-size", type=int, default=256, help="training batch size (default: 256)")
    s.add_argument("--steps", type=int, default=30, help="timed training steps (default: 30)")
    s.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both", help="(default: both)")
    s.add_argument("--compile", choices=["no", "yes", "both"], default="both",
                   help="time the eager step, the torch.compile'd step, or both (default: both)")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    s.add_argument("--model", default="semivae",
                   help="semivae (the dense paper model) or another registry name with its defaults, e.g. m2")
    s.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    return p


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """What every command that trains a run takes: config file, preset, output, and every config field."""
    p.add_argument("--config", help="TOML or YAML file with [data], [arch], [model], [train] sections")
    p.add_argument("--preset", default=None, help="default (light, for CPUs) or paper (Berkhahn et al. 2019 sizes)")
    p.add_argument("--out", help="run directory to create (default: runs/<date>-<dataset>-<mode>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--report", action="store_true", help="write RUN/report.html when training ends")
    add_config_flags(p)


def _run_config(a: argparse.Namespace, own: tuple[str, ...] = ()):
    """The resolved RunConfig of a training command: config file < flags (a command's ``own`` flags left out)."""
    file_cfg = load_config_file(a.config) if a.config else {}
    skip = {"command", "config", "out", "quiet", "report", *own}
    return resolve(file_cfg, nest({k: v for k, v in vars(a).items() if k not in skip}))


def _anomaly_scoring_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-fpr", type=float, default=0.05,
                   help="flag threshold: this false-positive rate on validation normal points (default: 0.05)")
    p.add_argument("--score-samples", type=int, default=10, help="z samples L per score (default: 10)")
    p.add_argument("--score-iwae-k", type=int, default=100, help="importance samples of the neg_iwae score (default: 100)")


def _anomaly_table(res: dict) -> str:
    lines = [f"anomaly class {res['anomaly_class']}: {res['n_anomalous']} anomalous of {res['n_test']} test points; "
             f"thresholds at {res['target_fpr']:.0%} validation FPR; default score {res['default_score']}",
             f"{'score':<18}{'AUROC':>8}{'AP':>8}{'test FPR':>10}{'test TPR':>10}"]
    for n, m in res["scores"].items():
        lines.append(f"{n:<18}{m['auroc']:>8.4f}{m['average_precision']:>8.4f}{m['test_fpr']:>10.3f}{m['test_tpr']:>10.3f}")
    return "\n".join(lines)


def cmd_anomaly(a: argparse.Namespace) -> int:
    from .eval.anomaly import evaluate_anomaly
    from .train import train
    from .viz import roc_figure, save_png

    cfg = _run_config(a, own=("target_fpr", "score_samples", "score_iwae_k"))
    if cfg.data.anomaly_class is None:
        raise UserError("semivae anomaly needs --anomaly-class (the class left out of training); e.g. --anomaly-class 7")
    if not 0 < a.target_fpr < 1:
        raise UserError(f"--target-fpr {a.target_fpr} is outside (0, 1); give e.g. 0.05")
    path = train(cfg, out=a.out, progress=not a.quiet)
    res = evaluate_anomaly(path, target_fpr=a.target_fpr, samples=a.score_samples, iwae_k=a.score_iwae_k)
    (path / "figures").mkdir(exist_ok=True)
    save_png(roc_figure(path), path / "figures" / "roc.png")
    print(_anomaly_table(res))
    print(f"run written to {path}")
    if a.report:
        from .viz import write_report

        print(f"report written to {write_report(path)}")
    return 0


def _emit_csv(text: str, out: str | None) -> int:
    """CSV text to ``--out`` (written whole) or to stdout."""
    if out:
        write_atomic(Path(out), text)
        print(f"wrote {text.count(chr(10)) - 1} rows to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_score(a: argparse.Namespace) -> int:
    from .eval.anomaly import score

    return _emit_csv(score(a.run, a.input, a.score), a.out)


def cmd_feedback(a: argparse.Namespace) -> int:
    from .train.feedback import feedback

    path = feedback(a.run, a.false_positives, a.false_negatives, out=a.out, epochs=a.epochs, lr=a.lr,
                    progress=not a.quiet)
    print(_anomaly_table(json.loads((path / "anomaly.json").read_text())))
    print(f"run written to {path}")
    return 0


def cmd_finetune(a: argparse.Namespace) -> int:
    from .runs import load_run
    from .train.finetune import finetune_config
    from .train.training import train

    skip = {"command", "config", "out", "quiet", "report", "base_run"}
    flat = {k: v for k, v in vars(a).items() if k not in skip and v is not None}
    cfg = finetune_config(load_run(a.base_run), flat, load_config_file(a.config) if a.config else None)
    return _finish_training(a, train(cfg, out=a.out, progress=not a.quiet))


def cmd_sweep(a: argparse.Namespace) -> int:
    from .train.sweep import sweep

    root = sweep(a.spec, a.out)
    print(f"wrote {root / 'results.csv'}, {root / 'sweep.png'} and {root / 'sweep.html'}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .train import train

    cfg = _run_config(a)
    return _finish_training(a, train(cfg, out=a.out, progress=not a.quiet))


def _finish_training(a: argparse.Namespace, path: Path) -> int:
    summary = json.loads((Path(path) / "summary.json").read_text())
    final = summary.get("final", {})
    acc = f", val accuracy {final['val_accuracy']:.4f}" if "val_accuracy" in final else ""
    print(f"run written to {path} ({summary.get('epochs')} epochs, {summary.get('seconds', 0):.1f} s{acc})")
    if a.report:
        from .viz import write_report

        print(f"report written to {write_report(path)}")
    return 0


def _table(res: dict) -> str:
    """Every metric (per-head ones as ``accuracy/<head>``), then each head's confusion matrix."""
    lines = [f"run      {res['run']}", f"split    {res['split']} ({res['n']} points)"]
    for k, v in res.items():
        if k.split("/")[0] in ("accuracy", "log_loss", "elbo", "recon", "kl"):
            lines.append(f"{k:<8} {v:.4f}")
    if "nll" in res:
        lines.append(f"nll      {res['nll']:.4f} nats (IWAE, k={res['iwae_k']}, {res['nll_points']} points)")
    for i, (rm, r2) in enumerate(zip(res.get("target_rmse", []), res.get("target_r2", []))):
        lines.append(f"target {i}: rmse {rm:.4g}, r2 {r2:.4f}")
    for key in [k for k in res if k.split("/")[0] == "confusion"]:
        head = key.partition("/")[2]
        classes = res["classes" + (f"/{head}" if head else "")]
        w = max(5, *(len(c) for c in classes))
        lines.append(f"confusion matrix{f' of {head}' if head else ''} (rows: true class, columns: predicted)")
        lines.append(" " * w + " ".join(f"{c:>{w}}" for c in classes))
        for c, row in zip(classes, res[key]):
            lines.append(f"{c:>{w}}" + " ".join(f"{v:>{w}}" for v in row))
    return "\n".join(lines)


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .eval import evaluate

    res = evaluate(a.run, a.split, data_dir=a.data_dir, iwae_k=a.iwae_k, iwae_points=a.iwae_points)
    print(json.dumps(res, indent=1) if a.json else _table(res))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from .eval import predict_all

    return _emit_csv(predict_all(a.run, a.input), a.out)


def _figure_path(run: str, given: str | None, name: str) -> Path:
    if given:
        if not given.endswith(".png"):
            raise UserError(f"--out {given} must name a .png file; add the .png suffix")
        return Path(given)
    (Path(run) / "figures").mkdir(exist_ok=True)
    return Path(run) / "figures" / f"{name}.png"


def cmd_generate(a: argparse.Namespace) -> int:
    import numpy as np

    from .runs import load_run
    from .viz import generate_figure, generation_grid, generation_head, save_png

    run = load_run(a.run)
    if not run.model.has_decoder:
        raise UserError(f"run {a.run} is a supervised classifier without a decoder; it cannot generate")
    if a.n < 1:
        raise UserError(f"--n {a.n} must be >= 1")
    head = generation_head(run.model)
    names = list(head.classes) if head else []
    k = None
    if a.only_class is not None:
        k = names.index(a.only_class) if a.only_class in names else (int(a.only_class) if a.only_class.isdigit() else -1)
        if not (head and 0 <= k < len(names)):
            raise UserError(f"--class {a.only_class} is not a class of this run; choose one of {names}"
                            if head else "--class needs a model with a class layer; drop it")
    out = _figure_path(a.run, a.out, "generate")
    fig = generate_figure(run.model, n=a.n, only_class=k, seed=a.seed)
    if a.npz:
        classes = [k] if k is not None else (list(range(len(names))) if head else None)
        grid, z = generation_grid(run.model, a.n, classes, a.seed)
        buf = io.BytesIO()
        np.savez(buf, x=grid.numpy(), z=z.numpy(), classes=np.array([names[c] for c in classes or []]))
        write_atomic(Path(a.npz), buf.getvalue())
    print(f"wrote {save_png(fig, out)}")
    return 0


def cmd_traverse(a: argparse.Namespace) -> int:
    from .runs import load_run
    from .viz import figures, save_png, traverse_figure

    run = load_run(a.run)
    if not run.model.has_decoder:
        raise UserError(f"run {a.run} is a supervised classifier without a decoder; it has no latent space to traverse")
    if a.steps < 2 or a.span <= 0:
        raise UserError("--steps must be >= 2 and --span > 0")
    got = figures.figure_data(run, a.data_dir)
    if got is None:
        raise UserError(f"cannot read the dataset of run {a.run}; pass --data-dir where it lives now")
    data, x, _ = got
    if not 0 <= a.index < len(x):
        raise UserError(f"--index {a.index} is outside 0..{len(x) - 1}; choose a point of the test split")
    out = _figure_path(a.run, a.out, "traverse")
    import torch

    fig = traverse_figure(run.model, x, index=a.index, span=a.span, steps=a.steps, max_dims=a.dims, data=data,
                          mask=data.mask(torch.arange(len(data))))
    print(f"wrote {save_png(fig, out)}")
    return 0


def cmd_disentangle(a: argparse.Namespace) -> int:
    from .eval.disentangle import disentangle

    res = disentangle(a.run, a.metrics, seed=a.seed, scale=a.scale, data_dir=a.data_dir)
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"factors: {', '.join(res['factors'])}")
    for name, value in res["headline"].items():
        print(f"{name:<12}{value:.4f}")
    print("latent dimension -> factor it captures best (normalised mutual information)")
    for d in res["dims"]:
        print(f"  z{d['dim']:<3} {d['factor']:<14} {d['normalized_mi']:.3f}")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .viz import write_report

    print(f"wrote {write_report(a.run, a.data_dir)}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from .train.speed import format_speed, speed_benchmark

    res = speed_benchmark(batch_size=a.batch_size, steps=a.steps, precision=a.precision, device=a.device,
                          compile=a.compile, model=a.model)
    print(json.dumps(res, indent=1) if a.json else format_speed(res))
    return 0


COMMANDS = {"train": cmd_train, "finetune": cmd_finetune, "sweep": cmd_sweep, "anomaly": cmd_anomaly, "score": cmd_score, "feedback": cmd_feedback,
            "evaluate": cmd_evaluate, "predict": cmd_predict, "generate": cmd_generate,
            "traverse": cmd_traverse, "disentangle": cmd_disentangle, "report": cmd_report, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except TrainingDiverged as e:
        print(f"error: training diverged: {e}; lower --lr or --alpha (last good weights kept)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
