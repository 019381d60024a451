"""The Python surface: arrays in (NumPy, torch, pandas, a loaded run), embeddings and unknown
flags out, nothing left behind on bad input."""

import csv
import io

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

import semivae
from semivae.errors import UserError

FAST = {"hidden": [32], "latent_dim": 4, "epochs": 3, "batch_size": 64, "threads": 1}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    y = y.copy()
    y[np.random.default_rng(0).random(len(y)) > 0.2] = -1
    return x, y


@pytest.fixture(scope="module")
def run(digits, tmp_path_factory):
    x, y = digits
    return semivae.train(x=x[:1500], y=y[:1500], out=tmp_path_factory.mktemp("api") / "run", progress=False, **FAST)


def test_train_on_arrays_writes_a_run_that_reloads_from_its_directory(run, digits):
    x, _ = digits
    loaded = semivae.load(run)
    assert (run / "data.npz").is_file() and loaded.config.data.dataset == str((run / "data.npz").resolve())
    proba, classes = semivae.predict(loaded, x[1500:])
    assert proba.shape == (297, 10) and classes == [str(k) for k in range(10)]
    for form in (torch.from_numpy(x[1500:]), pd.DataFrame(x[1500:]), x[1500:].tolist()):
        assert np.allclose(semivae.predict(run, form)[0], proba)


def test_evaluate_on_given_arrays(run, digits):
    x, y_true = load_digits(return_X_y=True)
    res = semivae.evaluate(run, x=x[1500:], y=y_true[1500:])
    assert res["split"] == "given" and res["n_labelled"] == 297 and 0.3 < res["accuracy"] <= 1
    with pytest.raises(UserError, match="does not have"):
        semivae.evaluate(run, x=x[:3], y=[1, 2, 11])


def test_embed_gives_means_logvars_probabilities_and_ids(run, digits):
    x, _ = digits
    emb = semivae.embed(run, x[:7])
    assert emb["mu"].shape == (7, 4) and emb["logvar"].shape == (7, 4) and emb["proba/label"].shape == (7, 10)
    assert emb["ids"].tolist() == [str(i) for i in range(7)]
    assert np.allclose(emb["proba/label"], semivae.predict(run, x[:7])[0], atol=1e-6)
    framed = semivae.embed(run, pd.DataFrame(x[100:103], index=["a", "b", "c"]))  # a data frame's index: the ids
    assert framed["ids"].tolist() == ["a", "b", "c"]
    assert semivae.embed(run, pd.DataFrame(x).iloc[100:102])["ids"].tolist() == ["100", "101"]


def test_a_detector_from_python_scores_as_arrays(digits, tmp_path):
    x, y_true = load_digits(return_X_y=True)
    with pytest.raises(UserError, match="anomaly_class="):
        semivae.anomaly(x=x, y=y_true, out=tmp_path / "none", progress=False, **FAST)
    run = semivae.anomaly(x=x, y=y_true, anomaly_class=7, out=tmp_path / "a7", progress=False, score_samples=2,
                          score_iwae_k=4, **{**FAST, "epochs": 1})
    scored = semivae.score(run, x[y_true == 7][:5])
    assert scored["score"].shape == (5,) and (scored["flag"] == (scored["score"] > scored["threshold"])).all()
    assert "7" not in set(scored["predicted"]) and scored["ids"].tolist() == [str(i) for i in range(5)]


def test_predict_flags_inputs_unlike_the_training_data(run, digits):
    x, _ = digits
    noise = np.random.default_rng(1).uniform(0, 16, size=(100, 64))
    rows = list(csv.DictReader(io.StringIO(semivae.eval.predict_all(run, np.concatenate([x[1500:1600], noise])))))
    flags = np.array([int(r["unknown"]) for r in rows])
    assert flags[:100].mean() < 0.2 and flags[100:].mean() > 0.9  # ~5 % of normal points, nearly all noise
    info = semivae.load(run).unknown
    assert info["score"] == "neg_elbo_point" and info["target_fpr"] == 0.05


