"""The ``semivae`` command's parser: every training flag generated from the config fields
(``semivae.config``), so a flag, a config-file key and a Python keyword share one name, type
and help text; the other commands' flags written out here."""

from __future__ import annotations

import argparse

from ..config import PRESETS, SECTIONS, section_fields
from ..errors import UserError
from ..models import MODELS
from ..options import default_of, flag_kwargs, hints, shown
from ..version import __version__
from . import serving
from .flags import device_flags


def _default_text(section: str, name: str) -> str:
    """The default of an option: a [model] option whose default differs by model lists them, and an
    option the default preset sets for an --arch names that arch's value (read from PRESETS)."""
    if section != "model" or name == "model":
        v = default_of(section_fields(section)[name])
        parts = [] if v is None else [shown(v)]
    else:
        per_model = {m: default_of(e.config.__dataclass_fields__[name]) for m, e in MODELS.items()
                     if name in e.config.__dataclass_fields__}
        values = list(per_model.values())
        if all(v == values[0] for v in values):
            parts = [] if values[0] is None else [shown(values[0])]
        else:
            parts = [f"{m} {shown(v)}" for m, v in per_model.items()]
    per_arch = {arch: shown(preset[section][name]) for arch, preset in PRESETS["default"].items()
                if name in preset.get(section, {})}
    parts += [f"--arch {arch}: {v}" for arch, v in per_arch.items() if [v] != parts]
    parts += [f"--arch {arch} with --anomaly-class: {shown(preset['detector'][section][name])}"
              for arch, preset in PRESETS["default"].items() if name in preset.get("detector", {}).get(section, {})]
    stated = "(default:" in section_fields(section)[name].metadata["help"]  # the help says it in words
    return f" (default: {'; '.join(parts)})" if parts and not stated else ""


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    for section in SECTIONS:
        group = parser.add_argument_group(f"{section} options")
        types_ = {k: v for klass in reversed(_klasses(section)) for k, v in hints(klass).items()}
        for name, f in section_fields(section).items():
            group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                               help=f.metadata["help"] + _default_text(section, name), **flag_kwargs(types_[name]))


