"""Per-image training augmentations as pure, stateless TensorFlow functions.

Every random op takes ``seed``: an int32/int64 tensor of shape ``(2,)`` (as for
``tf.random.stateless_*``). The same seed gives the same output, eagerly or inside
``Dataset.map``; the pipeline draws one seed per element from
``tf.data.Dataset.random`` so augmentation changes every epoch yet reproduces from
``build_dataset(seed=...)``. Images are float32 RGB in [0, 255], ``(H, W, 3)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_art.data.pipeline.decode import decode_rgb

# DCT scaling factors libjpeg can decode at directly.
_JPEG_RATIOS = (1, 2, 4, 8)


def split_seed(seed, n: int):
    """``n`` independent stateless seeds (shape ``(2,)`` each) derived from ``seed``."""

    return tf.unstack(tf.random.experimental.stateless_split(seed, num=n))


def _uniform(seed, minval, maxval, shape=()):
    return tf.random.stateless_uniform(
        shape, seed, minval=float(minval), maxval=float(maxval), dtype=tf.float32
    )


def sample_crop_window(
    seed,
    height,
    width,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    attempts: int = 10,
    shape=(),
):
    """RandomResizedCrop's window ``[y, x, h, w]`` (int32), always inside the image.

    Follows torchvision: ``attempts`` candidates with area fraction in ``scale`` and
    log-uniform aspect ratio (w/h) in ``ratio``; the first that fits wins, otherwise
    the whole image clipped to the ratio range. Vectorised: no Python control flow.
    ``shape``: independent windows for a batch (e.g. ``[B]``: ``(B, 4)``).
    """

    s_area, s_ratio, s_y, s_x = split_seed(seed, 4)
    shape = list(shape) if isinstance(shape, (list, tuple)) else shape
    tries = tf.concat([tf.cast(shape, tf.int32), [attempts]], 0)
    h_img = tf.cast(height, tf.float32)
    w_img = tf.cast(width, tf.float32)
    target = h_img * w_img * _uniform(s_area, scale[0], scale[1], tries)
    log_r = _uniform(s_ratio, math.log(ratio[0]), math.log(ratio[1]), tries)
    r = tf.exp(log_r)
    w = tf.round(tf.sqrt(target * r))
    h = tf.round(tf.sqrt(target / r))
    fits = (w <= w_img) & (h <= h_img) & (w >= 1) & (h >= 1)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=-1)
    in_ratio = w_img / h_img
    fb_w = tf.where(in_ratio > ratio[1], tf.round(h_img * ratio[1]), w_img)
    fb_h = tf.where(in_ratio < ratio[0], tf.round(w_img / ratio[0]), h_img)
    ok = tf.reduce_any(fits, axis=-1)
    pick = tf.one_hot(first, attempts, dtype=tf.float32)  # the first that fits
    h = tf.clip_by_value(tf.where(ok, tf.reduce_sum(h * pick, -1), fb_h), 1.0, h_img)
    w = tf.clip_by_value(tf.where(ok, tf.reduce_sum(w * pick, -1), fb_w), 1.0, w_img)
    y = tf.floor(_uniform(s_y, 0.0, 1.0, shape) * (h_img - h + 1.0))
    x = tf.floor(_uniform(s_x, 0.0, 1.0, shape) * (w_img - w + 1.0))
    y = tf.minimum(y, h_img - h)
    x = tf.minimum(x, w_img - w)
    return tf.cast(tf.stack([y, x, h, w], axis=-1), tf.int32)


def random_resized_crop(image, seed, size: int, scale, ratio):
    """Crop a random `sample_crop_window` of a decoded image; resize to ``size``."""

    shape = tf.shape(image)
    win = sample_crop_window(seed, shape[0], shape[1], scale, ratio)
    return tf.ensure_shape(_crop_and_resize(image, win, size), [size, size, 3])


def decode_random_resized_crop(
    image_bytes,
    seed,
    size: int,
    scale,
    ratio,
    dct_downscale: bool = True,
    hflip: bool = False,
    vflip: bool = False,
    jitter_seed=None,
    jitter_range: Sequence[float] = (1.0, 1.0),
):
    """Decode only the sampled crop of an encoded image; return (size, size, 3) float32.

    JPEG: the window comes from the header (``extract_jpeg_shape``) and only that
    window is decoded (``decode_and_crop_jpeg``: rows below it are never entropy
    decoded, columns outside it never inverse-transformed); with ``dct_downscale``
    libjpeg also scales it down by 2/4/8 in the DCT domain whenever the window stays
    at least ``size`` pixels on its short side. Other formats (PNG, GIF, BMP): full
    decode, then crop. ``hflip``/``vflip`` flip with probability 1/2 (decided from
    ``seed``), only the flipped images pay for a copy.

    ``jitter_seed`` folds `scale_jitter` (``jitter_range``) into the crop: with the
    draws `scale_jitter` makes from that seed (side n, placement), a zoom-in (n >
    size) decodes and resizes only the part of the window the final crop keeps, and
    a zoom-out (n < size) resizes the window to n and pads it; one resample, no
    pixels decoded or resized only to be cropped away (see `jittered_window`).
    """

    s_win, s_flip = split_seed(seed, 2)
    u = tf.random.stateless_uniform([2], s_flip)
    flips = (tf.logical_and(hflip, u[0] < 0.5), tf.logical_and(vflip, u[1] < 0.5))

    def placed(shape):
        win = sample_crop_window(s_win, shape[0], shape[1], scale, ratio)
        if jitter_seed is None:
            return win, size, None
        return jittered_window(win, jitter_seed, size, jitter_range, flips)

    def jpeg():
        shape = tf.io.extract_jpeg_shape(image_bytes, output_type=tf.int32)
        win, side, pads = placed(shape)
        out = _decode_jpeg_window_resized(image_bytes, shape, win, side, dct_downscale)
        return _pad(_maybe_flip(out, flips), pads)

    def other():
        image = decode_rgb(image_bytes)
        win, side, pads = placed(tf.shape(image))
        return _pad(_maybe_flip(_crop_and_resize(image, win, side), flips), pads)

    # No clip: bilinear samples of uint8 stay in [0, 255]; the antialiased
    # resizes clip themselves.
    out = tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)
    return tf.ensure_shape(out, [size, size, 3])


def _decode_jpeg_window_resized(image_bytes, shape, win, side: int, dct_downscale):
    """The JPEG's ``win`` decoded and resized to ``side`` x ``side`` (float32), with
    libjpeg's DCT-domain downscale when ``dct_downscale``."""
    if dct_downscale:
        crop = _decode_jpeg_window_scaled(image_bytes, shape, win, side)
        # After the DCT step at most a 2x reduction is left: bilinear is enough.
        # Plain bilinear (half-pixel centres): crop_and_resize would fold the
        # flip in but costs ~3x more on CPU than resize + a conditional
        # reverse. float32 first: ResizeBilinear's float kernel beats its
        # uint8 one by more than the cast costs.
        return tf.image.resize(tf.cast(crop, tf.float32), [side, side])
    crop = tf.io.decode_and_crop_jpeg(image_bytes, win, channels=3)
    crop.set_shape([None, None, 3])
    out = tf.image.resize(crop, [side, side], antialias=True)
    return tf.clip_by_value(out, 0.0, 255.0)


