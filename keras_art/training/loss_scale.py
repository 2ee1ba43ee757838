"""Dynamic loss scaling for float16 training with several optimizers.

``keras.optimizers.LossScaleOptimizer`` wraps exactly one optimizer, and
`keras_art.training.optimizers.GroupAdamW` steps one optimizer per variable group,
so the trainer scales the loss itself: multiply the loss by ``scale``, divide the
gradients by it, skip the whole step (every group) and halve ``scale`` when a
gradient is not finite, double it after ``growth_steps`` finite steps in a row. The
numbers are LossScaleOptimizer's defaults.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class DynamicLossScale:
    """The loss scale and its finite-step counter (create in ``strategy.scope()``).

    Args:
        initial_scale: the first scale.
        growth_steps: finite steps in a row before the scale doubles.
    """

    def __init__(self, initial_scale: float = 2.0**15, growth_steps: int = 2000):
        if growth_steps < 1:
            raise ValueError(f"growth_steps must be >= 1. Received: {growth_steps}")
        self.growth_steps = int(growth_steps)
        self.scale = keras.Variable(
            initial_scale, dtype="float32", trainable=False, name="loss_scale"
        )
        self.good_steps = keras.Variable(
            0, dtype="int64", trainable=False, name="loss_scale_good_steps"
        )

    @property
    def variables(self) -> list:
        return [self.scale, self.good_steps]

    def scale_loss(self, loss):
        return loss * tf.cast(self.scale, loss.dtype)

    def unscale(self, grads: list) -> list:
        return [g / tf.cast(self.scale, g.dtype) for g in grads]

    @staticmethod
    def all_finite(grads: list):
        return tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

    def update(self, finite) -> None:
        """After a step (cross-replica context): grow, keep or halve the scale."""
        grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_steps)
        scale = tf.convert_to_tensor(self.scale)
        self.scale.assign(
            tf.where(finite, tf.where(grow, scale * 2.0, scale), scale * 0.5)
        )
        self.good_steps.assign(
            tf.where(
                tf.logical_and(finite, tf.logical_not(grow)),
                self.good_steps + 1,
                tf.zeros((), "int64"),
            )
        )
