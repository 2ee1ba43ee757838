"""The comparison's statistics on cases worked by hand: McNemar's exact and
chi-square forms, the paired bootstrap's p-value, Welch's t, and the resampled
scores against scikit-learn and the evaluation report's own intervals."""

import math

import numpy as np
import pytest
from sklearn.metrics import (
    f1_score,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)

from keras_art.evaluation import metrics as M
from keras_art.evaluation.paired_tests import (
    bootstrap_p_value,
    mcnemar,
    welch_p_value,
)
from keras_art.evaluation.resampling import (
    SCORES,
    EntryPredictions,
    bootstrap_scores,
    confusion_scores,
    interval,
    top_k_hits,
)


def correctness(both, a_only, b_only, neither):
    """Per-image correctness of A and B with the given cell counts."""
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_exact_binomial_by_hand():
    # 1 vs 9 discordant: two-sided exact p = 2 * P(X <= 1), X ~ Bin(10, 1/2)
    # = 2 * (1 + 10) / 1024.
    result = mcnemar(*correctness(30, 1, 9, 5))
    assert (result["a_only"], result["b_only"]) == (1, 9)
    assert result["method"] == "exact binomial" and result["statistic"] is None
    assert result["p_value"] == pytest.approx(22 / 1024, rel=1e-12)
    # Symmetric in the two models; a 5 vs 5 split is no evidence at all.
    assert mcnemar(*correctness(30, 9, 1, 5))["p_value"] == pytest.approx(22 / 1024)
    assert mcnemar(*correctness(3, 5, 5, 0))["p_value"] == pytest.approx(1.0)


def test_mcnemar_chi_square_with_continuity_correction_by_hand():
    # 10 vs 30: (|10 - 30| - 1)^2 / 40 = 9.025; chi-square(1) tail = erfc(sqrt(x/2)).
    result = mcnemar(*correctness(100, 10, 30, 7))
    assert result["method"] == "chi-square, continuity-corrected"
    assert result["statistic"] == pytest.approx(9.025)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))


def test_mcnemar_switches_method_at_25_discordant_images():
    assert mcnemar(*correctness(0, 12, 12, 0))["method"] == "exact binomial"
    assert mcnemar(*correctness(0, 12, 13, 0))["method"].startswith("chi-square")
    no_difference = mcnemar(*correctness(7, 0, 0, 3))
    assert no_difference["p_value"] == 1.0 and no_difference["a_only"] == 0
    with pytest.raises(ValueError, match="one length"):
        mcnemar([True, False], [True])


def test_bootstrap_p_value_by_hand():
    # d = 0.1; |d* - d| = 0.1, 0, 0.1, 0.2, 0.15: four of five are >= 0.1.
    assert bootstrap_p_value(0.1, [0.0, 0.1, 0.2, 0.3, -0.05]) == pytest.approx(5 / 6)
    # Every resample far from the null: the smallest p, 1 / (1 + resamples).
    assert bootstrap_p_value(0.5, [0.5, 0.5, 0.51, 0.49]) == pytest.approx(1 / 5)
    assert bootstrap_p_value(0.0, [0.0, 0.3, -0.2]) == 1.0  # no difference
    assert bootstrap_p_value(-0.1, [0.0, -0.1, -0.2, -0.3, 0.05]) == pytest.approx(
        5 / 6
    )  # sign-symmetric


def test_welch_p_value_by_hand():
    # Means 0.6 and 0.9, variances 0.01: t = -0.3 / sqrt(0.02 / 3), df = 4, where
    # the t distribution's CDF has a closed form.
    t = 0.3 / math.sqrt(0.02 / 3)
    x = t / math.sqrt(4 + t * t)
    tail = 0.5 * (1 - (1.5 * x - 0.5 * x**3))  # 1 - F(t) for 4 degrees of freedom
    assert welch_p_value([0.5, 0.6, 0.7], [0.8, 0.9, 1.0]) == pytest.approx(2 * tail)
    assert welch_p_value([0.5], [0.8, 0.9]) is None  # one repeat: no variance
    assert welch_p_value([0.5, 0.5], [0.8, 0.8]) is None  # neither varies


