"""Scores of several prediction sets on the same images, and their bootstrap.

The comparison's numbers (`keras_art.evaluation.compare_runs`): each compared entry
is one run or a group of repeats, given as its repeats' predictions on the same
labelled images. `bootstrap_scores` resamples the IMAGES (with replacement, seeded)
and scores every repeat of every entry on the same resample, so that

- an entry's 95% interval is the spread of its score (the mean over its repeats for
  a group) over test sets like this one, and
- the difference of two entries on each resample is a paired difference: both saw
  the same images (`keras_art.evaluation.paired_tests`).

The draws are `keras_art.evaluation.metrics.bootstrap_ci`'s (``default_rng(seed)``,
one ``integers(0, n, n)`` per resample), so a single run's top-1 and macro-F1
intervals are the ones its own report shows. Scores come from one confusion matrix
per resample (``bincount``): 1,000 resamples of several runs take well under a
second, where calling scikit-learn per resample would take minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keras_art.f1 import f1_scores

# The scores, in this order in every array below (``topk``: the label is among the
# k most probable classes, k chosen by the caller).
SCORES = (
    "top1",
    "topk",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "weighted_precision",
)


@dataclass
class EntryPredictions:
    """One entry's predictions on the shared images: per repeat (rows) and image
    (columns), the argmax class and whether the label is in the top k."""

    predicted: np.ndarray  # (repeats, images) int
    topk_hit: np.ndarray  # (repeats, images) bool


def top_k_hits(labels: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """Whether each label is among the ``k`` most probable classes, ties ordered as
    scikit-learn's ``top_k_accuracy_score`` orders them (the evaluation report's
    top-k): a stable sort, reversed, so the higher class index wins a tie."""
    if k >= probs.shape[1]:
        return np.ones(labels.shape[0], bool)
    order = np.argsort(probs, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return (order == labels[:, None]).any(axis=1)


def confusion_scores(counts: np.ndarray) -> np.ndarray:
    """`SCORES` but ``topk`` (left NaN) from a confusion matrix (rows = true class).

    Averages follow scikit-learn with ``zero_division=0`` and its default label set
    (the classes in the labels or the predictions), as `keras_art.f1` does."""
    counts = np.asarray(counts, np.float64)
    tp = np.diag(counts)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    total = support.sum()
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    seen = (support + predicted) > 0
    macro_f1, weighted_f1 = f1_scores(counts)
    return np.array(
        [
            tp.sum() / total if total else 0.0,
            np.nan,
            macro_f1,
            weighted_f1,
            precision[seen].mean() if seen.any() else 0.0,
            recall[seen].mean() if seen.any() else 0.0,
            (precision * support).sum() / total if total else 0.0,
        ]
    )


def repeat_scores(
    labels: np.ndarray, entry: EntryPredictions, num_classes: int, idx=None
) -> np.ndarray:
    """`SCORES` of each repeat (rows) on the images ``idx`` (all when None)."""
    idx = slice(None) if idx is None else idx
    y = labels[idx]
    out = []
    for predicted, hits in zip(entry.predicted, entry.topk_hit, strict=True):
        cell = y * num_classes + predicted[idx]
        counts = np.bincount(cell, minlength=num_classes * num_classes)
        scores = confusion_scores(counts.reshape(num_classes, num_classes))
        scores[1] = hits[idx].mean()
        out.append(scores)
    return np.array(out)


def bootstrap_scores(
    labels: np.ndarray,
    entries: Sequence[EntryPredictions],
    num_classes: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> list[np.ndarray]:
    """Per entry, (resamples, `SCORES`): the mean over its repeats of each score on
    each bootstrap resample of the images; every entry sees the same resamples."""
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    out = [np.empty((int(n_resamples), len(SCORES))) for _ in entries]
    for r in range(int(n_resamples)):
        idx = rng.integers(0, labels.size, size=labels.size)
        for e, entry in enumerate(entries):
            out[e][r] = repeat_scores(labels, entry, num_classes, idx).mean(axis=0)
    return out


def interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    """The percentile interval holding ``level`` of ``values``."""
    tail = (1.0 - level) / 2.0
    return [float(v) for v in np.quantile(values, [tail, 1.0 - tail])]