def jittered_window(win, seed, size: int, scale_range: Sequence[float], flips):
    """`scale_jitter` of the crop of ``win`` (``[y, x, h, w]``), moved before the
    resize: ``(sub_window, side, paddings)``.

    The same draws as `scale_jitter` from ``seed``: side n = `jitter_size`, then
    `pad_or_crop`'s offsets. Of the n x n image only ``side = min(n, size)`` pixels
    per axis are kept, so ``sub_window`` is that part of ``win`` (its edges rounded
    to source pixels: under half a source pixel off). ``paddings`` (or None when n
    >= size) pads the resized, flipped crop back to ``size``. ``flips``
    (horizontal, vertical) mirror the crop offset, as cropping after the flip did.
    """

    s_scale, s_place = split_seed(seed, 2)
    n = jitter_size(s_scale, size, scale_range)
    before, offset = _placement(s_place, n, size)
    room = tf.maximum(n - size, 0)
    flip_yx = tf.stack([flips[1], flips[0]])
    offset = tf.where(flip_yx, room - offset, offset)
    side = tf.minimum(n, size)
    start = tf.cast(win[:2], tf.float32)
    extent = tf.cast(win[2:], tf.float32)
    per_px = extent / tf.cast(n, tf.float32)  # window pixels per n x n pixel
    lo = tf.round(start + tf.cast(offset, tf.float32) * per_px)
    hi = tf.round(start + tf.cast(offset + side, tf.float32) * per_px)
    lo = tf.minimum(lo, start + extent - 1.0)
    hi = tf.clip_by_value(hi, lo + 1.0, start + extent)
    sub = tf.cast(tf.concat([lo, hi - lo], 0), tf.int32)
    pad = size - side
    paddings = tf.stack(
        [[before[0], pad - before[0]], [before[1], pad - before[1]], [0, 0]]
    )
    return sub, side, (pad > 0, paddings)