class _Parser(argparse.ArgumentParser):
    """argparse with the command's bad-input contract: an unknown, ambiguous or malformed flag is a
    one-line UserError (``main`` prints it and exits 2), not fifty lines of usage. Subcommand
    parsers inherit the class."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message}; see `{self.prog} --help`")

    def parse_args(self, args=None, namespace=None):  # unknown flags are the command's, so is the help to read
        parsed, rest = self.parse_known_args(args, namespace)
        if rest:
            prog = " ".join([self.prog, getattr(parsed, "command", None) or ""]).strip()
            raise UserError(f"{prog}: unrecognized arguments: {' '.join(rest)}; see `{prog} --help`")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="semivae", description="One variational autoencoder for 0-100 % labels: "
                                "train, evaluate and predict from the command line.")
    p.add_argument("--version", action="version", version=f"semivae {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model and write a run directory",
                       description="Train a semi-supervised (or unsupervised / supervised) VAE. "
                       "Precedence: defaults < --preset < --config file < flags.")
    t.add_argument("--resume", metavar="RUN", help="continue a stopped run from its checkpoint (with --epochs, "
                   "--device, --threads; other options are the run's own)")
    t.add_argument("--nproc", type=int, default=None, help="train in N processes through torchrun "
                   "(DistributedDataParallel; gloo on CPU, NCCL on GPU)")
    _add_run_flags(t)

    ft = sub.add_parser("finetune", help="a classifier on a trained run's encoder (frozen or trainable), as a new run",
                        description="Transfer learning: the base run's data and encoder, a fresh --head ff|conv, the "
                        "encoder started from the run's weights; --freeze keeps it fixed, else --encoder-lr.")
    ft.add_argument("base_run", help="a run with an encoder (e.g. trained with --mode unsupervised)")
    _add_run_flags(ft)

    ds = sub.add_parser("distill", help="a conv classifier taught by trained runs' probabilities (the noisy student), "
                        "as a new run", description="Distillation: the teachers' data and label draw, a classifier "
                        "(conv for images) that learns the teachers' averaged probabilities on every unlabelled point "
                        "through shifts (--augment-*); any train option overrides.")
    ds.add_argument("teachers", nargs="+", metavar="RUN",
                    help="trained run(s) with a class layer; several: their average")
    _add_run_flags(ds)

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
    sc.add_argument("input", help=".npz (x), image folder or file, or .csv, of the same form as the training data")
    sc.add_argument("--score", default=None, help="which score (default: the run's default, see anomaly.json)")
    sc.add_argument("--out", help="CSV file to write (default: stdout)")
    device_flags(sc)

    fb = sub.add_parser("feedback", help="fine-tune an anomaly run on marked false positives / negatives")
    fb.add_argument("run", help="run directory written by `semivae anomaly`")
    fb.add_argument("--false-positives",
                    help="normal points the detector flagged (.npz x, image folder or file, or .csv)")
    fb.add_argument("--false-negatives", help="anomalies the detector missed (same forms)")
    fb.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default: 5)")
    fb.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: the run's)")
    fb.add_argument("--out", required=True, help="the new run directory")
    fb.add_argument("--quiet", action="store_true", help="no progress bar")
    device_flags(fb)

    e = sub.add_parser("evaluate", help="accuracy, log loss, ELBO and confusion matrix of a run on a split")
    e.add_argument("run", nargs="+", help="run directory written by `semivae train`; several: their ensemble "
                   "(class probabilities averaged; train them with one --split-seed and different --seed)")
    e.add_argument("--split", default=None, choices=["test", "val", "train"], help="which split (default: test)")
    e.add_argument("--data", help="score labelled data of the training form instead of a split: an image folder with "
                   "one sub-folder per class, a .csv with the label column or a .npz with y (classes matched by name)")
    e.add_argument("--label-column", help="with --data as a .csv: its label column, where not the run's own")
    e.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    e.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    e.add_argument("--iwae-k", type=int, default=0,
                   help="also report the test negative log-likelihood, the IWAE bound with this many samples (e.g. 5000)")
    e.add_argument("--iwae-points", type=int, default=None, help="score only the first N points for the NLL (default: all)")
    device_flags(e)

    r = sub.add_parser("predict", help="class probabilities (and continuous targets) for new data, as CSV")
    r.add_argument("run", nargs="+", help="run directory written by `semivae train`; several: their ensemble")
    r.add_argument("input", help=".npz (x), image folder or file, or .csv, of the same form as the training data")
    r.add_argument("--out", help="CSV file to write (default: stdout): row, id, predicted, p_<class>..., and "
                   "unknown_score / unknown (1 = unlike the training data) where the run has a threshold")
    device_flags(r)

    g = sub.add_parser("generate", help="samples from a run's decoder as a PNG grid (one row per class)")
    g.add_argument("run", help="run directory written by `semivae train`")
    g.add_argument("--class", dest="only_class", default=None, help="one class (name or index) instead of all")
    g.add_argument("--n", type=int, default=10, help="samples per class (columns), or in all for a plain VAE (default: 10)")
    g.add_argument("--seed", type=int, default=0, help="seed of the z draws (default: 0)")
    g.add_argument("--out", help="PNG to write (default: RUN/figures/generate.png)")
    g.add_argument("--npz", help="also save the samples as arrays (x: (rows, n, *shape), z, classes) to this .npz")
    g.add_argument("--prior-z", action="store_true", help="draw z from N(0, I) for every class (the paper's figures) "
                                                          "instead of from the class's own region of z, fitted after "
                                                          "training (RUN/class_latents.safetensors)")
    device_flags(g)

    v = sub.add_parser("traverse", help="latent traversals: one row per dimension, ranked by KL")
    v.add_argument("run", help="run directory written by `semivae train`")
    v.add_argument("--index", type=int, default=0, help="test point whose code the others stay at (default: 0)")
    v.add_argument("--span", type=float, default=3.0, help="sweep each dimension over [-span, span] (default: 3)")
    v.add_argument("--steps", type=int, default=9, help="values per sweep (default: 9)")
    v.add_argument("--dims", type=int, default=None, help="show only the N dimensions with the most KL")
    v.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    v.add_argument("--out", help="PNG to write (default: RUN/figures/traverse.png)")
    device_flags(v)

    d = sub.add_parser("disentangle", help="disentanglement metrics of a run's latent space (betaVAE, FactorVAE, MIG, DCI)")
    d.add_argument("run", help="run directory of a model with a decoder, trained on data with known factors")
    d.add_argument("--metrics", type=lambda s: [m.strip() for m in s.split(",") if m.strip()], default=None,
                   help="comma-separated subset of beta_vae,factor_vae,mig,dci (default: all)")
    d.add_argument("--seed", type=int, default=0, help="seed of the factor draws (default: 0)")
    d.add_argument("--scale", type=float, default=1.0,
                   help="multiply each metric's number of points (default 1: 1,000-5,000; 0.1 for a quick look)")
    d.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    d.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    device_flags(d)

    serving.add_parsers(sub)

    h = sub.add_parser("report", help="write RUN/report.html: config, metrics and every figure, self-contained")
    h.add_argument("run", help="run directory written by `semivae train`")
    h.add_argument("--data-dir", help="where the dataset lives now, if it moved")
    device_flags(h)

    dp = sub.add_parser("data", help="data sets: pack one to disk for training on data larger than memory")
    dsub = dp.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    pk = dsub.add_parser("pack", help="write a data set as memory-mapped .npy files, read back with --dataset OUT")
    pk.add_argument("input", help="any data set the project reads (a name or a path)")
    pk.add_argument("out", help="the folder to create")
    pk.add_argument("--augment-shifts", type=int, default=0,
                    help="images: add every shift by up to K pixels each way as a new image (K=2: 25x the images)")
    pk.add_argument("--data-dir", help="where a named data set's files live")
    pk.add_argument("--label-column", default="label", help="the label column of a CSV file")
    _read_flags(pk, PACK_READS)
    pk.add_argument("--quiet", action="store_true", help="no progress bar")

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


# the [data] options that say how to read a file, which `data pack` takes as `train` does
PACK_READS = ("image_size", "test_data", "id_column", "feature_columns")


def _read_flags(p: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    fields, types_ = section_fields("data"), {k: v for klass in _klasses("data") for k, v in hints(klass).items()}
    for name in names:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=fields[name].metadata["help"],
                       **flag_kwargs(types_[name]))


def _klasses(section: str) -> list:
    return SECTIONS[section] if isinstance(SECTIONS[section], list) else [SECTIONS[section]]


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """What every command that trains a run takes: config file, preset, output, and every config field."""
    p.add_argument("--config", help="TOML or YAML file with [data], [arch], [model], [train] sections")
    p.add_argument("--preset", default=None, help="default (light, for CPUs) or paper (Berkhahn et al. 2019 sizes)")
    p.add_argument("--out", help="run directory to create (default: runs/<date>-<dataset>-<mode>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--report", action="store_true", help="write RUN/report.html when training ends")
    add_config_flags(p)


def _anomaly_scoring_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-fpr", type=float, default=0.05,
                   help="flag threshold: this false-positive rate on validation normal points (default: 0.05)")
    p.add_argument("--score-samples", type=int, default=10, help="z samples L per score (default: 10)")
    p.add_argument("--score-iwae-k", type=int, default=100, help="importance samples of the neg_iwae score (default: 100)")
