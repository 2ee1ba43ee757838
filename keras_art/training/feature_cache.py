"""Frozen-stage speed-up: run the frozen backbone once per image, train the head alone.

While the backbone is frozen (stage 1) its output for an image never changes, so the
head can train on cached feature maps instead of re-running ResNet50 every epoch.
What the cache allows: the features come from the images as ``ds`` yields them (use the
EVALUATION preprocessing: resize/centre crop, no random crops, colour jitter, erasing,
MixUp or CutMix, which cannot be applied in feature space); with ``flips=True`` it also
stores the horizontally flipped image's features and picks one of the two at random
per sample and epoch (the only augmentation kept). Stage 2 (unfrozen) always trains on
images with the full augmentation.

Memory: N x H x W x C values, stored as float16 by default: at 224 px ResNet50 gives
7x7x2048 -> 200 KB per image (x2 with flips); at 384 px 12x12x2048 -> 590 KB.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def compute_features(
    backbone, ds: tf.data.Dataset, *, flips: bool = False, dtype: str = "float16"
):
    """One pass of ``backbone(images, training=False)`` over ``(images, targets,
    weights)`` batches; returns ``(features, targets, weights)`` as numpy arrays
    (``features`` is ``(N, 2, H, W, C)`` with flips, else ``(N, H, W, C)``)."""

    # One trace for every batch size (the last batch is smaller): the dataset's own
    # spec, batch dimension None.
    @tf.function(input_signature=[ds.element_spec[0]])
    def forward(images):
        feats = backbone(images, training=False)
        if flips:
            flipped = backbone(tf.image.flip_left_right(images), training=False)
            feats = tf.stack([feats, flipped], axis=1)
        return tf.cast(feats, dtype)

    feats, targets, weights = [], {}, {}
    for images, y, w in ds:
        feats.append(forward(images).numpy())
        for task in y:
            targets.setdefault(task, []).append(np.asarray(y[task]))
            weights.setdefault(task, []).append(np.asarray(w[task]))
    if not feats:
        raise ValueError("The dataset given to the feature cache is empty.")
    return (
        np.concatenate(feats),
        {t: np.concatenate(v) for t, v in targets.items()},
        {t: np.concatenate(v) for t, v in weights.items()},
    )


def build_feature_cache(
    backbone,
    ds: tf.data.Dataset,
    *,
    batch_size: int,
    flips: bool = False,
    dtype: str = "float16",
    seed: int = 0,
) -> tf.data.Dataset:
    """Cached features as a training dataset of ``(features, targets, weights)``.

    Computes the features once (see `compute_features`), then returns a finite
    one-epoch dataset that reshuffles every time it is iterated (seeded), picks a
    random flip per sample when ``flips``, casts to float32 and batches with
    ``drop_remainder=True`` (same steps per epoch as the image dataset with the same
    batch size). Pass it to ``Trainer.fit(feature_train_ds=...)``.
    """
    arrays = compute_features(backbone, ds, flips=flips, dtype=dtype)
    return train_feature_dataset(*arrays, batch_size=batch_size, flips=flips, seed=seed)


def train_feature_dataset(
    feats, targets, weights, *, batch_size: int, flips: bool = False, seed: int = 0
) -> tf.data.Dataset:
    """`compute_features`' arrays (computed here or loaded from disk) as the
    training dataset `build_feature_cache` describes."""
    n = feats.shape[0]
    data = tf.data.Dataset.from_tensor_slices((feats, targets, weights))
    data = data.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def pick(f, y, w):
        if flips:
            choice = tf.random.uniform((), 0, 2, dtype=tf.int32)
            f = tf.gather(f, choice)
        return tf.cast(f, tf.float32), y, w

    data = data.map(pick, num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def build_eval_feature_cache(
    backbone, ds: tf.data.Dataset, *, batch_size: int, dtype: str = "float16"
) -> tf.data.Dataset:
    """An evaluation set's features as ``(features, targets, weights)`` batches, in
    order and keeping the last partial batch (no flips): what
    ``Trainer.fit(feature_val_ds=...)`` evaluates the head on while the backbone is
    frozen."""
    arrays = compute_features(backbone, ds, dtype=dtype)
    return eval_feature_dataset(*arrays, batch_size=batch_size)


def eval_feature_dataset(feats, targets, weights, *, batch_size: int):
    """`compute_features`' arrays as the evaluation dataset
    `build_eval_feature_cache` describes."""
    data = tf.data.Dataset.from_tensor_slices((feats, targets, weights))
    data = data.map(lambda f, y, w: (tf.cast(f, tf.float32), y, w))
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
