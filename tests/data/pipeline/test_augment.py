"""Every op runs eagerly AND inside Dataset.map (big_vision style), same seed."""

import numpy as np
import pytest
import tensorflow as tf

from keras_art.data.pipeline import augment as aug
from tests.data.image_fixtures import encode, textured

SEED = tf.constant([3, 7], tf.int64)


def both(fn, x, seed=SEED):
    """fn(x, seed) eagerly and inside Dataset.map; asserts they agree."""
    eager = fn(tf.constant(x), seed).numpy()
    ds = tf.data.Dataset.from_tensors((tf.constant(x), seed)).map(fn)
    graph = next(iter(ds)).numpy()
    np.testing.assert_allclose(eager, graph, atol=1e-3)
    return eager


IMAGE = textured(24, 32).astype("float32")

OPS = {
    "random_resized_crop": lambda x, s: aug.random_resized_crop(
        x, s, 16, (0.3, 1.0), (0.75, 1.33)
    ),
    "scale_jitter": lambda x, s: aug.scale_jitter(x[:24, :24], s, (0.5, 1.5)),
    "pad_or_crop_small": lambda x, s: aug.pad_or_crop(x[:16, :16], s, 20),
    "pad_or_crop_large": lambda x, s: aug.pad_or_crop(x[:24, :24], s, 14),
    "flip": lambda x, s: aug.random_flip(x, s, True, True),
    "rotate_zoom": lambda x, s: aug.random_rotate_zoom(x, s, 30.0, (0.5, 1.5)),
    "color_jitter": lambda x, s: aug.color_jitter(x, s, 0.4, 0.05),
    "random_erasing": lambda x, s: aug.random_erasing(x, s, 1.0),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_eager_equals_dataset_map_and_is_seeded(name):
    out = both(OPS[name], IMAGE)
    assert out.dtype == np.float32 and out.shape[-1] == 3
    assert out.min() >= 0 and out.max() <= 255
    again = OPS[name](tf.constant(IMAGE), SEED).numpy()
    np.testing.assert_array_equal(out, again)
    others = [
        OPS[name](tf.constant(IMAGE), tf.constant([s, 1])).numpy() for s in range(6)
    ]
    assert any(not np.array_equal(out, o) for o in others)


@pytest.mark.parametrize("fmt", ["jpeg", "png_rgba", "gif", "bmp"])
def test_fused_decode_crop_eager_and_map(fmt):
    blob = encode(textured(40, 64), fmt)
    out = both(
        lambda b, s: aug.decode_random_resized_crop(
            b, s, 16, (0.35, 1.0), (0.75, 1.33)
        ),
        blob,
    )
    assert out.shape == (16, 16, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize("fmt", ["jpeg", "png_rgba"])
def test_fused_crop_with_scale_jitter_eager_and_map(fmt):
    blob = encode(textured(40, 64), fmt)
    out = both(
        lambda b, s: aug.decode_random_resized_crop(
            b, s, 16, (0.35, 1.0), (0.75, 1.33), jitter_seed=s, jitter_range=(0.5, 1.5)
        ),
        blob,
    )
    assert out.shape == (16, 16, 3) and out.min() >= 0 and out.max() <= 255


def _window(seed, win, size, scale_range, flips=(False, False)):
    sub, side, (needed, paddings) = aug.jittered_window(
        tf.constant(win), tf.constant(seed), size, scale_range, flips
    )
    return sub.numpy(), int(side), bool(needed), paddings.numpy()


def test_jittered_window_keeps_what_pad_or_crop_kept():
    """Zoom-in: the part of the window the n x n crop keeps, size/n of it per axis.
    Zoom-out: the whole window, resized to n and padded by pad_or_crop's draws."""
    win = [10, 20, 200, 300]
    for s in range(8):
        seed = [s, 5]
        s_scale = aug.split_seed(tf.constant(seed), 2)[0]
        n = int(aug.jitter_size(s_scale, 64, (0.5, 1.5)))
        sub, side, needed, paddings = _window(seed, win, 64, (0.5, 1.5))
        y, x, h, w = sub
        assert y >= 10 and y + h <= 210 and x >= 20 and x + w <= 320
        assert side == min(n, 64) and needed == (n < 64)
        if n > 64:
            assert abs(h - 200 * 64 / n) <= 1 and abs(w - 300 * 64 / n) <= 1
            assert paddings.sum() == 0
        else:
            assert list(sub) == win
            assert paddings[:2].sum(axis=1).tolist() == [64 - n, 64 - n]
            assert (paddings >= 0).all()


def test_jittered_window_mirrors_the_offset_of_a_flipped_crop():
    win = [0, 0, 120, 160]
    for s in range(8):
        plain = _window([s, 2], win, 32, (1.2, 1.5))[0]
        flipped = _window([s, 2], win, 32, (1.2, 1.5), flips=(True, True))[0]
        # Same size; the kept part is mirrored inside the window (rounding: 1 px).
        assert list(flipped[2:]) == list(plain[2:])
        assert abs(flipped[0] - (120 - plain[0] - plain[2])) <= 1
        assert abs(flipped[1] - (160 - plain[1] - plain[3])) <= 1


def test_fused_flip_mirrors_the_same_crop():
    """hflip=True gives the same crop, either as is or mirrored, and both happen."""
    blob = tf.constant(encode(textured(40, 64), "jpeg"))
    outcomes = []
    for s in range(6):
        seed = tf.constant([s, 4])
        plain = aug.decode_random_resized_crop(blob, seed, 16, (0.4, 1.0), (0.75, 1.33))
        flip = aug.decode_random_resized_crop(
            blob, seed, 16, (0.4, 1.0), (0.75, 1.33), hflip=True
        ).numpy()
        plain = plain.numpy()
        assert np.abs(plain - plain[:, ::-1]).mean() > 10  # the two are told apart
        same = np.allclose(flip, plain, atol=1e-3)
        mirrored = np.allclose(flip, plain[:, ::-1], atol=1e-3)
        assert same != mirrored
        outcomes.append(mirrored)
    assert any(outcomes) and not all(outcomes)  # flips with probability 1/2


def test_dct_downscale_matches_plain_crop():
    yy, xx = np.mgrid[0:256, 0:320]
    smooth = np.stack([yy * 0.9, xx * 0.7, (yy + xx) * 0.4], -1).astype(np.uint8)
    blob = tf.constant(encode(smooth, "jpeg"))
    for s in range(4):
        seed = tf.constant([s, 0])
        fast = aug.decode_random_resized_crop(blob, seed, 24, (0.5, 1.0), (0.75, 1.33))
        plain = aug.decode_random_resized_crop(
            blob, seed, 24, (0.5, 1.0), (0.75, 1.33), dct_downscale=False
        )
        assert np.abs(fast.numpy() - plain.numpy()).mean() < 3


@pytest.mark.parametrize("shape", [(24, 32), (7, 300), (300, 7), (1, 1), (5000, 4)])
def test_crop_windows_lie_inside_the_image(shape):
    h, w = shape
    fn = tf.function(
        lambda s: aug.sample_crop_window(s, h, w, (0.08, 1.0), (0.75, 1.33))
    )
    seeds = tf.random.stateless_uniform([64, 2], [0, 1], 0, 2**30, dtype=tf.int32)
    wins = tf.map_fn(fn, seeds).numpy()
    y, x, ch, cw = wins.T
    assert (y >= 0).all() and (x >= 0).all() and (ch >= 1).all() and (cw >= 1).all()
    assert (y + ch <= h).all() and (x + cw <= w).all()
    ds = tf.data.Dataset.from_tensor_slices(seeds[:5]).map(fn)
    np.testing.assert_array_equal(np.stack(list(ds.as_numpy_iterator())), wins[:5])


def test_crop_window_respects_scale():
    seeds = tf.random.stateless_uniform([40, 2], [1, 1], 0, 2**30, dtype=tf.int32)
    wins = tf.map_fn(
        lambda s: aug.sample_crop_window(s, 100, 100, (0.3, 0.5), (0.75, 1.33)), seeds
    ).numpy()
    area = wins[:, 2] * wins[:, 3] / 1e4
    assert area.min() > 0.27 and area.max() < 0.54


def test_flip_is_image_or_its_mirror():
    out = both(lambda x, s: aug.random_flip(x, s, True, False), IMAGE)
    assert np.array_equal(out, IMAGE) or np.array_equal(out, IMAGE[:, ::-1])


def test_rotate_zoom_identity_and_half_turn():
    x = tf.constant(IMAGE)[None]
    shape = tf.shape(x)[1:3]

    def warp(angle, zoom):
        t = aug.rotate_zoom_transform(angle, zoom, shape[0], shape[1])
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=x,
            transforms=t[None],
            output_shape=shape,
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="NEAREST",
        )[0].numpy()

    np.testing.assert_allclose(warp(0.0, 1.0), IMAGE, atol=1e-3)
    np.testing.assert_allclose(warp(np.pi, 1.0), IMAGE[::-1, ::-1], atol=1e-2)
    same = both(lambda im, s: aug.random_rotate_zoom(im, s, 0.0, (1.0, 1.0)), IMAGE)
    np.testing.assert_allclose(same, IMAGE, atol=1e-3)


def test_color_jitter_zero_strength_is_identity():
    out = both(lambda x, s: aug.color_jitter(x, s, 0.0, 0.0), IMAGE)
    np.testing.assert_allclose(out, IMAGE, atol=1e-3)


def test_random_erasing_probability_zero_and_one():
    np.testing.assert_array_equal(
        both(lambda x, s: aug.random_erasing(x, s, 0.0), IMAGE), IMAGE
    )
    flat = np.full((20, 20, 3), 128.0, np.float32)
    out = both(lambda x, s: aug.random_erasing(x, s, 1.0), flat)
    changed = (out != 128.0).any(-1)
    rows, cols = np.nonzero(changed)
    frac = changed.sum() / 400
    assert 0.01 <= frac <= 0.4  # one rectangle of 2-33 % of the image
    box = changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert box.mean() > 0.95  # a rectangle, not scattered pixels


def test_multi_size_batches():
    batch = np.zeros((2, 20, 20, 3), np.float32)
    out = both(lambda x, sd: aug.resize_batch_to_random_size(x, sd, [8, 12, 16]), batch)
    assert out.shape[0] == 2 and out.shape[1] == out.shape[2]
    sizes = set()
    for s in range(12):
        out = aug.resize_batch_to_random_size(batch, tf.constant([s, 5]), [8, 12, 16])
        assert out.shape[1] == out.shape[2]
        sizes.add(out.shape[1])
    assert sizes == {8, 12, 16}


@pytest.mark.parametrize("eager", [True, False])
def test_fused_colour_pass_matches_numpy(eager):
    # The XLA-compiled pass gives what the same maths gives in NumPy, with the
    # draws `colour_params` makes for the seed (under XLA: its Philox counters
    # differ from the TF kernel's, so the draws do too).
    rng = np.random.default_rng(1)
    image = tf.constant(rng.random((13, 17, 3)) * 255, tf.float32)
    params = tf.function(lambda sd: aug.colour_params(sd, 0.4, 0.05), jit_compile=True)
    matrix, b, c = (v.numpy() for v in params(SEED))
    x = image.numpy()
    # The contrast pivot: the mean grey of the pixel grid the pass samples.
    step = aug._MEAN_STRIDE
    grey = (x[::step, ::step].mean(axis=(0, 1)) * np.array(aug._GREY)).sum()
    ref = np.clip(x @ matrix.T + (1 - c) * grey * b, 0, 255)
    if eager:
        out = aug.color_jitter(image, SEED, 0.4, 0.05)
    else:
        ds = tf.data.Dataset.from_tensors(image)
        out = next(iter(ds.map(lambda x: aug.color_jitter(x, SEED, 0.4, 0.05))))
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-3)


