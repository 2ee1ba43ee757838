"""F1 from a confusion matrix: the one formula behind the epoch logs
(`keras_art.training.epoch_metrics`) and the bootstrap intervals
(`keras_art.evaluation.metrics`). NumPy only, so both can import it.

It follows scikit-learn's ``f1_score(..., zero_division=0)`` with the default label
set: averaged over the classes that occur in the targets or the predictions, so a
class that neither the labels nor the model ever show does not count as an F1 of 0.
"""

from __future__ import annotations

import numpy as np


def f1_scores(confusion) -> tuple[float, float]:
    """``(macro_f1, weighted_f1)`` from a confusion matrix (rows = true class);
    ``(0.0, 0.0)`` when it counts nothing."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    denom = support + confusion.sum(axis=0)  # 2 TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    seen = denom > 0
    macro = float(f1[seen].mean()) if seen.any() else 0.0
    total = support.sum()
    weighted = float((f1 * support).sum() / total) if total > 0 else 0.0
    return macro, weighted
