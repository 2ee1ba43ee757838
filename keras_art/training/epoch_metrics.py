"""Epoch metrics from streaming confusion matrices: top-1, top-5, macro/weighted F1.

Each step returns, per task, a confusion matrix and a top-k hit count over the rows
that have a label (weight > 0); the trainer sums them over replicas
(``strategy.reduce``) and over steps (`EpochMetrics`), so the epoch values are exact
under any distribution strategy. Soft (MixUp/CutMix) targets count as their argmax.

Names: single task ``loss, top1, top5, macro_f1, weighted_f1`` (``val_`` prefixed for
validation); multi-task adds ``<task>_<metric>`` per task and keeps the unprefixed
name as the mean over tasks (``val_macro_f1`` = mean of ``val_style_macro_f1``, ...).
F1 follows scikit-learn's default: averaged over the classes that occur in the
targets or the predictions.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_art.f1 import f1_scores

METRICS = ("top1", "top5", "macro_f1", "weighted_f1")


def top_k_for(num_classes: int) -> int:
    return min(5, int(num_classes))


def step_statistics(targets: dict, outputs: dict, weights: dict) -> dict:
    """Per task ``{"confusion": (C, C), "topk": (), "count": ()}`` for one batch."""
    stats = {}
    for task, y_true in targets.items():
        probs = tf.cast(outputs[task], tf.float32)
        classes = int(y_true.shape[-1])
        labels = tf.argmax(y_true, axis=-1, output_type=tf.int32)
        preds = tf.argmax(probs, axis=-1, output_type=tf.int32)
        present = tf.cast(tf.cast(weights[task], tf.float32) > 0, tf.float32)
        confusion = tf.math.confusion_matrix(
            labels, preds, num_classes=classes, weights=present, dtype=tf.float32
        )
        hits = tf.cast(tf.math.in_top_k(labels, probs, top_k_for(classes)), tf.float32)
        stats[task] = {
            "confusion": confusion,
            "topk": tf.reduce_sum(hits * present),
            "count": tf.reduce_sum(present),
        }
    return stats


class EpochMetrics:
    """Host-side sums of loss and step statistics over one epoch.

    Args:
        tasks: task names in output order.
    """

    def __init__(self, tasks):
        self.tasks = tuple(tasks)
        self.reset()

    def reset(self):
        self._loss_sum = {t: 0.0 for t in self.tasks}
        self._loss_w = {t: 0.0 for t in self.tasks}
        self._confusion = {t: None for t in self.tasks}
        self._topk = {t: 0.0 for t in self.tasks}
        self._count = {t: 0.0 for t in self.tasks}
        self._total_loss = 0.0

    def update(self, loss_parts: dict, stats: dict, task_weights=None) -> None:
        """Add one (globally reduced) step: ``loss_parts[task] = (sum, weight)``."""
        for task in self.tasks:
            s, w = loss_parts[task]
            self._loss_sum[task] += float(s)
            self._loss_w[task] += float(w)
            cm = np.asarray(stats[task]["confusion"], dtype=np.float64)
            prev = self._confusion[task]
            self._confusion[task] = cm if prev is None else prev + cm
            self._topk[task] += float(stats[task]["topk"])
            self._count[task] += float(stats[task]["count"])

    def task_loss(self, task: str) -> float:
        w = self._loss_w[task]
        return self._loss_sum[task] / w if w > 0 else 0.0

    def loss(self, task_weights: dict[str, float] | None = None) -> float:
        """Weighted sum of the tasks' mean losses (what training minimises)."""
        task_weights = task_weights or {}
        return sum(task_weights.get(t, 1.0) * self.task_loss(t) for t in self.tasks)

    def result(self, prefix: str = "", task_weights=None) -> dict[str, float]:
        """The epoch's logs, e.g. ``{"val_loss": .., "val_macro_f1": .., ...}``."""
        logs = {f"{prefix}loss": self.loss(task_weights)}
        per_task = {}
        for task in self.tasks:
            n = self._count[task]
            cm = self._confusion[task]
            macro, weighted = f1_scores(cm) if cm is not None else (0.0, 0.0)
            top1 = float(np.trace(cm)) / n if n > 0 and cm is not None else 0.0
            per_task[task] = {
                "top1": top1,
                "top5": self._topk[task] / n if n > 0 else 0.0,
                "macro_f1": macro,
                "weighted_f1": weighted,
            }
        if len(self.tasks) == 1:
            (values,) = per_task.values()
            logs.update({f"{prefix}{k}": v for k, v in values.items()})
            return logs
        for task, values in per_task.items():
            logs[f"{prefix}{task}_loss"] = self.task_loss(task)
            logs.update({f"{prefix}{task}_{k}": v for k, v in values.items()})
        for name in METRICS:
            logs[f"{prefix}{name}"] = float(
                np.mean([values[name] for values in per_task.values()])
            )
        return logs

    def confusion(self, task: str) -> np.ndarray | None:
        return self._confusion[task]
