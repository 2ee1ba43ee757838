"""Image decoding and the evaluation resize, shared by evaluation, export and predict.

The functions are pure TensorFlow and trace under ``autograph=False`` (no Python
``if`` on tensors), so `keras_art.export` can call them inside ``tf.map_fn`` on a
raw-bytes serving signature: training, evaluation and serving see identical pixels.
They return RGB in [0, 255]; the model normalises (its ``input_normalization`` layer).
"""

from __future__ import annotations

import tensorflow as tf

from keras_art.errors import UserError
from keras_art.registry import EVAL_RESIZE_MODES


def check_eval_mode(mode: str) -> str:
    """Return ``mode`` or raise `UserError` naming the valid eval resize modes."""
    if mode not in EVAL_RESIZE_MODES:
        raise UserError(
            f"Unknown eval resize mode {mode!r}. Choose one of: "
            f"{', '.join(EVAL_RESIZE_MODES)}."
        )
    return mode


def decode_rgb(image_bytes):
    """Decode JPEG/PNG (RGBA, grey, 16-bit)/GIF (first frame)/BMP to uint8 (H, W, 3)."""

    image = tf.io.decode_image(
        image_bytes, channels=3, expand_animations=False, dtype=tf.uint8
    )
    image.set_shape([None, None, 3])
    return image


def decode_and_resize_for_eval(image_bytes, image_size: int, mode: str):
    """Decode one encoded image and bring it to ``(image_size, image_size, 3)``.

    ``mode`` has no default here: it is the run's ``augment.eval_resize`` (whose
    default is the config's), so every caller passes the run's own. Modes:
        ``resize``: stretch to the square (aspect ratio not kept).
        ``center_crop``: the largest central square, then resize. JPEGs decode only
            that square (``decode_and_crop_jpeg``).
        ``letterbox``: keep the aspect ratio, pad with black to the square.

    Returns float32 RGB in [0, 255] (the model normalises). Safe under
    ``autograph=False`` / ``tf.map_fn``.
    """

    check_eval_mode(mode)
    if mode != "center_crop":
        return resize_for_eval(decode_rgb(image_bytes), image_size, mode)

    def jpeg():  # decode only the central square
        shape = tf.io.extract_jpeg_shape(image_bytes, output_type=tf.int32)
        window = _central_square(shape[0], shape[1])
        return tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)

    def other():
        image = decode_rgb(image_bytes)
        shape = tf.shape(image)
        w = _central_square(shape[0], shape[1])
        return tf.slice(image, [w[0], w[1], 0], [w[2], w[3], 3])

    square = tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
    square.set_shape([None, None, 3])
    return resize_for_eval(square, image_size, "resize")


def resize_for_eval(pixels, image_size: int, mode: str):
    """Decoded RGB pixels (``[H, W, 3]`` or a batch ``[N, H, W, 3]``, 0-255) to the
    square the model takes, by the eval resize ``mode`` (see
    `decode_and_resize_for_eval`, which uses it). Float32, clipped to [0, 255]."""

    check_eval_mode(mode)
    size = [int(image_size), int(image_size)]
    pixels = tf.cast(pixels, tf.float32)
    if mode == "center_crop":
        shape = tf.shape(pixels)
        height, width = shape[-3], shape[-2]
        side = tf.minimum(height, width)
        pixels = tf.image.crop_to_bounding_box(
            pixels, (height - side) // 2, (width - side) // 2, side, side
        )
        out = tf.image.resize(pixels, size, antialias=True)
    elif mode == "letterbox":
        out = tf.image.resize_with_pad(pixels, size[0], size[1], antialias=True)
    else:
        out = tf.image.resize(pixels, size, antialias=True)
    out = tf.clip_by_value(out, 0.0, 255.0)
    return tf.ensure_shape(out, [*([None] * (len(out.shape) - 3)), *size, 3])


def _central_square(height, width):
    side = tf.minimum(height, width)
    return tf.stack([(height - side) // 2, (width - side) // 2, side, side])
