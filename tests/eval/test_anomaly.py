"""Anomaly detection: metrics on known cases, scores on obvious outliers, thresholds, feedback."""

import csv
import io
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from semivae.cli import main
from semivae.data import ArrayData
from semivae.eval import metrics
from semivae.eval.anomaly import FN, FP, _feedback_adjust, score, score_csv
from semivae.eval.scores import available_scores, compute_scores
from semivae.runs import load_run


def test_auroc_and_ap_match_scikit_learn_and_known_cases():
    rng = np.random.default_rng(0)
    flags = rng.random(200) < 0.3
    s = rng.normal(size=200) + flags
    assert metrics.auroc(flags, s) == pytest.approx(roc_auc_score(flags, s))
    assert metrics.average_precision(flags, s) == pytest.approx(average_precision_score(flags, s))
    assert metrics.auroc(flags, flags.astype(float)) == 1.0  # perfect
    assert metrics.auroc(flags, -flags.astype(float)) == 0.0  # backwards
    assert metrics.auroc(flags, np.zeros(200)) == 0.5  # constant: chance


def test_threshold_for_fpr_leaves_that_fraction_above():
    s = np.arange(1000.0)
    t = metrics.threshold_for_fpr(s, 0.05)
    assert (s > t).mean() <= 0.05 and (s > t).mean() > 0.04


@pytest.fixture(scope="module")
def anomaly_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("an") / "r"
    assert main(["anomaly", "--anomaly-class", "1", "--label-fraction", "0.1", "--epochs", "8", "--hidden", "64",
                 "--latent-dim", "4", "--threads", "1", "--quiet", "--score-samples", "3", "--score-iwae-k", "10",
                 "--out", str(out)]) == 0
    return out


def test_anomaly_run_reports_every_score_and_meets_its_target_fpr(anomaly_run):
    res = json.loads((anomaly_run / "anomaly.json").read_text())
    assert set(res["scores"]) == {"recon_prob", "neg_elbo", "neg_iwae", "one_minus_max_pi", "entropy", "energy",
                                  "complexity", "neg_elbo_point", "latent_nll", "knn", "combined"}
    assert res["default_score"] == "combined" and res["n_anomalous"] > 0
    assert set(res["combine"]) == {"complexity", "energy", "latent_nll", "knn"}  # class latents and a feature bank
    for m in res["scores"].values():
        assert 0 <= m["auroc"] <= 1 and m["val_fpr"] <= res["target_fpr"] + 1.0 / res["n_val"]
    assert res["scores"]["combined"]["auroc"] > 0.7  # 1s left out of 8x8 digits: far above chance
    info = json.loads((anomaly_run / "data.json").read_text())
    (head,) = info["heads"]
    assert info["anomaly_class"] == "1" and "1" not in head["classes"] and len(head["classes"]) == 9
    from semivae.viz.report import report_html  # the report shows the same table, the default score in bold

    page = report_html(anomaly_run)[0]
    assert "<h2>Anomaly detection</h2>" in page and "accuracy is over the" in page  # not over the anomalies
    assert f"<td><strong>combined</strong></td><td><strong>{res['scores']['combined']['auroc']:.4f}" in page


def test_every_score_is_finite_and_higher_for_noise_than_for_training_images(anomaly_run):
    run = load_run(anomaly_run)
    res = json.loads((anomaly_run / "anomaly.json").read_text())
    from semivae.data.anomaly import load_for_config

    train = load_for_config(run.config.data).train
    typical = train.take(torch.arange(50))
    noise = ArrayData(torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.full((50,), -1))
    names = available_scores(run.model)
    combine = {k: tuple(v) for k, v in res["combine"].items()}
    torch.manual_seed(0)
    s_typ = compute_scores(run.model, typical, names, samples=3, iwae_k=10, combine=combine)
    s_noise = compute_scores(run.model, noise, names, samples=3, iwae_k=10, combine=combine)
    for n in names:
        assert np.isfinite(s_typ[n]).all() and np.isfinite(s_noise[n]).all(), n
        assert np.median(s_noise[n]) > np.median(s_typ[n]), n


def test_energy_is_minus_the_logsumexp_of_the_first_heads_logits(anomaly_run):
    model = load_run(anomaly_run).model
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    logits = model.inference(x, sample=False).logits[model.heads[0].name]  # (5, K)
    s = compute_scores(model, ArrayData(x, torch.full((5,), -1)), ["energy"])["energy"]
    assert np.allclose(s, -torch.logsumexp(logits.double(), -1).detach().numpy(), atol=1e-5)


