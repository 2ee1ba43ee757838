"""F1 (and precision, recall) from a confusion matrix: the one formula behind the
epoch logs (`keras_art.training.epoch_metrics`) and the bootstrap intervals
(`keras_art.evaluation.metrics`). NumPy only, so both can import it.

It follows scikit-learn's ``f1_score`` / ``precision_score`` / ``recall_score``
with ``zero_division=0`` and the default label set: averaged over the classes that
occur in the targets or the predictions, so a class that neither the labels nor the
model ever show does not count as a score of 0.
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


def averaged_scores(confusion) -> dict[str, float]:
    """Macro and support-weighted precision, recall and F1 of a confusion matrix
    (rows = true class): ``{"macro_precision", "macro_recall", "macro_f1",
    "weighted_precision", "weighted_recall", "weighted_f1"}``, all 0.0 when it
    counts nothing. Weighted recall is the accuracy."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    scores = {
        "precision": np.divide(
            tp, predicted, out=np.zeros_like(tp), where=predicted > 0
        ),
        "recall": np.divide(tp, support, out=np.zeros_like(tp), where=support > 0),
    }
    macro_f1, weighted_f1 = f1_scores(confusion)
    seen = (support + predicted) > 0
    total = support.sum()
    out = {}
    for name, per_class in scores.items():
        out[f"macro_{name}"] = float(per_class[seen].mean()) if seen.any() else 0.0
        out[f"weighted_{name}"] = (
            float((per_class * support).sum() / total) if total > 0 else 0.0
        )
    return {**out, "macro_f1": macro_f1, "weighted_f1": weighted_f1}