def _pad(image, pads):
    if pads is None:
        return image
    needed, paddings = pads
    # tf.cond: a crop that already fills the square is not copied again.
    return tf.cond(needed, lambda: tf.pad(image, paddings), lambda: image)


def _crop_and_resize(image, win, size):
    """``win`` of a decoded uint8 image, antialiased-resized to (size, size, 3)."""

    crop = tf.slice(image, [win[0], win[1], 0], [win[2], win[3], 3])
    out = tf.image.resize(crop, [size, size], antialias=True)
    return tf.clip_by_value(out, 0.0, 255.0)


def _maybe_flip(image, flips):
    flip_h, flip_v = flips
    # tf.cond: an image that is not flipped is not copied.
    image = tf.cond(flip_h, lambda: tf.reverse(image, [1]), lambda: image)
    return tf.cond(flip_v, lambda: tf.reverse(image, [0]), lambda: image)


def _decode_jpeg_window_scaled(image_bytes, shape, win, size: int):
    """The JPEG window ``win`` decoded at the largest DCT scale 1/r that keeps its
    short side at least ``size`` pixels (uint8)."""

    short = tf.minimum(win[2], win[3])
    index = tf.reduce_sum(
        tf.cast(short >= tf.constant(_JPEG_RATIOS[1:]) * size, tf.int32)
    )
    branches = [
        lambda r=r: _decode_jpeg_window_at(image_bytes, shape, win, r)
        for r in _JPEG_RATIOS
    ]
    return tf.switch_case(index, branches)


