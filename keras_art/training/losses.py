"""Masked, label-smoothed cross-entropy per task, scaled for ``tf.distribute``.

Targets may be one-hot or soft (MixUp/CutMix). A row whose weight is 0 (label missing
for that task) contributes nothing; each task's loss is the weighted mean over the
rows that have its label, over the GLOBAL batch: every replica divides its sum by the
all-reduced weight sum, so summing the replicas' gradients (what the optimizer does)
gives the gradient of the global mean, as ``tf.nn.compute_average_loss`` does for
unmasked losses.
"""

from __future__ import annotations

import tensorflow as tf

_EPS = 1e-7


def smoothed_cross_entropy(y_true, y_pred, label_smoothing: float = 0.0):
    """Per-row cross-entropy of probabilities ``y_pred`` against (soft) ``y_true``.

    Label smoothing mixes the target with the uniform distribution:
    ``y * (1 - eps) + eps / C`` (PyTorch's ``CrossEntropyLoss(label_smoothing=eps)``).
    """
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    if label_smoothing:
        classes = tf.cast(tf.shape(y_true)[-1], tf.float32)
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    log_p = tf.math.log(tf.clip_by_value(y_pred, _EPS, 1.0))
    return -tf.reduce_sum(y_true * log_p, axis=-1)


def global_sum(value):
    """Sum of ``value`` over all replicas (the value itself outside a replica ctx)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def masked_task_losses(
    targets: dict,
    outputs: dict,
    weights: dict,
    label_smoothing: float = 0.0,
):
    """Per task: ``(local_sum, local_weight)`` of the masked per-row losses."""
    out = {}
    for task, y_true in targets.items():
        per_row = smoothed_cross_entropy(y_true, outputs[task], label_smoothing)
        w = tf.cast(weights[task], tf.float32)
        out[task] = (tf.reduce_sum(per_row * w), tf.reduce_sum(w))
    return out


def total_loss(
    targets: dict,
    outputs: dict,
    weights: dict,
    *,
    label_smoothing: float = 0.0,
    task_weights: dict[str, float] | None = None,
    regularization_losses=(),
):
    """The loss a replica differentiates, and the per-task local sums and weights.

    Returns ``(loss, parts)``; ``parts[task] = (local_sum, local_weight)`` for
    exact epoch means. ``loss = sum_t task_weight_t * global_mean_t + reg / replicas``
    where ``global_mean_t = local_sum_t / all_reduce(local_weight_t)``: the replicas'
    losses add up to the global-batch loss.
    """
    task_weights = task_weights or {}
    parts = masked_task_losses(targets, outputs, weights, label_smoothing)
    loss = tf.constant(0.0, tf.float32)
    for task, (local_sum, local_w) in parts.items():
        denom = global_sum(tf.stop_gradient(local_w))
        loss += float(task_weights.get(task, 1.0)) * tf.math.divide_no_nan(
            local_sum, denom
        )
    if regularization_losses:
        reg = tf.add_n([tf.cast(r, tf.float32) for r in regularization_losses])
        loss += tf.nn.scale_regularization_loss(reg)
    return loss, parts
