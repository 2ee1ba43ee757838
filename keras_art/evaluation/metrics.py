"""Classification metrics on a model's predictions, computed with scikit-learn.

Every function takes ``labels`` (int array (N,), ``-1`` = unlabelled, ignored) and
``probs`` (float array (N, C) of probabilities for one task). Rows are not required to
sum exactly to 1: predictions are the argmax and the loss renormalises each row.

Classes absent from the split: ``per_class`` lists every class (support 0) and the
confusion matrix is always (C, C), but macro F1 averages over the classes that occur
in the labels or the predictions (scikit-learn's default label set), so a class the
split lacks and the model never predicts does not count as an F1 of 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)

from keras_art.f1 import averaged_scores
from keras_art.registry import DEFAULT_TOP_K

# Keras's backend epsilon: the loss matches the ``val_loss`` logged during training.
_EPSILON = 1e-7

COMBINED_DEFINITION = (
    "Combined: top-k accuracy is micro-averaged over all labelled (image, task) "
    "pairs; macro F1 is the mean of per-class F1 over the union of the tasks' classes "
    "(each task's classes kept distinct, e.g. 'style:Baroque'), counting the classes "
    "that occur in the labels or predictions; weighted F1 is support-weighted over the "
    "same union; loss is the mean cross-entropy over all labelled (image, task) pairs."
)


def classification_metrics(
    labels,
    probs,
    class_names: Sequence[str],
    *,
    top_k: Iterable[int] = (1, DEFAULT_TOP_K),
) -> dict:
    """Top-k accuracy, F1, loss, per-class scores and the confusion matrix.

    Only labelled rows (``label >= 0``) count. Returns ``{"n", "top1", "top{k}" for
    each k > 1 in top_k, "macro_f1", "weighted_f1", "macro_precision",
    "macro_recall", "weighted_precision", "weighted_recall", "loss", "per_class",
    "report_text", "confusion"}`` (weighted recall equals top-1 accuracy). A k at
    or above the number of classes C is capped at C (a perfect score) but keeps the
    key asked for, so ``top5`` exists for a 3-class task and equals 1.0.

    Raises:
        ValueError: no labelled rows, mismatched shapes, a label outside
            ``[-1, C)`` or non-finite probabilities.
    """
    y, p = _labelled(labels, probs, len(class_names))
    num_classes = p.shape[1]
    pred = p.argmax(axis=1)
    everything = list(range(num_classes))

    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=everything, zero_division=0
    )
    per_class = [
        {
            "class": str(name),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    ]
    return {
        "n": int(y.size),
        **_top_k_scores(y, p, top_k),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, average="weighted", zero_division=0)),
        **_precision_recall(y, pred),
        "loss": float(_cross_entropy(y, p).mean()),
        "per_class": per_class,
        "report_text": classification_report(
            y,
            pred,
            labels=everything,
            target_names=[str(n) for n in class_names],
            digits=4,
            zero_division=0,
        ),
        "confusion": confusion_matrix(y, pred, labels=everything).tolist(),
    }


def _precision_recall(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Macro and weighted precision and recall (scikit-learn, zero_division=0)."""
    scores = (("precision", precision_score), ("recall", recall_score))
    return {
        f"{average}_{name}": float(score(y, pred, average=average, zero_division=0))
        for average in ("macro", "weighted")
        for name, score in scores
    }


