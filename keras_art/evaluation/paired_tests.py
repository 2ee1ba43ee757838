"""Paired significance tests for two models scored on the same test images.

- `mcnemar` (top-1 of two single runs): only the images exactly one model gets
  right carry information. With ``b`` images only A gets right and ``c`` only B, the
  exact test is binomial (``b`` of ``b + c`` at p = 0.5, two-sided); from
  ``b + c >= 25`` on, the chi-square statistic with continuity correction,
  ``(|b - c| - 1)^2 / (b + c)`` on 1 degree of freedom (Edwards 1948), as the usual
  textbooks do. The result names the method used.
- `bootstrap_p_value` (macro-F1, and top-1 of groups): a two-sided paired bootstrap
  test. The differences ``d*`` of the two scores on resamples of the images
  (`keras_art.evaluation.resampling`) are shifted to mean zero by the observed
  difference ``d``, and the p-value is the share of them at least as far from zero
  as ``d``: ``(1 + #{|d* - d| >= |d|}) / (1 + resamples)``. Equal predictions give
  ``d = 0`` and p = 1; the smallest p it can give is ``1 / (1 + resamples)``.
- `welch_p_value` (groups on both sides): Welch's t-test over the repeats' scores,
  the variation that training seeds bring and a test over images does not see.

scipy.stats provides the binomial, chi-square and t distributions (scipy is a
dependency of scikit-learn; setup.cfg names it too, since this module imports it).
"""

from __future__ import annotations

import math

import numpy as np

EXACT_BELOW = 25  # discordant pairs below this: exact binomial McNemar


def mcnemar(correct_a, correct_b, *, exact_below: int = EXACT_BELOW) -> dict:
    """McNemar's test of two models' per-image correctness (bool arrays, same
    images in the same order). Returns ``{"a_only", "b_only", "statistic",
    "p_value", "method"}``; ``statistic`` is None for the exact test."""
    from scipy import stats

    a = np.asarray(correct_a, bool)
    b = np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            "correct_a and correct_b must be 1-D and of one length. "
            f"Received: shapes {a.shape} and {b.shape}"
        )
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    discordant = a_only + b_only
    out = {"a_only": a_only, "b_only": b_only, "statistic": None}
    if discordant == 0:
        return {**out, "p_value": 1.0, "method": "no discordant images"}
    if discordant < exact_below:
        p = stats.binomtest(a_only, discordant, 0.5).pvalue
        return {**out, "p_value": float(min(p, 1.0)), "method": "exact binomial"}
    statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
    return {
        **out,
        "statistic": float(statistic),
        "p_value": float(stats.chi2.sf(statistic, 1)),
        "method": "chi-square, continuity-corrected",
    }


def bootstrap_p_value(observed: float, resampled) -> float:
    """Two-sided p-value of a paired bootstrap: ``observed`` is the difference on
    the images as they are, ``resampled`` the differences on the resamples."""
    d = np.asarray(resampled, np.float64)
    if d.ndim != 1 or d.size == 0 or not np.isfinite(d).all():
        raise ValueError(
            f"resampled must be a non-empty 1-D finite array. Received: {d.shape}"
        )
    # A tolerance for float noise: equal predictions must give exactly p = 1.
    far = np.abs(d - observed) >= abs(observed) - 1e-12
    return float((1 + far.sum()) / (1 + d.size))


def welch_p_value(a_values, b_values) -> float | None:
    """Welch's two-sided t-test p-value of two sets of repeat scores; None when a
    side has fewer than two repeats or neither varies (no test to make)."""
    from scipy import stats

    a = np.asarray(a_values, np.float64)
    b = np.asarray(b_values, np.float64)
    if a.size < 2 or b.size < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return None
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return None if math.isnan(p) else float(p)