def test_a_run_scored_with_older_combined_parts_keeps_them(anomaly_run, tmp_path):
    import shutil

    old = tmp_path / "old"  # runs scored before session 31 averaged entropy where energy is now
    shutil.copytree(anomaly_run, old)
    info = json.loads((old / "anomaly.json").read_text())
    info["combine"] = {("entropy" if k == "energy" else k): v for k, v in info["combine"].items()}
    (old / "anomaly.json").write_text(json.dumps(info))
    np.savez(tmp_path / "new.npz", x=np.zeros((3, 8, 8), dtype=np.uint8))
    now, before = (score(r, tmp_path / "new.npz")["score"] for r in (anomaly_run, old))
    assert np.isfinite(before).all() and not np.allclose(now, before)


def test_score_writes_score_flag_and_class(anomaly_run, tmp_path):
    x = np.round(np.random.default_rng(0).random((6, 8, 8)) * 16).astype(np.uint8)  # digits' own units, 0..16
    np.savez(tmp_path / "new.npz", x=x)
    scored = score(anomaly_run, tmp_path / "new.npz")
    assert scored["score"].shape == (6,) and scored["flag"].dtype == bool and "1" not in set(scored["predicted"])
    assert (scored["flag"] == (scored["score"] > scored["threshold"])).all()
    rows = list(csv.DictReader(io.StringIO(score_csv(scored))))
    assert len(rows) == 6 and set(rows[0]) == {"row", "id", "score", "flag", "predicted"}
    assert all(r["flag"] in ("0", "1") for r in rows) and all(r["predicted"] != "1" for r in rows)
    assert main(["score", str(anomaly_run), str(tmp_path / "new.npz"), "--score", "nope"]) == 2


def test_images_in_other_units_than_the_training_data_are_refused(anomaly_run, tmp_path, capsys):
    """A digits run reads 0..16 (or floats in [0, 1]); 0..255 were read as 0..16, silently."""
    np.savez(tmp_path / "wide.npz", x=np.full((2, 8, 8), 255, dtype=np.uint8))
    out = tmp_path / "scores.csv"
    assert main(["score", str(anomaly_run), str(tmp_path / "wide.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "outside 0..16" in err and "integers in 0..16 or floats in [0, 1]" in err and "\n" not in err
    assert not out.exists()
    np.savez(tmp_path / "float.npz", x=np.full((2, 8, 8), 16.5, dtype=np.float32))
    assert main(["score", str(anomaly_run), str(tmp_path / "float.npz")]) == 2
    assert "rescale to [0, 1] or save the images as integers in 0..16" in capsys.readouterr().err
    np.savez(tmp_path / "whole.npz", x=np.full((2, 8, 8), 16.0, dtype=np.float32))  # the model's units, as floats
    assert main(["score", str(anomaly_run), str(tmp_path / "whole.npz")]) == 2
    assert "pass them as integers (x.astype('uint8')), else rescale (x / 16)" in capsys.readouterr().err
    np.savez(tmp_path / "unit.npz", x=np.full((2, 8, 8), 0.5, dtype=np.float32))
    assert len(score(anomaly_run, tmp_path / "unit.npz")["score"]) == 2


def test_the_feature_bank_is_the_training_split_and_its_loss_is_one_line(anomaly_run, tmp_path, capsys):
    import shutil

    run = load_run(anomaly_run)
    assert run.model.feature_bank is not None  # written by `semivae anomaly`, loaded with the run
    bank = run.model.feature_bank.features
    assert bank.dtype == torch.float16 and len(bank) == len(run.split_data("train"))
    assert torch.allclose(bank.float().norm(dim=1), torch.ones(len(bank)), atol=1e-2)
    copy = tmp_path / "copy"
    shutil.copytree(anomaly_run, copy)
    (copy / "feature_bank.safetensors").unlink()
    np.savez(tmp_path / "new.npz", x=np.zeros((2, 8, 8), dtype=np.uint8))
    assert main(["score", str(copy), str(tmp_path / "new.npz"), "--score", "knn"]) == 2
    err = capsys.readouterr().err.strip()
    assert "feature_bank.safetensors" in err and "\n" not in err
    assert main(["score", str(copy), str(tmp_path / "new.npz")]) == 2  # the default, combined, averages knn in
    assert main(["score", str(copy), str(tmp_path / "new.npz"), "--score", "neg_elbo"]) == 0  # the rest still score


def test_feedback_lowers_the_score_of_marked_false_positives(anomaly_run, tmp_path):
    run = load_run(anomaly_run)
    from semivae.data.anomaly import load_for_config

    train = load_for_config(run.config.data).train
    val = train.take(torch.from_numpy(run.split.val))
    with np.load(anomaly_run / "anomaly_scores.npz") as z:
        val_scores = z["val_combined"]
    marked = np.argsort(-val_scores)[:10]  # the normal validation points scored most anomalous: false alarms
    np.savez(tmp_path / "fp.npz", x=val.x[torch.from_numpy(marked)].numpy()[:, 0])
    def scores(run, name):
        return score(run, tmp_path / "fp.npz", name)["score"]

    def percentile(run, name):  # where the marked points fall among the run's normal validation scores
        with np.load(run / "anomaly_scores.npz") as z:
            ref = z[f"val_{name}"]
        return np.mean([(ref < v).mean() for v in scores(run, name)])

    before = percentile(anomaly_run, "combined")
    out = tmp_path / "fb"
    assert main(["feedback", str(anomaly_run), "--false-positives", str(tmp_path / "fp.npz"), "--epochs", "8",
                 "--quiet", "--out", str(out)]) == 0
    assert percentile(out, "combined") < before  # the default score ranks them lower among normal points
    assert json.loads((out / "data.json").read_text())["heads"][0]["classes"][-2:] == ["false positive", "false negative"]
    fb = load_run(out)  # the marked points are normal by the user's word: the knn bank holds them too
    assert len(fb.model.feature_bank.features) == len(fb.split_data("train")) + len(marked)


def test_marks_taken_from_the_test_split_are_counted():
    from semivae.train.feedback import marked_in_test

    test = ArrayData(torch.arange(20, dtype=torch.uint8).view(5, 1, 2, 2), torch.zeros(5, dtype=torch.long))
    marks = ArrayData(torch.stack([test.x[1], test.x[3], torch.full((1, 2, 2), 99, dtype=torch.uint8)]),
                      torch.full((3,), -1))
    assert marked_in_test(test, [marks.stored()]) == 2 and marked_in_test(test, []) == 0


def test_a_few_marks_weigh_in_the_labelled_stream_as_a_class_does():
    from semivae.train.feedback import mark_indices

    assert mark_indices(100, 2, 13.0).tolist() == [100, 101] * 6  # 2 marks beside classes of ~13 labels
    assert mark_indices(7, 5, 2.0).tolist() == [7, 8, 9, 10, 11]  # never fewer than the marks themselves


def test_feedback_scales_what_lies_above_the_normal_floor():
    s = np.array([5.0, 20.0, 40.0])
    proba = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]])  # p_fp 0.5 / 0.5 / 0, p_fn 0 / 0 / 0.5
    adj = _feedback_adjust({"s": s}, proba, ("a", FP, FN), {"s": 10.0})["s"]
    assert adj.tolist() == [5.0, 15.0, 70.0]  # below the floor unchanged; 10 + 10 * 0.5; 10 + 30 / 0.5