def combined_metrics(
    per_task: Mapping[str, tuple],
    class_names: Mapping[str, Sequence[str]],
    *,
    top_k: Iterable[int] = (1, DEFAULT_TOP_K),
) -> dict:
    """The "Combined" row of a multi-task run (definition under ``"definition"``).

    ``per_task`` maps each task to ``(labels, probs)``; ``class_names`` maps the same
    tasks to their class lists. Returns ``{"n" (labelled (image, task) pairs),
    "top1", "top{k}", "macro_f1", "weighted_f1", "loss", "definition"}``. k is
    capped per task at that task's class count. Tasks without labelled rows add
    nothing; if no task has any, ValueError.
    """
    if set(per_task) != set(class_names):
        raise ValueError(
            "combined_metrics needs class names for exactly the tasks given. "
            f"Received: tasks={sorted(per_task)}, class_names={sorted(class_names)}"
        )
    ks = _check_top_k(top_k)
    n_total = 0
    hits = dict.fromkeys(ks, 0.0)
    loss_sum = 0.0
    true_parts, pred_parts = [], []
    offset = 0
    for task in per_task:
        labels, probs = per_task[task]
        num_classes = len(class_names[task])
        try:
            y, p = _labelled(labels, probs, num_classes)
        except _NoLabelledRows:
            offset += num_classes
            continue
        scores = _top_k_scores(y, p, ks)
        for k in ks:
            hits[k] += scores[f"top{k}"] * y.size
        loss_sum += float(_cross_entropy(y, p).sum())
        n_total += y.size
        # Shifting each task's indices keeps its classes distinct in one label
        # space, so sklearn's F1 over the concatenation is the F1 over the union.
        true_parts.append(y + offset)
        pred_parts.append(p.argmax(axis=1) + offset)
        offset += num_classes
    if n_total == 0:
        raise ValueError(
            f"No labelled rows in any task ({sorted(per_task)}): every label is -1."
        )
    y_all = np.concatenate(true_parts)
    pred_all = np.concatenate(pred_parts)
    return {
        "n": int(n_total),
        **{f"top{k}": hits[k] / n_total for k in ks},
        "macro_f1": float(f1_score(y_all, pred_all, average="macro", zero_division=0)),
        "weighted_f1": float(
            f1_score(y_all, pred_all, average="weighted", zero_division=0)
        ),
        "loss": loss_sum / n_total,
        "definition": COMBINED_DEFINITION,
    }


