"""Backbone normalisation and the evaluation decode/resize, shared with export.

Both functions are pure TensorFlow and trace under ``autograph=False`` (no Python
``if`` on tensors), so `keras_art.export` can call them inside ``tf.map_fn`` on a
raw-bytes serving signature and training, evaluation and serving see identical pixels.
"""

from __future__ import annotations

from keras_art.errors import UserError

# keras.applications.resnet50.preprocess_input ("caffe" mode): RGB -> BGR, then
# subtract the ImageNet BGR means; no scaling.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# EfficientNet and ConvNeXt in Keras 3 carry their own Rescaling/Normalization
# layers; their preprocess_input is the identity (checked in the tests).
BACKBONE_PREPROCESS = {
    "resnet50": "caffe",
    "efficientnetb0": "identity",
    "convnext_tiny": "identity",
}
EVAL_RESIZE_MODES = ("resize", "center_crop", "letterbox")


def preprocess_for_backbone(images, backbone: str = "resnet50"):
    """Normalise float RGB images in [0, 255] the way ``backbone`` was trained.

    Args:
        images: float tensor ``(..., H, W, 3)``, RGB, values 0-255.
        backbone: one of ``BACKBONE_PREPROCESS``.

    Returns:
        float32 tensor of the same shape, equal to
        ``keras.applications.<backbone module>.preprocess_input(images)``.
    """
    import tensorflow as tf

    mode = _mode(backbone)
    images = tf.cast(images, tf.float32)
    if mode == "identity":
        return images
    # bias_add: the per-channel subtraction without Eigen's slow generic broadcast.
    mean = tf.constant(_CAFFE_BGR_MEAN, tf.float32)
    return tf.nn.bias_add(tf.reverse(images, axis=[-1]), -mean)


def backbone_affine(backbone: str = "resnet50"):
    """`preprocess_for_backbone` as ``y = matrix @ rgb + offset`` per pixel.

    ``matrix`` is always a channel permutation (numpy float32 (3, 3)), so a clip to
    [0, 255] before it equals a clip to [offset, 255 + offset] after it; training
    folds this into the colour-jitter matrix and saves a pass over every image.
    """
    import numpy as np

    if _mode(backbone) == "identity":
        return np.eye(3, dtype=np.float32), np.zeros(3, np.float32)
    return (
        np.eye(3, dtype=np.float32)[::-1].copy(),
        -np.asarray(_CAFFE_BGR_MEAN, np.float32),
    )


def _mode(backbone: str) -> str:
    if backbone not in BACKBONE_PREPROCESS:
        raise UserError(
            f"Unknown backbone {backbone!r}. Choose one of: "
            f"{', '.join(BACKBONE_PREPROCESS)}."
        )
    return BACKBONE_PREPROCESS[backbone]


def check_eval_mode(mode: str) -> str:
    """Return ``mode`` or raise `UserError` naming the valid eval resize modes."""
    if mode not in EVAL_RESIZE_MODES:
        raise UserError(
            f"Unknown eval resize mode {mode!r}. Choose one of: "
            f"{', '.join(EVAL_RESIZE_MODES)}."
        )
    return mode


def decode_image(image_bytes):
    """Decode JPEG/PNG (RGBA, grey, 16-bit)/GIF (first frame)/BMP to uint8 (H, W, 3)."""
    import tensorflow as tf

    image = tf.io.decode_image(
        image_bytes, channels=3, expand_animations=False, dtype=tf.uint8
    )
    image.set_shape([None, None, 3])
    return image


def decode_and_resize_for_eval(image_bytes, image_size: int, mode: str = "resize"):
    """Decode one encoded image and bring it to ``(image_size, image_size, 3)``.

    Modes:
        ``resize``: stretch to the square (aspect ratio not kept).
        ``center_crop``: the largest central square, then resize. JPEGs decode only
            that square (``decode_and_crop_jpeg``).
        ``letterbox``: keep the aspect ratio, pad with black to the square.

    Returns float32 RGB in [0, 255], not yet normalised (see
    `preprocess_for_backbone`). Safe under ``autograph=False`` / ``tf.map_fn``.
    """
    import tensorflow as tf

    check_eval_mode(mode)
    size = [int(image_size), int(image_size)]
    if mode == "center_crop":

        def jpeg():
            shape = tf.io.extract_jpeg_shape(image_bytes, output_type=tf.int32)
            window = _central_square(shape[0], shape[1])
            return tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)

        def other():
            image = decode_image(image_bytes)
            shape = tf.shape(image)
            w = _central_square(shape[0], shape[1])
            return tf.slice(image, [w[0], w[1], 0], [w[2], w[3], 3])

        image = tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
        image.set_shape([None, None, 3])
        out = tf.image.resize(image, size, antialias=True)
    elif mode == "letterbox":
        image = decode_image(image_bytes)
        out = tf.image.resize_with_pad(image, size[0], size[1], antialias=True)
    else:
        out = tf.image.resize(decode_image(image_bytes), size, antialias=True)
    out = tf.clip_by_value(tf.cast(out, tf.float32), 0.0, 255.0)
    return tf.ensure_shape(out, [size[0], size[1], 3])


def _central_square(height, width):
    import tensorflow as tf

    side = tf.minimum(height, width)
    return tf.stack([(height - side) // 2, (width - side) // 2, side, side])
