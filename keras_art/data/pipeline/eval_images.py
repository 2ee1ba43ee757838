"""Batches of eval-resized images, in file order, from files or from their encoded
bytes already in memory (TFRecord shard records).

The one way images reach a trained model outside training: evaluation's forward
pass, Grad-CAM, and export's TFLite-vs-Keras comparison all batch through
`image_dataset` (`decode.decode_and_resize_for_eval` with the run's size and mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from keras_art.data.pipeline.decode import decode_and_resize_for_eval


def encoded_images(files: Sequence[str], encoded: Sequence[bytes] | None = None):
    """Each image's encoded bytes as a `tf.data.Dataset` of scalar strings, in order.

    ``encoded`` (aligned with ``files``): the bytes already in memory, e.g. the
    records of TFRecord shards; otherwise each of ``files`` is read from disk."""
    if encoded is None:
        ds = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
        return ds.map(
            tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    if len(encoded) != len(files):
        raise ValueError(f"{len(encoded)} encoded images for {len(files)} files.")
    # A generator, not from_tensor_slices: no graph constant (2 GB limit) and no
    # second copy of the bytes.
    return tf.data.Dataset.from_generator(
        lambda: iter(encoded), output_signature=tf.TensorSpec((), tf.string)
    )


def image_dataset(
    files: Sequence[str],
    size: int,
    mode: str,
    batch_size: int = 32,
    *,
    encoded: Sequence[bytes] | None = None,
):
    """Batches of eval-resized RGB images (float32, 0-255), in file order; from
    ``encoded`` bytes when given (see `encoded_images`)."""

    def load(image_bytes):
        return decode_and_resize_for_eval(image_bytes, size, mode)

    ds = encoded_images(files, encoded)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