def test_bad_arrays_leave_nothing_behind(digits, tmp_path):
    x, y = digits
    with pytest.raises(UserError, match="one label per row"):
        semivae.train(x=x, y=y[:10], out=tmp_path / "a", progress=False, **FAST)
    with pytest.raises(UserError, match="--labels 5000 exceeds"):  # after data.npz is written: the folder goes again
        semivae.train(x=x, y=y, out=tmp_path / "b", progress=False, labels="5000", **FAST)
    with pytest.raises(UserError, match="x= or dataset="):
        semivae.train(x=x, dataset="digits")
    assert list(tmp_path.iterdir()) == []


def test_the_cli_names_work_from_python_and_given_labels_need_inputs(run, digits, tmp_path):
    x, y = digits
    first = semivae.train(x=x, y=y, out=tmp_path / "r", quiet=True, **{**FAST, "epochs": 1})  # --quiet
    assert semivae.train(resume=first, epochs=2, quiet=True) == first  # --resume RUN --epochs 2
    assert semivae.load(first).config.train.epochs == 2  # config.yaml says how far it was asked to go
    with pytest.raises(UserError, match="drop lr="):
        semivae.train(resume=first, lr=0.1)
    with pytest.raises(UserError, match="y= needs x="):
        semivae.evaluate(run, y=y[:10])
    with pytest.raises(UserError, match="holds no inputs"):
        semivae.predict(run, x[:0])
    with pytest.raises(UserError, match="is not an anomaly detector"):
        semivae.score(run, x[:3])


def test_dark_integer_images_get_a_note_and_flat_rows_predict(tmp_path, capsys):
    import json

    x, y = load_digits(return_X_y=True)
    run = semivae.train(x=x.reshape(-1, 8, 8).astype(np.uint8), y=y, out=tmp_path / "r", quiet=True,
                        **{**FAST, "epochs": 1})
    notes = json.loads((run / "summary.json").read_text())["notes"]
    assert any("integers up to 16, read as 0..255" in n for n in notes)
    assert "note: " in capsys.readouterr().err
    semivae.train(x=x.reshape(-1, 8, 8).astype(np.uint8), y=y, out=tmp_path / "q", quiet=True, notes=False,
                  **{**FAST, "epochs": 1})
    assert "note: " not in capsys.readouterr().err  # kept in summary.json only
    flat, shaped = semivae.predict(run, x[:3].astype(np.uint8))[0], semivae.predict(run, x[:3].reshape(-1, 8, 8) / 255)[0]
    assert flat.shape == (3, 10) and np.allclose(flat, semivae.predict(run, x[:3].reshape(-1, 8, 8).astype(np.uint8))[0])
    assert shaped.shape == (3, 10)


def test_targets_a_model_does_not_learn_get_a_note_and_evaluate_names_them(tmp_path):
    import json

    x = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(60) % 2, t=x[:, 0] * 2, target_names=np.array(["alcohol"]))
    plain = semivae.train(dataset=str(tmp_path / "t.npz"), out=tmp_path / "plain", quiet=True, **{**FAST, "epochs": 1})
    notes = json.loads((plain / "summary.json").read_text())["notes"]
    assert any("targets (alcohol) are not learnt by --model semivae" in n for n in notes)
    pspec = semivae.train(dataset=str(tmp_path / "t.npz"), model="pspec", out=tmp_path / "p", quiet=True,
                          **{**FAST, "epochs": 1})
    assert semivae.evaluate(pspec)["target_names"] == ["alcohol"]


def test_a_training_call_leaves_the_callers_threads_and_random_state(digits, tmp_path):
    x, y = digits
    torch.set_num_threads(2)
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    semivae.train(x=x[:200], y=y[:200], out=tmp_path / "r", progress=False, **{**FAST, "epochs": 1})  # threads=1
    assert torch.get_num_threads() == 2 and torch.equal(torch.rand(3), expected)
