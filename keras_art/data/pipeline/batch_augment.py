"""Colour jitter, random erasing and MixUp/CutMix on whole batches, in the train step.

With ``augment.on_device`` the tf.data pipeline stops after the crop, flip and scale
jitter (what has to happen per image, before images share a shape), and the trainer
runs these three on each batch inside its step, on the accelerator, as timm's
prefetch loader erases and its training loop mixes on the GPU. On a GPU host the input
pipeline's CPU cost per image then drops by what these ops cost on the CPU (about a
third of the work after decoding at 384 px: ``python -m keras_art.bench pipeline
--set augment.on_device=true``); on a CPU-only machine the work just moves into the
step, so the default is off.

The ops are the per-image ones of `keras_art.data.pipeline.augment` and
`keras_art.data.pipeline.mixing`, drawn per image from one seed per batch: the
same distributions, not the same draws, as the pipeline's.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from keras_art.config import AugmentConfig, InputConfig
from keras_art.data.pipeline import augment as aug
from keras_art.data.pipeline.mixing import mix_batch_as_configured


def on_device_ops(augment: AugmentConfig, input_cfg: InputConfig) -> list[str]:
    """The batch ops ``augment.on_device`` moves into the step (empty when off)."""
    if not augment.on_device:
        return []
    ops = []
    if augment.random_erasing > 0:
        ops.append("random_erasing")
    if augment.color_jitter > 0 or augment.hue_jitter > 0:
        ops.append("color_jitter")
    if input_cfg.mixup_p > 0 or input_cfg.cutmix_p > 0:
        ops.append("mixup_cutmix")
    return ops


def make_batch_augment(
    augment: AugmentConfig, input_cfg: InputConfig
) -> Callable | None:
    """``fn(images, targets, weights, seed) -> (images, targets, weights)`` for the
    trainer's step, or None when ``augment.on_device`` is off (or nothing to do).
    ``seed``: shape ``(2,)``, one per batch and replica."""
    ops = on_device_ops(augment, input_cfg)
    if not ops:
        return None

    def batch_augment(images, targets, weights, seed):
        s_erase, s_colour, s_mix = aug.split_seed(seed, 3)
        images = tf.cast(images, tf.float32)
        # The pipeline's order: erasing, then colour, then mixing.
        if "random_erasing" in ops:
            images = aug.random_erasing_batch(images, s_erase, augment.random_erasing)
        if "color_jitter" in ops:
            images = aug.color_jitter(
                images, s_colour, augment.color_jitter, augment.hue_jitter
            )
        if "mixup_cutmix" in ops:
            images, targets, weights = mix_batch_as_configured(
                images, targets, weights, s_mix, input_cfg
            )
        return images, targets, weights

    batch_augment.ops = ops
    return batch_augment
