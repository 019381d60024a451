"""Calibration: ECE and reliability as pure functions on known cases, temperature scaling
recovering a known temperature, and a run calibrated end to end."""

import json

import numpy as np
import pytest

from semivae.eval import evaluate
from semivae.eval.calibration import calibrate, fit_temperature
from semivae.eval.metrics import expected_calibration_error, reliability
from semivae.eval.outputs import apply_temperature
from semivae.train import train


def _softmax(a):
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _sampled(n=20000, k=5, seed=0):
    """Logits and labels drawn from softmax(logits): a perfectly calibrated classifier."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    p = _softmax(logits)
    y = np.array([rng.choice(k, p=row) for row in p])
    return logits, y


def test_a_calibrated_classifier_has_ece_near_zero_and_an_overconfident_one_does_not():
    logits, y = _sampled()
    assert expected_calibration_error(y, _softmax(logits)) < 0.015
    assert expected_calibration_error(y, _softmax(3 * logits)) > 0.1  # too sharp
    assert expected_calibration_error(y, _softmax(logits / 3)) > 0.1  # too soft


def test_ece_of_known_bins():
    # two points at confidence 0.9 (one right) and two at 0.6 (both right): |0.5-0.9|/2 + |1-0.6|/2
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert expected_calibration_error(y, p, bins=10) == pytest.approx(0.4)
    r = reliability(y, p, bins=10)
    assert r["count"][9] == 2 and r["count"][6] == 2 and r["accuracy"][0] is None  # empty bins are None


def test_temperature_scaling_recovers_the_temperature_and_keeps_the_argmax():
    logits, y = _sampled()
    for t0 in (0.5, 2.0):
        p = _softmax(logits / t0)  # mis-calibrated by a known temperature
        t = fit_temperature(y, p)
        assert t == pytest.approx(1.0 / t0, rel=0.05)
        q = apply_temperature(p, t)
        assert (q.argmax(1) == p.argmax(1)).all()
        assert expected_calibration_error(y, q) < expected_calibration_error(y, p) / 3


def test_few_validation_labels_all_right_keep_the_temperature_near_one():
    logits, y = _sampled()
    p = _softmax(logits)
    right = np.flatnonzero(p.argmax(1) == y)[:10]  # ten points, all classified right
    assert fit_temperature(y[right], p[right], prior_sd=None) < 0.1  # the plain fit runs off to T -> 0
    assert 0.6 < fit_temperature(y[right], p[right]) <= 1.0  # the prior holds it


def test_calibrate_writes_temperatures_that_predict_and_evaluate_use(tiny, tmp_path):
    path = train(tiny(val_labels=30, calibrate=True, epochs=3), out=tmp_path / "r", progress=False)
    saved = json.loads((path / "calibration.json").read_text())["heads"]["label"]
    assert saved["n_val"] == 30 and saved["temperature"] > 0
    assert saved["after"]["log_loss"] <= saved["before"]["log_loss"] + 1e-9  # fitted to minimise it
    summary = json.loads((path / "summary.json").read_text())
    assert summary["calibration"]["label"]["temperature"] == pytest.approx(saved["temperature"])
    res = evaluate(path)
    assert res["temperature"] == pytest.approx(saved["temperature"])
    assert {"ece", "ece_uncalibrated", "log_loss_uncalibrated"} <= set(res)
    assert sum(res["reliability"]["count"]) == res["n_labelled"]
    again = calibrate(path)  # the command on an existing run gives the same fit
    assert again["heads"]["label"]["temperature"] == pytest.approx(saved["temperature"], rel=1e-6)
