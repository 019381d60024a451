"""The ``semivae`` command's actions: one function per command, each taking the parsed flags."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..atomic import write_atomic, write_npz
from ..config import load_config_file, nest, resolve
from ..errors import UserError
from . import serving


def _run_config(a: argparse.Namespace, own: tuple[str, ...] = ()):
    """The resolved RunConfig of a training command: config file < flags (a command's ``own`` flags left out)."""
    file_cfg = load_config_file(a.config) if a.config else {}
    skip = {"command", "config", "out", "quiet", "report", *own}
    return resolve(file_cfg, nest({k: v for k, v in vars(a).items() if k not in skip}))




def _anomaly_table(res: dict) -> str:
    from ..eval.anomaly import ANOMALY_COLUMNS, anomaly_table

    headline, rows = anomaly_table(res)
    widths = (-18, 8, 8, 10, 10)  # negative: left-aligned
    return "\n".join([headline] + ["".join(f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(row, widths))
                                   for row in [list(ANOMALY_COLUMNS), *rows]])


def cmd_anomaly(a: argparse.Namespace) -> int:
    from ..eval.anomaly import load_anomaly
    from ..runs import load_run
    from ..train.detector import anomaly

    cfg = _run_config(a, own=("target_fpr", "score_samples", "score_iwae_k"))
    if cfg.data.anomaly_class is None:
        raise UserError("semivae anomaly needs --anomaly-class (a class of labelled data, left out of training), e.g. "
                        "--anomaly-class 7; data without classes: `semivae train`, then predict's unknown_score")
    path = anomaly(cfg, out=a.out, progress=not a.quiet, target_fpr=a.target_fpr, score_samples=a.score_samples,
                   score_iwae_k=a.score_iwae_k)
    res = load_anomaly(load_run(path))
    _write_roc(path)
    print(_anomaly_table(res))
    print(f"run written to {path}")
    if a.report:
        from ..viz import write_report

        print(f"report written to {write_report(path)}")
    return 0


def _write_roc(path: Path) -> None:
    """RUN/figures/roc.png: the ROC curves of an anomaly run's scores."""
    from ..viz import roc_figure, save_png

    (path / "figures").mkdir(exist_ok=True)
    save_png(roc_figure(path), path / "figures" / "roc.png")


def csv_out(out: str | None) -> str | None:
    """``--out`` of a command that writes CSV, checked before any work: a ``.csv`` file or None."""
    if out and not out.lower().endswith(".csv"):
        raise UserError(f"--out {out}: this command writes CSV text; name a .csv file")
    return out


def _emit_csv(text: str, out: str | None) -> int:
    """CSV text to ``--out`` (written whole; checked by ``csv_out`` before the work) or to stdout."""
    if out:
        write_atomic(Path(out), text)
        print(f"wrote {text.count(chr(10)) - 1} rows to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_score(a: argparse.Namespace) -> int:
    from ..eval.anomaly import score, score_csv

    out = csv_out(a.out)
    return _emit_csv(score_csv(score(a.run, a.input, a.score, device=a.device)), out)


def cmd_feedback(a: argparse.Namespace) -> int:
    from ..train.feedback import feedback

    path = feedback(a.run, a.false_positives, a.false_negatives, out=a.out, epochs=a.epochs, lr=a.lr,
                    progress=not a.quiet, device=a.device)
    _write_roc(path)
    print(_anomaly_table(json.loads((path / "anomaly.json").read_text())))
    inside = json.loads((path / "data.json").read_text())["feedback"].get("marked_in_test", 0)
    if inside:
        print(f"note: {inside} of the points you marked are in the test split; the table counts them as you marked "
              "them, so it reads high: judge the detector on points you did not mark", file=sys.stderr)
    print(f"run written to {path}")
    return 0


def cmd_finetune(a: argparse.Namespace) -> int:
    from ..runs import load_run
    from ..train.finetune import finetune_config
    from ..train.training import train

    skip = {"command", "config", "out", "quiet", "report", "base_run"}
    flat = {k: v for k, v in vars(a).items() if k not in skip and v is not None}
    cfg = finetune_config(load_run(a.base_run), flat, load_config_file(a.config) if a.config else None)
    return _finish_training(a, train(cfg, out=a.out, progress=not a.quiet))


def cmd_distill(a: argparse.Namespace) -> int:
    from ..runs import load_run
    from ..train.distill import distill_config
    from ..train.training import train

    skip = {"command", "config", "out", "quiet", "report", "teachers"}
    flat = {k: v for k, v in vars(a).items() if k not in skip and v is not None}
    cfg = distill_config([load_run(t) for t in a.teachers], flat, load_config_file(a.config) if a.config else None)
    return _finish_training(a, train(cfg, out=a.out, progress=not a.quiet))


def cmd_sweep(a: argparse.Namespace) -> int:
    from ..errors import Interrupted
    from ..train.sweep import sweep

    try:
        root = sweep(a.spec, a.out)
    except (Interrupted, KeyboardInterrupt) as e:
        again = " ".join(["semivae sweep", a.spec] + (["--out", a.out] if a.out else []))
        print(f"interrupted; run `{again}` again to go on (finished cells are kept, the stopped one starts over)",
              file=sys.stderr)
        return 128 + getattr(e, "signum", 2)
    print(f"wrote {root / 'results.csv'}, {root / 'sweep.png'} and {root / 'sweep.html'}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from ..train import resume, train

    if a.nproc is not None and a.nproc < 1:
        raise UserError(f"--nproc {a.nproc} must be >= 1 (the number of training processes)")
    if a.nproc is not None and a.nproc > 1 and "WORLD_SIZE" not in os.environ:
        if not a.resume:  # the processes would each print the error, and torchrun its traceback: check here first
            from ..runs import check_out_dir
            from ..train.training import prepare

            check_out_dir(a.out)
            prepare(_run_config(a, own=("resume", "nproc")))
        from .launch import launch_torchrun

        return launch_torchrun(a.nproc, sys.argv[1:])
    if a.resume:
        given = [k for k, v in vars(a).items() if v is not None and k not in
                 {"command", "resume", "quiet", "report", "epochs", "device", "threads", "nproc"}]
        if given:
            raise UserError(f"--resume continues the run as it was configured; drop --{given[0].replace('_', '-')} "
                            "(only --epochs, --device and --threads may change)")
        return _finish_training(a, resume(a.resume, progress=not a.quiet, epochs=a.epochs, device=a.device,
                                          threads=a.threads))
    cfg = _run_config(a, own=("resume", "nproc"))
    return _finish_training(a, train(cfg, out=a.out, progress=not a.quiet))


def _finish_training(a: argparse.Namespace, path: Path) -> int:
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 writes (and reports) the run
    summary = json.loads((Path(path) / "summary.json").read_text())
    final = summary.get("final", {})
    acc = f", val accuracy {final['val_accuracy']:.4f}" if "val_accuracy" in final else ""
    epochs = summary.get("epochs")
    print(f"run written to {path} ({epochs} epoch{'' if epochs == 1 else 's'}, {summary.get('seconds', 0):.1f} s{acc})")
    if a.report:
        from ..viz import write_report

        print(f"report written to {write_report(path)}")
    return 0


def _table(res: dict) -> str:
    """Every metric (per-head ones as ``accuracy/<head>``), then each head's confusion matrix."""
    labelled = f", {res['n_labelled']} of them labelled" if res.get("n_labelled", res["n"]) != res["n"] else ""
    lines = [f"run      {res['run']}", f"split    {res['split']} ({res['n']} points{labelled})"]
    for k, v in res.items():
        if k.split("/")[0] in ("accuracy", "log_loss", "ece", "elbo", "recon", "kl", "temperature",
                               "ece_uncalibrated", "log_loss_uncalibrated"):
            lines.append(f"{k:<8} {v:.4f}")
    for m in res.get("members", []):
        lines.append(f"member   {m['run']}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if k != "run"))
    if "nll" in res:
        lines.append(f"nll      {res['nll']:.4f} nats (IWAE, k={res['iwae_k']}, {res['nll_points']} points)")
    names = res.get("target_names") or [f"target {i}" for i in range(len(res.get("target_rmse", [])))]
    for name, rm, r2 in zip(names, res.get("target_rmse", []), res.get("target_r2", [])):
        lines.append(f"{name}: rmse {rm:.4g}, r2 {r2:.4f}")
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
    from ..eval import evaluate

    # with --data: a labelled file of the training form, its own labels, instead of a split
    if a.label_column and not a.data:
        raise UserError("--label-column names the label column of --data FILE.csv; give --data, or drop it")
    if a.data and a.split:
        raise UserError(f"--split {a.split} names one of the run's own splits, --data other data; drop one of them")
    if a.iwae_k < 0 or (a.iwae_points is not None and (a.iwae_k == 0 or a.iwae_points < 1)):
        raise UserError("--iwae-k K (>= 1) turns the NLL on, and --iwae-points N (>= 1) only limits it; give both, "
                        "e.g. --iwae-k 5000 --iwae-points 1000")
    res = evaluate(a.run, a.split or "test", x=a.data or None, data_dir=a.data_dir, iwae_k=a.iwae_k,
                   iwae_points=a.iwae_points, device=a.device, label_column=a.label_column)
    for note in res.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps(res, indent=1) if a.json else _table(res))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from ..eval import predict_all

    out = csv_out(a.out)
    return _emit_csv(predict_all(a.run, a.input, device=a.device), out)


def _figure_path(run: str, given: str | None, name: str) -> Path:
    if given:
        if not given.endswith(".png"):
            raise UserError(f"--out {given} must name a .png file; add the .png suffix")
        return Path(given)
    (Path(run) / "figures").mkdir(exist_ok=True)
    return Path(run) / "figures" / f"{name}.png"


def cmd_generate(a: argparse.Namespace) -> int:
    import numpy as np

    from ..data.anomaly import class_index
    from ..runs import load_run
    from ..runs.run import preprocessing
    from ..viz import generate_figure, generation_grid, generation_head, save_png
    from ..viz.samples import unstandardised
    from ..viz.figures import axis_names

    run = load_run(a.run, a.device)
    if not run.model.has_decoder:
        raise UserError(f"run {a.run} is a supervised classifier without a decoder; it cannot generate")
    if a.n < 1:
        raise UserError(f"--n {a.n} must be >= 1")
    head = generation_head(run.model)
    names = list(head.classes) if head else []
    k = None
    if a.only_class is not None:
        if not head:
            raise UserError("--class needs a model with a class layer; drop it")
        k = class_index(names, a.only_class, "--class")
    if a.prior_z:
        run.model.class_latents = None  # z ~ N(0, I) for every class
    if a.npz and Path(a.npz).suffix.lower() != ".npz":
        raise UserError(f"--npz {a.npz} must end in .npz (the samples' arrays); e.g. --npz samples.npz")
    out = _figure_path(a.run, a.out, "generate")
    fig = generate_figure(run.model, n=a.n, only_class=k, seed=a.seed, channel_names=axis_names(run))
    if a.npz:
        classes = [k] if k is not None else (list(range(len(names))) if head else None)
        grid, eps, z = generation_grid(run.model, a.n, classes, a.seed)
        x = unstandardised(grid, preprocessing(run.data_info), run.spec.kind)  # images in [0, 1]
        write_npz(Path(a.npz), x=x, z=z.numpy(), eps=eps.numpy(),
                  classes=np.array([names[c] for c in classes or []]))
    print(f"wrote {save_png(fig, out)}" + (f" and {a.npz}" if a.npz else ""))
    return 0


def cmd_traverse(a: argparse.Namespace) -> int:
    from ..runs import load_run
    from ..viz import figures, save_png, traverse_figure

    run = load_run(a.run, a.device)
    if not run.model.has_decoder:
        raise UserError(f"run {a.run} is a supervised classifier without a decoder; it has no latent space to traverse")
    if a.steps < 2 or a.span <= 0 or (a.dims is not None and a.dims < 1):
        raise UserError("--steps must be >= 2, --span > 0 and --dims >= 1")
    got = figures.figure_data(run, a.data_dir, quiet=False)  # a dataset it cannot read: the reason, raised
    if got is None:
        raise UserError(f"run {a.run} has no point in any split to traverse from")
    data, x, _ = got
    if not 0 <= a.index < len(x):
        raise UserError(f"--index {a.index} is outside 0..{len(x) - 1}; choose a point of the test split")
    out = _figure_path(a.run, a.out, "traverse")
    import torch

    fig = traverse_figure(run.model, x, index=a.index, span=a.span, steps=a.steps, max_dims=a.dims, data=data,
                          mask=data.mask(torch.arange(len(data))), channel_names=figures.axis_names(run))
    print(f"wrote {save_png(fig, out)}")
    return 0


def cmd_disentangle(a: argparse.Namespace) -> int:
    from ..eval.disentangle import disentangle

    res = disentangle(a.run, a.metrics, seed=a.seed, scale=a.scale, data_dir=a.data_dir, device=a.device)
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"factors: {', '.join(res['factors'])}")
    for name, value in res["headline"].items():
        inactive = isinstance(res.get(name), dict) and res[name].get("num_active_dims") == 0
        print(f"{name:<12}{value:.4f}" + ("  (no active latent dimension: every one's variance is below the cut, "
                                          "so no vote can be cast)" if inactive else ""))
    print("latent dimension -> factor it captures best (normalised mutual information)")
    for d in res["dims"]:
        print(f"  z{d['dim']:<3} {d['factor']:<14} {d['normalized_mi']:.3f}")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from ..viz import write_report

    print(f"wrote {write_report(a.run, a.data_dir, device=a.device)}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from ..config import check_device
    from ..train.speed import format_speed, speed_benchmark

    if a.steps < 1 or a.batch_size < 1:
        raise UserError(f"--steps {a.steps} and --batch-size {a.batch_size} must be >= 1")
    check_device(a.device)  # a GPU the machine lacks: one line, before any work
    res = speed_benchmark(batch_size=a.batch_size, steps=a.steps, precision=a.precision, device=a.device,
                          compile=a.compile, model=a.model)
    print(json.dumps(res, indent=1) if a.json else format_speed(res))
    return 0




def cmd_data(a: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..data.packed import pack

    if a.augment_shifts < 0:
        raise UserError(f"--augment-shifts {a.augment_shifts} must be >= 0")
    bundle = load_dataset(a.input, a.data_dir, label_column=a.label_column, image_size=a.image_size,
                          test_data=a.test_data, id_column=a.id_column, feature_columns=a.feature_columns)
    out = pack(bundle, Path(a.out), a.augment_shifts, progress=not a.quiet)
    n = len(bundle.train) * (2 * a.augment_shifts + 1) ** 2
    print(f"packed {n} training and {len(bundle.test)} test points of {bundle.name} into {out}")
    return 0


COMMANDS = {**serving.COMMANDS, "train": cmd_train, "finetune": cmd_finetune, "distill": cmd_distill,
            "sweep": cmd_sweep, "anomaly": cmd_anomaly, "score": cmd_score,
            "feedback": cmd_feedback,
            "evaluate": cmd_evaluate, "predict": cmd_predict, "generate": cmd_generate,
            "traverse": cmd_traverse, "disentangle": cmd_disentangle, "report": cmd_report, "data": cmd_data, "bench": cmd_bench}