def test_confusion_scores_are_sklearns():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 80)
    pred = np.where(rng.uniform(size=80) < 0.6, y, rng.integers(0, 5, 80))
    pred[pred == 4] = 3  # a class never predicted
    counts = np.zeros((5, 5), int)
    np.add.at(counts, (y, pred), 1)
    scores = dict(zip(SCORES, confusion_scores(counts), strict=True))
    want = {
        "top1": (y == pred).mean(),
        "macro_f1": f1_score(y, pred, average="macro", zero_division=0),
        "weighted_f1": f1_score(y, pred, average="weighted", zero_division=0),
        "macro_precision": precision_score(y, pred, average="macro", zero_division=0),
        "macro_recall": recall_score(y, pred, average="macro", zero_division=0),
        "weighted_precision": precision_score(
            y, pred, average="weighted", zero_division=0
        ),
    }
    for key, value in want.items():
        assert scores[key] == pytest.approx(value, abs=1e-12), key
    assert math.isnan(scores["topk"])


def test_top_k_hits_break_ties_as_sklearn():
    probs = np.array([[0.3, 0.3, 0.3, 0.1], [0.1, 0.2, 0.2, 0.5], [0.25] * 4])
    labels = np.array([0, 1, 0])
    for k in (1, 2, 3):
        want = top_k_accuracy_score(labels, probs, k=k, labels=range(4))
        assert top_k_hits(labels, probs, k).mean() == pytest.approx(want), k
    assert top_k_hits(labels, probs, 4).all()


def test_one_run_bootstrap_is_the_reports_interval():
    """Same draws as the evaluation report: a single run's top-1 and macro-F1
    intervals equal `metrics.bootstrap_ci`'s."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 4, 90)
    probs = rng.dirichlet(np.ones(4), 90)
    probs[np.arange(90)[:60], y[:60]] += 1.0
    entry = EntryPredictions(probs.argmax(1)[None], top_k_hits(y, probs, 2)[None])
    (boot,) = bootstrap_scores(y, [entry], 4, n_resamples=300, seed=5)
    report = M.bootstrap_ci(y, probs, n_resamples=300, seed=5)
    assert interval(boot[:, SCORES.index("top1")]) == report["top1"]
    assert interval(boot[:, SCORES.index("macro_f1")]) == report["macro_f1"]


def test_paired_bootstrap_matches_a_brute_force_with_sklearn():
    """The difference of two runs' macro-F1 on each resample (same images for
    both), its interval and p-value, recomputed with f1_score."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, 40)
    a = np.where(rng.uniform(size=40) < 0.55, y, (y + 1) % 3)
    b = np.where(rng.uniform(size=40) < 0.8, y, (y + 2) % 3)
    hits = np.ones((1, 40), bool)
    boots = bootstrap_scores(
        y, [EntryPredictions(a[None], hits), EntryPredictions(b[None], hits)], 3,
        n_resamples=60, seed=2,
    )  # fmt: skip
    i = SCORES.index("macro_f1")
    diffs = boots[1][:, i] - boots[0][:, i]
    draws = np.random.default_rng(2)
    want = []
    for _ in range(60):
        idx = draws.integers(0, 40, 40)
        want.append(f1_score(y[idx], b[idx], average="macro") - f1_score(
            y[idx], a[idx], average="macro"
        ))  # fmt: skip
    np.testing.assert_allclose(diffs, want, atol=1e-12)
    observed = f1_score(y, b, average="macro") - f1_score(y, a, average="macro")
    far = sum(abs(d - observed) >= abs(observed) for d in want)
    assert bootstrap_p_value(observed, diffs) == pytest.approx((1 + far) / 61)
