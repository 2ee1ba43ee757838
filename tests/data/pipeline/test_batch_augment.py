"""augment.on_device: colour, erasing and mixing on whole batches in the train step.

The batch ops are seeded (eagerly and inside Dataset.map alike), draw per image,
and match the per-image maths; the pipeline leaves them out when they run on the
device; the Trainer runs them on every training batch, with a seed per step and
replica, and not on cached features.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_art.config import AugmentConfig, InputConfig
from keras_art.data.pipeline import augment as aug
from keras_art.data.pipeline.batch_augment import make_batch_augment, on_device_ops
from tests.data.image_fixtures import textured

SEED = tf.constant([5, 9], tf.int64)
B, S, C = 6, 24, 4


def _batch():
    rng = np.random.default_rng(0)
    images = np.stack([textured(S, S) for _ in range(B)]).astype("float32")
    images += rng.normal(0, 20, images.shape).astype("float32")
    labels = np.arange(B) % C
    targets = {"artist": np.eye(C, dtype="float32")[labels]}
    weights = {"artist": np.ones(B, "float32")}
    return np.clip(images, 0, 255), targets, weights


def _cfgs(**augment):
    return AugmentConfig(image_size=S, on_device=True, **augment), InputConfig()


def test_off_by_default_and_lists_what_it_moves():
    assert make_batch_augment(AugmentConfig(), InputConfig()) is None
    augment, inp = _cfgs()
    assert on_device_ops(augment, inp) == [
        "random_erasing",
        "color_jitter",
        "mixup_cutmix",
    ]
    augment.random_erasing = augment.color_jitter = augment.hue_jitter = 0.0
    inp.mixup_p = inp.cutmix_p = 0.0
    assert make_batch_augment(augment, inp) is None


def test_batch_augment_eager_equals_dataset_map_and_is_seeded():
    fn = make_batch_augment(*_cfgs())
    images, targets, weights = _batch()
    eager = fn(tf.constant(images), targets, weights, SEED)
    ds = tf.data.Dataset.from_tensors((images, targets, weights, SEED)).map(fn)
    graph = next(iter(ds))
    for a, b in zip(tf.nest.flatten(eager), tf.nest.flatten(graph), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-3)
    again = fn(tf.constant(images), targets, weights, SEED)
    np.testing.assert_array_equal(again[0].numpy(), eager[0].numpy())
    other = fn(tf.constant(images), targets, weights, tf.constant([6, 9], tf.int64))
    assert not np.array_equal(other[0].numpy(), eager[0].numpy())
    out = eager[0].numpy()
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    # Soft targets stay distributions.
    np.testing.assert_allclose(eager[1]["artist"].numpy().sum(1), 1.0, atol=1e-5)


def test_batch_colour_is_the_per_image_maths_with_per_image_draws():
    images = tf.constant(_batch()[0])
    out = aug.color_jitter(images, SEED, 0.4, 0.05).numpy()
    params = tf.function(
        lambda sd: aug.colour_params(sd, 0.4, 0.05, [B]), jit_compile=True
    )
    matrix, b, c = (v.numpy() for v in params(SEED))
    assert len({round(float(v), 6) for v in b}) == B  # one draw per image
    step = aug._MEAN_STRIDE
    for i in range(B):
        x = images[i].numpy()
        grey = (x[::step, ::step].mean(axis=(0, 1)) * np.array(aug._GREY)).sum()
        ref = np.clip(x @ matrix[i].T + (1 - c[i]) * grey * b[i], 0, 255)
        np.testing.assert_allclose(out[i], ref, atol=1e-3)


def test_batch_erasing_puts_one_noise_rectangle_in_each_chosen_image():
    flat = np.full((8, 40, 40, 3), 300.0, np.float32)  # outside 0-255: easy to mask
    out = aug.random_erasing_batch(tf.constant(flat), SEED, 1.0).numpy()
    boxes = set()
    for image in out:
        changed = (image != 300.0).any(-1)
        rows, cols = np.nonzero(changed)
        assert 0.01 <= changed.mean() <= 0.4  # 2-33 % of the image
        box = changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # one filled rectangle
        assert image[changed].max() <= 255 and image[changed].min() >= 0
        boxes.add((rows.min(), cols.min(), rows.max(), cols.max()))
    assert len(boxes) > 1  # each image its own draw
    untouched = aug.random_erasing_batch(tf.constant(flat), SEED, 0.0).numpy()
    np.testing.assert_array_equal(untouched, flat)


def test_batch_crop_windows_match_single_draws_shape_and_lie_inside():
    wins = aug.sample_crop_window(SEED, 30, 50, (0.02, 0.4), (0.3, 3.3), shape=[64])
    wins = wins.numpy()
    assert wins.shape == (64, 4)
    y, x, h, w = wins.T
    assert (y >= 0).all() and (x >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (y + h <= 30).all() and (x + w <= 50).all()
    assert len({tuple(v) for v in wins}) > 32


def test_pipeline_leaves_the_moved_ops_to_the_step(tmp_path):
    """With on_device the tf.data batches are crops with one-hot targets: no
    colour, no erasing, no mixing (each would change these flat colour squares)."""
    from keras_art.data.pipeline.dataset import build_dataset
    from tests.data.image_fixtures import encode

    files, colours = [], []
    for i in range(8):
        colour = [10 + 20 * i, 60, 200 - 10 * i]
        path = tmp_path / f"{i}.bmp"
        path.write_bytes(encode(np.full((20, 20, 3), colour, np.uint8), "bmp"))
        files.append(str(path))
        colours.append(colour)
    labels = {"artist": np.arange(8) % C}
    augment, inp = _cfgs(random_resized_crop=False, hflip=False, random_erasing=1.0)
    augment.scale_jitter = [1.0, 1.0]
    inp.batch_size, inp.mixup_p, inp.cutmix_p = 4, 0.5, 0.5
    ds = build_dataset(
        files, labels, {"artist": C}, augment, inp, training=True, seed=0
    )
    for images, targets, _ in ds.as_numpy_iterator():
        for image in images.reshape(4, -1, 3):
            assert image.tolist().count(image[0].tolist()) == len(image)
            assert image[0].tolist() in colours
        assert set(np.unique(targets["artist"])) <= {0.0, 1.0}


@pytest.mark.parametrize("head_only", [False, True])
def test_trainer_runs_batch_augment_on_each_image_batch(head_only):
    """Called once per training step with a seed that changes per step; never on
    cached features (the head-only path) and never in evaluation."""
    from tests.training import tiny

    seeds = []

    def spy(images, targets, weights, seed):
        seeds.append(seed)
        return images * 0.0, targets, weights  # visible in the loss

    model = tiny.tiny_model()
    tiny.set_trainable(model.get_layer("backbone"), None)
    trainer = tiny.trainer(model, tiny.train_cfg(), steps_per_epoch=2)
    trainer.batch_augment = spy
    seen, modes = [], []
    get_train_fn = trainer._get_train_fn

    def traced(head_only):
        modes.append(head_only)
        real = get_train_fn(head_only)

        def record(batch, seed):
            seen.append(seed.numpy().tolist())
            return real(batch, seed)

        return record

    trainer._get_train_fn = traced
    if head_only:
        from keras_art.training.feature_cache import build_feature_cache

        backbone = model.get_layer("backbone")
        cached = build_feature_cache(backbone, tiny.dataset(n=8), batch_size=4)
        trainer._feature_ds = cached  # what fit() sets while the backbone is frozen
        head = model.get_layer("head")
        before = head.get_weights()[0].copy()
        logs = trainer.train_epoch(cached, epoch=3)
        assert modes == [True] and len(seen) == 2  # both feature batches ran
        assert np.isfinite(logs["loss"])
        assert not np.allclose(before, head.get_weights()[0])  # the head trained
        assert seeds == []  # ...without batch augment on the features
        return
    trainer.train_epoch(tiny.dataset(n=8, batch=4), epoch=3)
    assert modes == [False]
    trainer.evaluate(tiny.dataset(n=8, batch=4))
    assert len(seeds) == 1  # traced once: one call in the step function
    assert seen == [[42, 3 * 2**32], [42, 3 * 2**32 + 1]]
