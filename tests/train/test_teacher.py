"""Distillation: ``--teacher`` puts trained runs' probabilities in the batch, the teacher hook
learns them on unlabelled points, ``semivae distill`` trains the noisy student on the teachers'
label draw; a teacher that knew other labels, or a run that cannot learn, is refused."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semivae.cli import main
from semivae.data import Batch
from semivae.errors import UserError
from semivae.eval.ensemble import average, member_outputs
from semivae.models import build_model
from semivae.nn import ArchConfig
from semivae.runs import load_run
from semivae.runs.run import preprocessing
from semivae.train import train
from semivae.train.distill import distill
from semivae.train.teacher import teacher_targets
from tests.conftest import model_config, spec, tiny_config


@pytest.fixture
def teachers(one_draw_runs):
    """Two semi-supervised runs on one label draw, one on another (conftest)."""
    return one_draw_runs


def _classifier(weight=1.0):
    return build_model(spec((1, 8, 8), 3), ArchConfig(arch="dense", hidden=[16], dropout=0.0),
                       model_config("classifier", teacher_weight=weight, augment_shift=0.0, augment_rotate=0.0))


def test_the_teacher_term_is_the_cross_entropy_on_the_unlabelled_points_alone():
    torch.manual_seed(0)
    model = _classifier(weight=2.0)
    x = torch.rand(6, 1, 8, 8)
    labels = torch.tensor([[0], [-1], [2], [-1], [-1], [1]])
    soft = torch.softmax(torch.randn(6, 3), -1)
    model.eval()  # no dropout, no perturbation: the logits below are the ones the loss reads
    out = model(Batch(x, labels, soft=soft))
    logits = model.inference(x).logits["label"]
    unl = labels[:, 0] < 0
    want = -(soft[unl] * F.log_softmax(logits[unl], -1)).sum(-1).mean()
    torch.testing.assert_close(out.terms["teacher"], want)
    ce = F.cross_entropy(logits[~unl], labels[~unl, 0])
    torch.testing.assert_close(out.total, ce + 2.0 * want)
    plain = model(Batch(x, labels))  # no teacher targets: no term
    assert "teacher" not in plain.terms
    torch.testing.assert_close(plain.total, ce)


def test_teacher_mix_blends_taught_points_and_their_targets_alike_and_leaves_labelled_ones():
    torch.manual_seed(0)
    model = build_model(spec((1, 8, 8), 3), ArchConfig(arch="dense", hidden=[16], dropout=0.0),
                        model_config("classifier", teacher_mix=0.75, augment_shift=0.0, augment_rotate=0.0))
    x = torch.rand(8, 1, 8, 8)
    labels = torch.tensor([[0], [-1], [2], [-1], [-1], [1], [-1], [-1]])
    soft = torch.softmax(torch.randn(8, 3), -1)
    mixed = model.taught_batch(Batch(x, labels, soft=soft))
    known = labels[:, 0] >= 0
    assert torch.equal(mixed.x[known], x[known]) and torch.equal(mixed.labels, labels)
    rows = torch.nonzero(~known).flatten()
    for i in rows:  # x_i' = lam x_i + (1 - lam) x_j with j taught, lam >= 0.5, and the targets blended by that lam
        fits = []
        for j in rows:
            d = (x[i] - x[j]).flatten()
            lam = 1.0 if i == j else float(((mixed.x[i] - x[j]).flatten() @ d) / (d @ d))
            if torch.allclose(mixed.x[i], lam * x[i] + (1 - lam) * x[j], atol=1e-5):
                fits.append(torch.allclose(mixed.soft[i], lam * soft[i] + (1 - lam) * soft[j], atol=1e-5)
                            and lam >= 0.5 - 1e-5)
        assert fits and all(fits)
    assert not torch.allclose(mixed.x[rows], x[rows])  # some taught point was blended
    model.eval()
    assert model.taught_batch(Batch(x, labels, soft=soft)).x is x  # no mixing outside training
    with pytest.raises(UserError, match="--teacher-mix"):
        model_config("classifier", teacher_mix=-1.0).validate()


def test_a_student_reads_its_teachers_average_on_every_training_point(teachers, tmp_path):
    (a, b), _ = teachers
    student = distill([a, b], out=tmp_path / "s", epochs=2, progress=False, threads=1)
    run, ra, rb = load_run(student), load_run(a), load_run(b)
    assert run.config.model.model == "classifier" and run.config.arch.arch == "conv"
    assert run.config.data.teacher == [str(a), str(b)]
    assert np.array_equal(run.split.val, ra.split.val) and np.array_equal(run.split.pool, ra.split.pool)
    rows = [json.loads(line) for line in (student / "metrics.jsonl").read_text().splitlines()]
    assert all(r["teacher"] > 0 for r in rows if r.get("stage") == "train")
    bundle = ra.dataset()
    soft = teacher_targets([str(a), str(b)], bundle, ra.split, ra.data_info)  # (N, K) over the whole training file
    shift, scale = preprocessing(ra.data_info)
    points = replace(bundle.train, shift=shift, scale=scale)
    want = average([member_outputs(r, points)["proba"] for r in (ra, rb)])["label"]
    assert soft.shape == (len(bundle.train), 10) and np.allclose(soft.numpy(), want, atol=1e-6)

def test_teachers_of_other_labels_are_refused(teachers, tmp_path):
    (a, _), other = teachers
    with pytest.raises(UserError, match="drew different labels"):
        distill([a, other], out=tmp_path / "mixed", epochs=1, progress=False)
    with pytest.raises(UserError, match="beyond this run's budget"):  # the student's own draw differs
        train(tiny_config(teacher=[str(a)], model="classifier", seed=3), out=tmp_path / "own", progress=False)
    assert not (tmp_path / "mixed").exists() and not (tmp_path / "own").exists()


def test_runs_that_cannot_learn_from_a_teacher_are_refused(teachers, tmp_path):
    (a, _), _ = teachers
    with pytest.raises(UserError, match="--no-unlabelled"):
        distill(a, out=tmp_path / "x", unlabelled=False, progress=False)
    with pytest.raises(UserError, match="no class layer"):
        distill(a, out=tmp_path / "y", model="semivae", mode="unsupervised", progress=False)
    vae = train(tiny_config(mode="unsupervised", epochs=1, split_seed=5, seed=1), out=tmp_path / "vae", progress=False)
    with pytest.raises(UserError, match="has no class layer"):
        distill(vae, out=tmp_path / "z", progress=False)


def test_distill_on_the_command_line(teachers, tmp_path, capsys):
    (a, b), _ = teachers
    out = tmp_path / "cli"
    assert main(["distill", str(a), str(b), "--epochs", "1", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    assert "run written to" in capsys.readouterr().out and (out / "model.safetensors").is_file()
    assert main(["distill", str(tmp_path / "nothing"), "--epochs", "1", "--quiet", "--out", str(tmp_path / "n")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and not (tmp_path / "n").exists()