def test_colour_jitter_matches_the_sequential_adjustments():
    """Brightness, contrast (about the full image's mean grey) and saturation
    applied one after another with TF's own ops, no hue: within a grey level of
    the one-pass version, whose contrast pivot samples a 4 x 4 pixel grid."""
    image = tf.constant(textured(96, 128).astype("float32"))
    params = tf.function(lambda sd: aug.colour_params(sd, 0.3, 0.0), jit_compile=True)
    for s in range(4):
        seed = tf.constant([s, 3])
        matrix, b, c = params(seed)
        # The saturation factor, read back from the matrix: its diagonal is
        # b * c * (sat + (1 - sat) * grey weight).
        sat = (matrix[0, 0] / (b * c) - aug._GREY[0]) / (1.0 - aug._GREY[0])
        x = image * b
        grey = tf.reduce_mean(tf.image.rgb_to_grayscale(x))
        x = grey + c * (x - grey)  # contrast about the full image's mean grey
        x = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(x)) * (1.0 - sat) + (
            sat * x
        )
        ref = np.clip(x.numpy(), 0, 255)
        out = aug.color_jitter(image, seed, 0.3, 0.0).numpy()
        assert np.abs(out - ref).mean() < 1.0


def test_hue_rotation_keeps_grey_and_turns_colour():
    grey = np.full((8, 8, 3), 100.0, np.float32)
    np.testing.assert_allclose(
        aug.color_jitter(grey, SEED, 0.0, 0.5).numpy(), grey, atol=1e-3
    )
    red = np.zeros((8, 8, 3), np.float32)
    red[..., 0] = 200.0
    turned = [
        aug.color_jitter(red, tf.constant([s, 1]), 0.0, 0.5)[0, 0] for s in range(6)
    ]
    assert any(float(t[1]) > 20 or float(t[2]) > 20 for t in turned)


def test_random_erasing_noise_is_uniform_grey_levels():
    flat = np.full((96, 96, 3), 300.0, np.float32)  # outside 0-255: easy to mask
    noise = []
    for s in range(8):
        out = both(lambda x, sd: aug.random_erasing(x, sd, 1.0), flat, [s, 9])
        noise.append(out[out[..., 0] != 300.0])
    noise = np.concatenate(noise)
    assert len(noise) > 1400  # 8 boxes of at least 2 % of 96 x 96
    assert noise.min() >= 0 and noise.max() <= 255
    np.testing.assert_array_equal(noise, np.round(noise))  # whole grey levels
    # U{0..255}: mean 127.5, sd 73.9; channels drawn independently.
    assert abs(noise.mean() - 127.5) < 6 and abs(noise.std() - 73.9) < 5
    assert abs(np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]) < 0.1