def _decode_jpeg_window_at(image_bytes, shape, win, r: int):

    # The window in the scaled image's pixels, rounded so each edge moves by at
    # most r/2 source pixels (under half an output pixel).
    limit = (shape[:2] + r - 1) // r
    start = (win[:2] + r // 2) // r
    end = tf.minimum((win[:2] + win[2:] + r // 2) // r, limit)
    start = tf.minimum(start, end - 1)
    scaled = tf.concat([start, end - start], 0)
    # INTEGER_FAST: libjpeg's fast integer IDCT; its error is far below what the
    # colour jitter adds anyway.
    out = tf.io.decode_and_crop_jpeg(
        image_bytes, scaled, channels=3, ratio=r, dct_method="INTEGER_FAST"
    )
    out.set_shape([None, None, 3])
    return out


def scale_jitter(image, seed, scale_range: Sequence[float]):
    """Rescale a square (S, S, 3) image by s in ``scale_range``, then random-crop
    (s > 1) or pad with black at a random offset (s < 1) back to S."""

    s_scale, s_place = split_seed(seed, 2)
    size = image.shape[0]
    n = jitter_size(s_scale, size, scale_range)
    return pad_or_crop(tf.image.resize(image, [n, n]), s_place, size)


def jitter_size(seed, size: int, scale_range: Sequence[float]):
    """round(``size`` x s), s ~ U(``scale_range``): the side scale jitter resizes to
    (the training crop resizes straight to it, see `dataset.augment_image`)."""

    s = _uniform(seed, scale_range[0], scale_range[1])
    return tf.maximum(tf.cast(tf.round(size * s), tf.int32), 1)


def pad_or_crop(image, seed, size: int):
    """A square (n, n, 3) image back to (size, size, 3): black padding at a random
    offset when n < size, a random crop when n > size (one copy either way)."""

    n = tf.shape(image)[0]
    before, offset = _placement(seed, n, size)
    pad = tf.maximum(size - n, 0)
    paddings = tf.stack(
        [[before[0], pad - before[0]], [before[1], pad - before[1]], [0, 0]]
    )
    image = tf.cond(
        n < size,
        lambda: tf.pad(image, paddings),
        lambda: tf.slice(image, [offset[0], offset[1], 0], [size, size, 3]),
    )
    return tf.ensure_shape(image, [size, size, 3])


def _placement(seed, n, size: int):
    """Where an n x n image lands in a size x size square: ``(before, offset)``,
    the (y, x) padding before it when n < size and the crop offset when n > size
    (each 0 otherwise). `pad_or_crop` and `jittered_window` share these draws."""

    s_pad, s_crop = split_seed(seed, 2)
    pad = tf.maximum(size - n, 0)
    before = tf.random.stateless_uniform([2], s_pad, 0, pad + 1, dtype=tf.int32)
    room = tf.maximum(n - size, 0)
    offset = tf.random.stateless_uniform([2], s_crop, 0, room + 1, dtype=tf.int32)
    return before, offset


def random_flip(image, seed, horizontal: bool = True, vertical: bool = False):
    """Flip left-right and/or up-down, each with probability 1/2."""

    s_h, s_v = split_seed(seed, 2)
    if horizontal:
        image = tf.image.stateless_random_flip_left_right(image, s_h)
    if vertical:
        image = tf.image.stateless_random_flip_up_down(image, s_v)
    return image


def rotate_zoom_transform(angle, zoom, height, width):
    """The 8-vector projective transform (output -> input pixel) that rotates by
    ``angle`` radians and scales by ``zoom`` about the image centre.

    ``zoom`` < 1 magnifies (zoom in), > 1 shows more of the picture (zoom out),
    as Keras' ``ImageDataGenerator(zoom_range=...)`` does.
    """

    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cos = tf.cos(angle) * zoom
    sin = tf.sin(angle) * zoom
    return tf.stack(
        [
            cos,
            -sin,
            cx - cos * cx + sin * cy,
            sin,
            cos,
            cy - sin * cx - cos * cy,
            0.0,
            0.0,
        ]
    )


def random_rotate_zoom(
    image,
    seed,
    max_degrees: float = 0.0,
    zoom_range: Sequence[float] = (1.0, 1.0),
    fill_mode: str = "nearest",
):
    """Rotate by U(-max_degrees, max_degrees) and zoom by U(zoom_range) in one
    bilinear resampling (``ImageProjectiveTransformV3``); seed 002 uses 30 and
    (0.5, 1.5). ``fill_mode``: nearest | reflect | wrap | constant (black)."""

    s_angle, s_zoom = split_seed(seed, 2)
    angle = _uniform(s_angle, -max_degrees, max_degrees) * (math.pi / 180.0)
    zoom = _uniform(s_zoom, zoom_range[0], zoom_range[1])
    shape = tf.shape(image)
    transform = rotate_zoom_transform(angle, zoom, shape[0], shape[1])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.expand_dims(tf.cast(image, tf.float32), 0),
        transforms=tf.expand_dims(transform, 0),
        output_shape=shape[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=fill_mode.upper(),
    )[0]
    return tf.ensure_shape(out, image.shape)


# RGB <-> YIQ: hue is a rotation of the (I, Q) chroma plane.
_RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.596, -0.274, -0.322),
    (0.211, -0.523, 0.312),
)
_GREY = (0.2989, 0.587, 0.114)  # tf.image.rgb_to_grayscale weights
_MEAN_STRIDE = 4  # colour jitter's contrast pivot samples this pixel grid


def color_jitter(image, seed, strength: float = 0.2, hue: float = 0.0):
    """Brightness, contrast and saturation factors in [1 - strength, 1 + strength]
    and a hue rotation of U(-hue, hue) turns, in that order (torchvision's
    ColorJitter), clipped to [0, 255]. ``image``: one (H, W, 3) image, or a batch
    (B, H, W, 3) with its own draws per image.

    All four are linear in RGB, so they are folded into one 3x3 matrix and offset
    per image and applied in one pass (hue as a rotation in YIQ space, the usual
    linear approximation of an HSV hue shift; the clip happens once, at the end).
    The draws, the matrix and the pass are one XLA-compiled function (compiled once
    per strength, hue and image shape); it runs the same eagerly and inside
    ``Dataset.map``.
    """

    key = (float(strength), float(hue))
    if key not in _COLOUR_PASS:
        # One fused kernel: the ~20 small ops that draw the factors and build the
        # matrix cost as much dispatch time per image as the pixel loop itself.
        _COLOUR_PASS[key] = tf.function(
            lambda x, sd: _affine_clip(x, *colour_params(sd, *key, tf.shape(x)[:-3])),
            jit_compile=True,
            reduce_retracing=True,
        )
    return _COLOUR_PASS[key](tf.cast(image, tf.float32), seed)


_COLOUR_PASS: dict = {}


def colour_params(seed, strength: float, hue: float, shape=()):
    """`color_jitter`'s draws for ``seed``: ``(matrix, b, c)``, the 3x3 RGB matrix
    (rows = output channels) and the brightness and contrast factors; ``shape``
    (e.g. ``[B]``) draws one set per image, ``matrix`` then is ``(B, 3, 3)``."""

    s_b, s_c, s_s, s_h = split_seed(seed, 4)
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    b = _uniform(s_b, lo, hi, shape)
    c = _uniform(s_c, lo, hi, shape)
    s = _uniform(s_s, lo, hi, shape)[..., None, None]
    grey = tf.constant(_GREY, tf.float32)
    # saturation: s * I + (1 - s) * ones @ grey^T
    sat = s * tf.eye(3) + (1.0 - s) * tf.ones([3, 1]) * grey[None, :]
    matrix = sat * (b * c)[..., None, None]
    if hue > 0:
        theta = (_uniform(s_h, -hue, hue, shape) * (2.0 * math.pi))[..., None, None]
        cos_part, sin_part = _hue_basis()
        rot = tf.eye(3) + (tf.cos(theta) - 1.0) * cos_part + tf.sin(theta) * sin_part
        matrix = rot @ matrix
    return matrix, b, c


def _hue_basis():
    """RGB matrices A, B with hue rotation by theta = I + (cos - 1) A + sin B:
    T^-1 R(theta) T for T = RGB -> YIQ and R rotating the (I, Q) plane, split into
    its constant parts (NumPy, at trace time)."""

    to_yiq = np.array(_RGB_TO_YIQ, np.float64)
    back = np.linalg.inv(to_yiq)
    plane = np.diag([0.0, 1.0, 1.0])
    turn = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    return (
        (back @ plane @ to_yiq).astype(np.float32),
        (back @ turn @ to_yiq).astype(np.float32),
    )


def _affine_clip(image, matrix, b, c):
    """``clip(matrix @ rgb + offset, 0, 255)`` per pixel, where the
    contrast offset ``(1 - c) * b * mean grey`` pulls towards the mean grey of the
    brightened image (grey stays grey under saturation and hue, so the offset is
    the same on every channel)."""

    grey = tf.constant(_GREY, tf.float32)
    # The contrast pivot from every 4th pixel of every 4th row: within a grey
    # level of the full mean on paintings, at a 16th of the reduction's cost
    # (the full mean was a third of this function's time on CPU).
    sample = image[..., ::_MEAN_STRIDE, ::_MEAN_STRIDE, :]
    mean = tf.reduce_sum(tf.reduce_mean(sample, axis=[-3, -2]) * grey, -1) * b
    offset = ((1.0 - c) * mean)[..., None, None, None]
    # Written as three broadcast multiply-adds, not an einsum: XLA turns an einsum
    # into a separate dot kernel, this fuses with the clip into one loop (~2x
    # cheaper per image on CPU). A batch's matrices broadcast over its pixels.
    m = matrix[..., None, None, :, :]
    out = (
        image[..., 0:1] * m[..., 0]
        + image[..., 1:2] * m[..., 1]
        + image[..., 2:3] * m[..., 2]
        + offset
    )
    return tf.clip_by_value(out, 0.0, 255.0)


def random_erasing(
    image,
    seed,
    probability: float = 0.25,
    area: Sequence[float] = (0.02, 1 / 3),
    ratio: Sequence[float] = (0.3, 3.3),
):
    """With ``probability``, replace a random rectangle (``area`` fraction of the
    image, aspect ratio in ``ratio``) with uniform noise in [0, 255] (timm's
    "pixel" mode). The rectangle always lies inside the image. A batch:
    `random_erasing_batch`."""

    s_apply, s_win, s_noise = split_seed(seed, 3)
    shape = tf.shape(image)

    def erase():
        win = sample_crop_window(s_win, shape[0], shape[1], area, ratio)
        y, x, h, w = tf.unstack(win)
        # Noise only for the box, stitched in with slices: one copy of the image.
        noise = _noise_bytes(tf.stack([h, w]), s_noise, image.dtype)
        middle = tf.concat(
            [image[y : y + h, :x], noise, image[y : y + h, x + w :]], axis=1
        )
        return tf.concat([image[:y], middle, image[y + h :]], axis=0)

    # tf.cond runs one branch: no noise is drawn for the images left alone.
    apply = _uniform(s_apply, 0.0, 1.0) < probability
    return tf.ensure_shape(
        tf.cond(apply, erase, lambda: tf.identity(image)), image.shape
    )


def random_erasing_batch(
    images,
    seed,
    probability: float = 0.25,
    area: Sequence[float] = (0.02, 1 / 3),
    ratio: Sequence[float] = (0.3, 3.3),
):
    """`random_erasing` of a batch (B, H, W, 3) in one pass: per image an apply
    draw and a rectangle, the noise drawn for the whole batch (cheap on an
    accelerator, where `augment.on_device` runs it)."""

    s_apply, s_win, s_noise = split_seed(seed, 3)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    apply = _uniform(s_apply, 0.0, 1.0, [batch]) < probability
    win = sample_crop_window(s_win, height, width, area, ratio, shape=[batch])
    y, x, h, w = (win[:, i, None, None] for i in range(4))
    rows = tf.range(height)[None, :, None]
    cols = tf.range(width)[None, None, :]
    inside = (rows >= y) & (rows < y + h) & (cols >= x) & (cols < x + w)
    inside &= apply[:, None, None]
    noise = _noise_bytes(shape[:3], s_noise, images.dtype)
    return tf.where(inside[..., None], noise, images)


def _noise_bytes(shape, seed, dtype):
    """Uniform grey levels 0-255, ``shape + (3,)``: one 32-bit random word per
    pixel gives its three channels (bytes 0-2), a third of the generator work of
    drawing each channel."""

    bits = tf.random.stateless_uniform(
        shape, seed, minval=None, maxval=None, dtype=tf.int32
    )
    return tf.cast(tf.bitcast(bits, tf.uint8)[..., :3], dtype)


def resize_batch_to_random_size(images, seed, sizes: Sequence[int]):
    """Multi-size training (seed 002: 224/260/296): one size per batch, drawn from
    ``sizes``; returns ``(B, s, s, 3)``."""

    idx = tf.random.stateless_uniform([], seed, 0, len(sizes), dtype=tf.int32)
    size = tf.gather(tf.constant(list(sizes), tf.int32), idx)
    return tf.image.resize(images, tf.stack([size, size]))
