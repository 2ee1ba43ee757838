"""Calibration metrics (`keras_art.evaluation.calibration`), worked by hand."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from keras_art.evaluation.calibration import (
    N_BINS,
    brier_score,
    calibration_metrics,
    calibration_report,
    classwise_ece,
    expected_calibration_error,
    reliability_bins,
)
from keras_art.evaluation.metrics import classification_metrics


def _rows(confidence: float, n: int, right: int, classes: int = 3):
    """``n`` rows predicting class 0 with ``confidence``; ``right`` of them are."""
    rest = (1.0 - confidence) / (classes - 1)
    probs = np.full((n, classes), rest)
    probs[:, 0] = confidence
    labels = np.array([0] * right + [1] * (n - right))
    return labels, probs


def test_overconfident_model_has_the_known_ece():
    # Always 90 % sure, right 60 % of the time: ECE = |0.6 - 0.9| = 0.3.
    labels, probs = _rows(0.9, 10, 6)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.3)
    # Plus as many rows at 55 %, right 55 % of the time (another bin, no gap):
    # half the rows carry a gap of 0.3, so ECE = 0.15.
    more_y, more_p = _rows(0.55, 20, 11)
    y = np.concatenate([np.repeat(labels, 2), more_y])
    p = np.concatenate([np.repeat(probs, 2, axis=0), more_p])
    assert expected_calibration_error(y, p) == pytest.approx(0.15)
    # Unlabelled rows do not count.
    y_unlabelled = np.concatenate([labels, [-1, -1]])
    p_unlabelled = np.concatenate([probs, probs[:2]])
    assert expected_calibration_error(y_unlabelled, p_unlabelled) == pytest.approx(0.3)


def test_a_confidence_on_an_edge_belongs_to_the_bin_it_closes():
    # 10 bins: 0.5 closes (0.4, 0.5], 0.55 is in (0.5, 0.6]. The row at 0.5 is
    # right, the one at 0.55 wrong: (|1 - 0.5| + |0 - 0.55|) / 2 = 0.525. One bin
    # for both would give |0.5 - 0.525| = 0.025.
    probs = np.array([[0.5, 0.5], [0.55, 0.45]])
    labels = np.array([0, 1])
    assert expected_calibration_error(labels, probs, n_bins=10) == pytest.approx(0.525)
    bins = reliability_bins([0.0, 0.5, 1.0], [1, 1, 1], n_bins=10)
    assert bins["count"] == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1]


def test_bins_match_sklearn_calibration_curve():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, 500)
    hit = rng.random(500) < conf**1.5
    bins = reliability_bins(conf, hit)
    assert len(bins["count"]) == N_BINS == 15 and sum(bins["count"]) == 500
    accuracy, confidence = calibration_curve(hit, conf, n_bins=N_BINS)
    filled = [i for i, n in enumerate(bins["count"]) if n]
    np.testing.assert_allclose([bins["accuracy"][i] for i in filled], accuracy)
    np.testing.assert_allclose([bins["confidence"][i] for i in filled], confidence)


def test_classwise_ece_by_hand():
    # Class 0: p 0.7 twice, right once -> |0.5 - 0.7| = 0.2; class 1: p 0.2 twice,
    # right once -> 0.3; class 2: p 0.1, never -> 0.1. Mean 0.2.
    probs = np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]])
    assert classwise_ece([0, 1], probs) == pytest.approx(0.2)


def test_brier_and_nll_by_hand_and_as_sklearn():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    labels = np.array([0, 2])
    # (0.25 + 0.09 + 0.04 + 0.01 + 0.01 + 0.04) / 2
    assert brier_score(labels, probs) == pytest.approx(0.22)
    want = brier_score_loss(labels, probs, labels=[0, 1, 2], scale_by_half=False)
    assert brier_score(labels, probs) == pytest.approx(want)
    m = calibration_metrics(labels, probs)
    assert m["nll"] == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)
    assert m["nll"] == pytest.approx(
        classification_metrics(labels, probs, "abc")["loss"]
    )


def test_report_before_and_after_temperature_scaling():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 4, (4000, 6))
    truth = np.exp(z / 3.0)
    truth /= truth.sum(1, keepdims=True)
    labels = (truth.cumsum(1) > rng.random((4000, 1))).argmax(1)
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    report = calibration_report(labels, probs, 3.0, "test")
    before, after = report["before"], report["after"]
    assert report["temperature"] == 3.0 and report["n_bins"] == 15
    for key in ("ece", "classwise_ece", "nll", "brier"):
        assert after[key] < before[key], key
    assert after["ece"] < 0.03 < 0.2 < before["ece"]
    assert calibration_report(labels, probs, None, "none")["after"] is None