def bootstrap_ci(
    labels, probs, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict:
    """Percentile bootstrap intervals for top-1 accuracy and the macro and
    weighted precision, recall and F1 (seed 004's table reports accuracy,
    precision, recall and F1 by bootstrap).

    Resamples the labelled rows with replacement (``numpy.random.default_rng(seed)``),
    so the same inputs and seed give the same interval. Returns ``{"top1": [lo, hi],
    "macro_f1": [lo, hi], "weighted_f1", "macro_precision", "macro_recall",
    "weighted_precision", "weighted_recall" (each [lo, hi]), "n_resamples", "seed",
    "level"}``.
    """
    if int(n_resamples) < 1:
        raise ValueError(
            f"n_resamples must be >= 1. Received: n_resamples={n_resamples}"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1). Received: level={level}")
    y, p = _labelled(labels, probs, None)
    num_classes = p.shape[1]
    pred = p.argmax(axis=1)
    # sklearn has no bootstrap, and 1000 f1_score calls cost seconds per task; one
    # bincount per resample gives the same confusion counts (tests check the scores
    # against sklearn's on resampled rows).
    cell = y * num_classes + pred
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(int(n_resamples)):
        idx = rng.integers(0, y.size, size=y.size)
        counts = np.bincount(cell[idx], minlength=num_classes * num_classes)
        counts = counts.reshape(num_classes, num_classes)
        draws.setdefault("top1", []).append(np.trace(counts) / y.size)
        for key, value in averaged_scores(counts).items():
            draws.setdefault(key, []).append(value)
    tail = (1.0 - level) / 2.0
    return {
        **{
            key: [float(v) for v in np.quantile(values, [tail, 1.0 - tail])]
            for key, values in draws.items()
        },
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "level": float(level),
    }


def most_confused_pairs(confusion, class_names: Sequence[str], k: int = 10) -> list:
    """The ``k`` off-diagonal cells with the highest row-normalised rate.

    ``rate`` = count / number of images of the true class. Sorted by rate, then count
    (both descending), then class index; cells with count 0 are left out.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(
            "confusion must be (C, C) with C = len(class_names). "
            f"Received: shape={cm.shape}, len(class_names)={len(class_names)}"
        )
    row_sums = cm.sum(axis=1)
    pairs = [
        (cm[t, q] / row_sums[t], int(cm[t, q]), t, q)
        for t in range(cm.shape[0])
        for q in range(cm.shape[1])
        if t != q and cm[t, q] > 0
    ]
    pairs.sort(key=lambda item: (-item[0], -item[1], item[2], item[3]))
    return [
        {
            "true": str(class_names[t]),
            "predicted": str(class_names[q]),
            "count": count,
            "rate": float(rate),
        }
        for rate, count, t, q in pairs[: max(int(k), 0)]
    ]


def per_class_csv(per_class: Sequence[Mapping]) -> str:
    """CSV text (header ``class,precision,recall,f1,support``) of ``per_class`` rows;
    a leading ``task`` column when the rows carry one (multi-task reports)."""
    with_task = bool(per_class) and "task" in per_class[0]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["class", "precision", "recall", "f1", "support"]
    writer.writerow(["task", *header] if with_task else header)
    for row in per_class:
        writer.writerow(
            ([row["task"]] if with_task else [])
            + [
                row["class"],
                f"{row['precision']:.6f}",
                f"{row['recall']:.6f}",
                f"{row['f1']:.6f}",
                int(row["support"]),
            ]
        )
    return out.getvalue()


class _NoLabelledRows(ValueError):
    pass


def _labelled(labels, probs, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The labelled rows as (int labels, float probs), validated."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probs must be a 2-D array (N, C). Received: shape={p.shape}")
    if num_classes is not None and p.shape[1] != num_classes:
        raise ValueError(
            f"probs has {p.shape[1]} columns but there are {num_classes} class names."
        )
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise ValueError(
            f"labels must be 1-D with one entry per row of probs. "
            f"Received: labels.shape={y.shape}, probs.shape={p.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
        raise ValueError(f"labels must be integers. Received dtype={y.dtype}")
    y = y.astype(np.int64)
    bad = (y < -1) | (y >= p.shape[1])
    if bad.any():
        raise ValueError(
            f"labels must be -1 (unlabelled) or in [0, {p.shape[1]}). "
            f"Received: {sorted(set(y[bad].tolist()))[:5]}"
        )
    keep = y >= 0
    if not keep.any():
        raise _NoLabelledRows(
            f"No labelled rows to evaluate: all {y.size} labels are -1 (unlabelled)."
        )
    p = p[keep]
    if not np.isfinite(p).all():
        raise ValueError("probs contains NaN or infinite values.")
    return y[keep], p


def _check_top_k(top_k: Iterable[int]) -> list[int]:
    ks = sorted({int(k) for k in top_k} | {1})
    if ks[0] < 1:
        raise ValueError(f"top_k values must be >= 1. Received: top_k={tuple(top_k)}")
    return ks


def _top_k_scores(y: np.ndarray, p: np.ndarray, top_k: Iterable[int]) -> dict:
    num_classes = p.shape[1]
    # Top-1 is the accuracy of the argmax, the same prediction F1 and the confusion
    # matrix use (top_k_accuracy_score breaks ties towards the higher class index).
    scores = {"top1": float(accuracy_score(y, p.argmax(axis=1)))}
    for k in _check_top_k(top_k):
        if k == 1:
            continue
        if k >= num_classes:
            # Every label is among the top C: a perfect score, which sklearn would
            # compute with an UndefinedMetricWarning (and refuses for 2-D binary).
            scores[f"top{k}"] = 1.0
        else:
            scores[f"top{k}"] = float(
                top_k_accuracy_score(y, p, k=k, labels=range(num_classes))
            )
    return scores


def _cross_entropy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    # As keras.losses.sparse_categorical_crossentropy on probabilities: rows are
    # renormalised, then clipped, so a row summing to 0.999 is fine.
    total = p.sum(axis=1, keepdims=True)
    p = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    picked = np.clip(p[np.arange(y.size), y], _EPSILON, 1.0 - _EPSILON)
    return -np.log(picked)


# The calibration metrics (`keras_art.evaluation.calibration`) count the same rows
# and the same loss as the metrics above.
labelled_rows = _labelled
cross_entropy = _cross_entropy