def test_feedback_works_on_a_run_without_labels(tmp_path):
    out = tmp_path / "vae"
    assert main(["anomaly", "--anomaly-class", "0", "--mode", "unsupervised", "--epochs", "2", "--hidden", "32",
                 "--latent-dim", "3", "--quiet", "--score-samples", "2", "--score-iwae-k", "4", "--out", str(out)]) == 0
    res = json.loads((out / "anomaly.json").read_text())
    assert "energy" not in res["scores"] and set(res["combine"]) == {"knn"}  # a plain VAE: knn alone
    np.savez(tmp_path / "fn.npz", x=np.zeros((3, 8, 8), dtype=np.uint8))
    assert main(["feedback", str(out), "--false-negatives", str(tmp_path / "fn.npz"), "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "fb")]) == 0
    fb = load_run(tmp_path / "fb")  # the digits' own labels stay unused, as the plain VAE left them
    assert fb.spec.heads[0].classes == ("normal", FP, FN)
    assert json.loads((tmp_path / "fb" / "summary.json").read_text())["n_labelled"] == 20 * 3 + 3  # 20 normal a mark


@pytest.mark.parametrize("argv,needle", [(["anomaly", "--epochs", "1"], "--anomaly-class"),
                                         (["anomaly", "--anomaly-class", "cat", "--epochs", "1"], "cat"),
                                         (["anomaly", "--anomaly-class", "1", "--target-fpr", "2"], "--target-fpr")])
def test_bad_anomaly_input_is_one_line(argv, needle, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_combined_takes_neg_elbo_for_complexity_without_images():
    """complexity needs a compressor, which images have; a table's or a sequence's combined averages
    neg_elbo in its place."""
    from semivae.eval.scores import combined_parts

    images = ["neg_elbo", "complexity", "energy", "latent_nll", "knn"]
    assert combined_parts(images) == ("complexity", "energy", "latent_nll", "knn")
    table = ["neg_elbo", "energy", "latent_nll", "knn"]
    assert combined_parts(table, "vector") == ("neg_elbo", "energy", "latent_nll", "knn")
    assert combined_parts(table, "sequence") == ("neg_elbo", "energy", "latent_nll", "knn")
    assert combined_parts(["neg_elbo", "energy"], "vector") == ("neg_elbo", "complexity", "energy")  # no bank
