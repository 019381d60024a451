"""Ensembles: ``--split-seed`` shares the labels across training seeds; ``evaluate`` and
``predict`` given several runs average their class probabilities; members that cannot be
averaged are refused with one line."""

import json

import numpy as np
import pytest

from semivae.cli import main
from semivae.errors import UserError
from semivae.eval import evaluate, predict
from semivae.eval.ensemble import average
from semivae.runs import load_run
from semivae.train import train


@pytest.fixture
def members(one_draw_runs):
    """Two runs on one label draw and one on another (conftest)."""
    return one_draw_runs


def test_average_is_the_mean_per_head():
    a = {"label": np.array([[1.0, 0.0], [0.5, 0.5]])}
    b = {"label": np.array([[0.0, 1.0], [0.1, 0.9]])}
    assert np.allclose(average([a, b])["label"], [[0.5, 0.5], [0.3, 0.7]])


def test_one_split_seed_shares_the_labels_and_the_seed_the_weights(members):
    (a, b), other = members
    ra, rb, ro = load_run(a), load_run(b), load_run(other)
    assert np.array_equal(ra.split.val, rb.split.val)
    assert np.array_equal(ra.split.labelled[0], rb.split.labelled[0])
    assert not np.array_equal(ra.split.labelled[0], ro.split.labelled[0])
    wa, wb = (r.model.state_dict() for r in (ra, rb))
    assert any(not np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wa)


def test_an_ensemble_scores_the_averaged_probabilities(members):
    (a, b), _ = members
    res = evaluate([a, b])
    assert res["ensemble"] == 2 and [m["run"] for m in res["members"]] == [str(a), str(b)]
    assert [m["accuracy"] for m in res["members"]] == pytest.approx([evaluate(a)["accuracy"], evaluate(b)["accuracy"]])
    x = load_run(a).split_data("test").x.numpy()
    y = load_run(a).split_data("test").labels[:, 0].numpy()
    pa, classes = predict(a, x)
    pb, _ = predict(b, x)
    pe, _ = predict([a, b], x)
    assert np.allclose(pe, (pa + pb) / 2, atol=1e-6)
    assert res["accuracy"] == pytest.approx(float((pe.argmax(1) == y).mean()))
    assert evaluate([a, a])["accuracy"] == pytest.approx(evaluate(a)["accuracy"])  # a run with itself is the run
    assert sum(map(sum, res["confusion"])) == res["n_labelled"] == len(y)


def test_members_must_share_heads_and_for_validation_their_carve(members, tmp_path):
    (a, _), other = members
    assert evaluate([a, other])["ensemble"] == 2  # the test split is the dataset's own
    with pytest.raises(UserError, match="--split-seed"):
        evaluate([a, other], "val")
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 64)), np.repeat([0, 1, 2], 20)
    three = train(x=x, y=y, out=tmp_path / "three", progress=False, hidden=[16], latent_dim=2, epochs=1, threads=1)
    with pytest.raises(UserError, match="share their heads and classes"):
        evaluate([a, three])
    with pytest.raises(UserError, match="no run given"):
        evaluate([])
    assert evaluate([a])["accuracy"] == pytest.approx(evaluate(a)["accuracy"])  # a list of one is the run
    with pytest.raises(UserError, match="one model's likelihood"):
        evaluate([a, other], iwae_k=5)


def test_the_cli_takes_several_runs(members, tmp_path, capsys):
    (a, b), _ = members
    assert main(["evaluate", str(a), str(b), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ensemble"] == 2 and len(res["members"]) == 2
    assert main(["evaluate", str(a), str(b)]) == 0
    assert "member" in capsys.readouterr().out
    x = load_run(a).split_data("test").x.numpy()[:5]
    np.savez(tmp_path / "new.npz", x=x.reshape(5, 8, 8))
    out = tmp_path / "p.csv"
    assert main(["predict", str(a), str(b), str(tmp_path / "new.npz"), "--out", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert len(rows) == 6 and rows[0].startswith("row,id,predicted,p_0")
