"""The commands that take a trained run elsewhere: ``embed``, ``impute``, ``export``,
``calibrate``, ``suggest``. Each writes its file whole, or nothing on bad input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..atomic import write_atomic
from ..errors import UserError
from .flags import device_flags, threads_flag


def add_parsers(sub) -> None:
    em = sub.add_parser("embed", help="latent means and log-variances of q(z|x), class probabilities and ids of new data")
    em.add_argument("run", help="run directory of a model with a latent space")
    em.add_argument("input", help=".npz (x), image folder or .csv of the same form as the training data")
    em.add_argument("--out", required=True, help="z.npz (arrays mu, logvar, proba_<head>, classes_<head>, ids) or "
                    "z.csv (row, id, z_*, logvar_*, p_*)")
    device_flags(em)

    im = sub.add_parser("impute", help="a table's missing cells (empty, NA or NaN) filled in by the model")
    im.add_argument("run", help="run directory of a model with a decoder, trained on a table")
    im.add_argument("input", help=".csv or .npz (x, NaN where missing) of the same columns as the training data")
    im.add_argument("--out", required=True, help="filled.csv (a CSV input as it is, its gaps filled; else row, id, "
                    "the feature columns) or filled.npz (x, observed, ids)")
    im.add_argument("--samples", type=int, default=100, help="importance-sampling draws of z per row (default: 100; "
                    "0: the decoder at the mean of q(z|x), faster)")
    device_flags(im)

    ex = sub.add_parser("export", help="the run as an ONNX graph: inputs -> probabilities, z mean, anomaly score")
    ex.add_argument("run", help="run directory (a dense, conv or recurrent model)")
    ex.add_argument("--out", required=True, help="the .onnx file to write")
    ex.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    ex.add_argument("--check", help="also run the file in onnxruntime on these inputs (.npz x [and lengths], "
                    "folder or .csv) and print the largest difference from PyTorch")
    threads_flag(ex)  # the graph is traced on the CPU

    ca = sub.add_parser("calibrate", help="fit temperature scaling on a run's validation labels; ECE and log loss "
                        "before and after")
    ca.add_argument("run", help="run directory trained with --val-labels K")
    ca.add_argument("--unknown-fpr", type=float, default=None,
                    help="also re-set the unknown-input threshold at this validation false-positive rate")
    ca.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    device_flags(ca)

    sg = sub.add_parser("suggest", help="which unlabelled training points to label next (uncertain and diverse, or "
                        "typical before any label)")
    sg.add_argument("run", help="run directory (a run without labels, e.g. --mode unsupervised, gets typical points)")
    sg.add_argument("--n", type=int, default=50, help="how many points (default: 50)")
    sg.add_argument("--strategy", default="auto", choices=["auto", "margin", "typical"],
                    help="margin: uncertain and diverse; typical: one representative point per k-means cluster of "
                         "the latent space, for a first budget; auto (default): typical for a run without a class "
                         "layer, margin otherwise")
    sg.add_argument("--pool", type=int, default=None,
                    help="draw the diverse batch from the N most uncertain candidates (default: max(10 n, 1000))")
    sg.add_argument("--with-labelled", action="store_true",
                    help="list the run's labelled points first, so the file feeds the next --label-ids as it stands")
    sg.add_argument("--out", help="CSV file to write (default: stdout)")
    sg.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    device_flags(sg)


def cmd_embed(a: argparse.Namespace) -> int:
    from ..eval.embed import check_format, embed, embedding_bytes

    check_format(a.out)  # before any work
    emb = embed(a.run, a.input, device=a.device)
    write_atomic(Path(a.out), embedding_bytes(emb, a.out))
    print(f"wrote {a.out}: {len(emb['mu'])} points, latent {tuple(emb['mu'].shape[1:])}")
    return 0


def cmd_impute(a: argparse.Namespace) -> int:
    from ..eval.impute import check_format, impute, imputed_bytes
    from ..runs import load_run

    check_format(a.out)  # before any work
    run = load_run(a.run, a.device)
    filled = impute(run, a.input, samples=a.samples)
    write_atomic(Path(a.out), imputed_bytes(run, filled, a.out, source=a.input))
    print(f"wrote {a.out}: {len(filled['x'])} rows, {int((~filled['observed']).sum())} missing cells filled in")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from ..export import check_export, export_onnx

    data = None
    if a.check:  # read before anything is written: a bad --check leaves no graph behind
        from ..eval.evaluation import read_inputs
        from ..runs import load_run

        run = load_run(a.run)
        data = read_inputs(run, a.check)
    info = export_onnx(a.run, a.out, opset=a.opset)
    lengths = ", lengths ['N']" if "lengths" in info["inputs"] else ""
    print(f"wrote {a.out}: x {info['input_shape']}{lengths} -> {', '.join(info['outputs'])} (opset {info['opset']})")
    if data is not None:
        lengths = None if data.lengths is None else data.lengths.numpy()
        for name, d in check_export(run, a.out, data.stored(), lengths).items():  # training units, NaN where missing
            print(f"  {name}: max |onnxruntime - pytorch| / max(1, |pytorch|) = {d:.3g}")
    return 0


def cmd_calibrate(a: argparse.Namespace) -> int:
    from ..eval.calibration import calibrate
    from ..eval.unknown import fit_unknown
    from ..runs import load_run

    if a.unknown_fpr is not None and not 0 < a.unknown_fpr < 1:  # before calibration.json is written
        raise UserError(f"--unknown-fpr {a.unknown_fpr} is outside (0, 1); give e.g. 0.05")
    run = load_run(a.run, a.device)
    res = calibrate(run, data_dir=a.data_dir)
    for head, v in res["heads"].items():
        b, f = v["before"], v["after"]
        print(f"{head}: temperature {v['temperature']:.3f} on {v['n_val']} validation labels; "
              f"ECE {b['ece']:.4f} -> {f['ece']:.4f}, log loss {b['log_loss']:.4f} -> {f['log_loss']:.4f}")
        if v["n_val"] < 100:  # as evaluate says of a small split
            print(f"note: {v['n_val']} validation labels make these figures rough, and the temperature a rough fit "
                  "(it minimises their log loss; ECE over so few points moves either way); more: --val-labels K",
                  file=sys.stderr)
    if a.unknown_fpr is not None:
        u = fit_unknown(run, target_fpr=a.unknown_fpr, data_dir=a.data_dir)
        print(f"unknown inputs: {u['score']} > {u['threshold']:.4g} ({u['target_fpr']:.0%} of validation points)")
    also = f" and {Path(a.run) / 'unknown.json'}" if a.unknown_fpr is not None else ""
    print(f"wrote {Path(a.run) / 'calibration.json'}{also}")
    return 0


def cmd_suggest(a: argparse.Namespace) -> int:
    from ..eval.suggest import suggest, suggestions_csv
    from ..runs import load_run
    from .commands import _emit_csv, csv_out

    csv_out(a.out)
    run = load_run(a.run, a.device)
    rows = suggest(run, a.n, pool=a.pool, strategy=a.strategy, data_dir=a.data_dir)
    if len(rows) < a.n:
        print(f"note: only {len(rows)} unlabelled training points to suggest, not {a.n}", file=sys.stderr)
    return _emit_csv(suggestions_csv(run, rows, a.with_labelled), a.out)


COMMANDS = {"embed": cmd_embed, "impute": cmd_impute, "export": cmd_export, "calibrate": cmd_calibrate,
            "suggest": cmd_suggest}

__all__ = ["COMMANDS", "add_parsers"]
