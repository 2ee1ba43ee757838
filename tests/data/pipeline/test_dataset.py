import numpy as np
import pytest
import tensorflow as tf

from keras_art.config import AugmentConfig, InputConfig
from keras_art.data.pipeline.dataset import build_dataset, steps_per_epoch
from keras_art.data.pipeline.decode import decode_and_resize_for_eval
from keras_art.errors import UserError
from tests.data.image_fixtures import write_images

N, B, S = 14, 4, 32
NUM_CLASSES = {"style": 3, "genre": 2}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("imgs"), N)


def labels():
    return {
        "style": np.array([0] * 9 + [1] * 3 + [2, -1]),
        "genre": np.array([0, 1, -1, 1, 0, 1, 0, -1, 1, 0, 1, 0, 1, 0]),
    }


def cfgs(**input_kw):
    augment = AugmentConfig(image_size=S, crop_scale=[0.5, 1.0])
    kw = {"batch_size": B, "deterministic": True, "shuffle_buffer": 64, **input_kw}
    return augment, InputConfig(**kw)


def take_all(ds):
    return list(ds.as_numpy_iterator())


def test_training_batches(files):
    augment, inp = cfgs()
    ds = build_dataset(
        files, labels(), NUM_CLASSES, augment, inp, training=True, seed=0
    )
    batches = take_all(ds)
    assert len(batches) == steps_per_epoch(N, B, True) == N // B
    for images, targets, weights in batches:
        assert images.shape == (B, S, S, 3) and images.dtype == np.float32
        # RGB pixels: the model normalises (its input_normalization layer).
        assert images.min() >= 0.0 and images.max() <= 255.0
        for task, c in NUM_CLASSES.items():
            assert targets[task].shape == (B, c) and weights[task].shape == (B,)
            sums = targets[task].sum(1)
            np.testing.assert_allclose(sums[weights[task] > 0], 1.0, atol=1e-5)
            assert np.all(sums[weights[task] == 0] == 0)


def test_training_is_seeded(files):
    augment, inp = cfgs()
    run = [
        take_all(
            build_dataset(
                files, labels(), NUM_CLASSES, augment, inp, training=True, seed=5
            )
        )
        for _ in range(2)
    ]
    tf.nest.map_structure(np.testing.assert_array_equal, run[0], run[1])


def test_missing_labels_have_zero_weight_without_mixing(files):
    augment, inp = cfgs(
        mixup_p=0.0, cutmix_p=0.0, balanced_sampling=False, class_weights=True
    )
    ds = build_dataset(
        files, labels(), NUM_CLASSES, augment, inp, training=True, seed=1
    )
    for _, targets, weights in ds.as_numpy_iterator():
        for task in NUM_CLASSES:
            missing = targets[task].sum(1) == 0
            assert np.all(weights[task][missing] == 0)
            assert np.all(weights[task][~missing] > 0)
        # class weights: genre is balanced 6/6 here but style is not: rare > 1
        style = targets["style"].argmax(1)
        assert np.all(weights["style"][(style == 2) & (weights["style"] > 0)] > 1)


def test_eval_order_remainder_and_pixels(files):
    augment, inp = cfgs()
    augment.eval_resize = "letterbox"
    batches = take_all(
        build_dataset(files, labels(), NUM_CLASSES, augment, inp, training=False)
    )
    assert [b[0].shape[0] for b in batches] == [4, 4, 4, 2]
    style = np.concatenate([b[1]["style"] for b in batches])
    weights = np.concatenate([b[2]["style"] for b in batches])
    np.testing.assert_array_equal(
        np.where(weights > 0, style.argmax(1), -1), labels()["style"]
    )
    want = decode_and_resize_for_eval(tf.io.read_file(files[1]), S, "letterbox")
    np.testing.assert_allclose(batches[0][0][1], want.numpy(), atol=1e-3)
    # cached: decoded images stored as uint8, so within half a grey level
    augment_c, inp_c = cfgs(cache=True)
    augment_c.eval_resize = "letterbox"
    cached = take_all(
        build_dataset(files, labels(), NUM_CLASSES, augment_c, inp_c, training=False)
    )
    np.testing.assert_allclose(cached[0][0], batches[0][0], atol=0.51)


def test_cache_and_augmentation_off_and_multi_size(files):
    augment, inp = cfgs(cache=True, mixup_p=0.0, cutmix_p=0.0)
    for name in ("random_resized_crop", "hflip"):
        setattr(augment, name, False)
    augment.color_jitter = augment.hue_jitter = augment.random_erasing = 0.0
    det = build_dataset(
        files, labels(), NUM_CLASSES, augment, inp, training=True, seed=2
    )
    assert len(take_all(det)) == N // B
    augment2, inp2 = cfgs(cache=True)
    augment2.multi_size = [16, 24]
    augment2.rotation, augment2.zoom = 30.0, [0.5, 1.5]
    augment2.vflip, augment2.scale_jitter = True, [0.8, 1.2]
    ds = build_dataset(
        files, labels(), NUM_CLASSES, augment2, inp2, training=True, seed=3
    )
    sizes = {b[0].shape[1] for _ in range(2) for b in ds.as_numpy_iterator()}
    assert sizes <= {16, 24} and sizes


def test_balanced_sampling_evens_out_the_primary_task(files):
    augment, inp = cfgs(mixup_p=0.0, cutmix_p=0.0, batch_size=2)
    augment.random_resized_crop = False
    ds = build_dataset(
        files, labels(), NUM_CLASSES, augment, inp, training=True, seed=4
    )
    counts = np.zeros(4)
    for _ in range(4):
        for _, targets, weights in ds.as_numpy_iterator():
            y = np.where(weights["style"] > 0, targets["style"].argmax(1), 3)
            counts += np.bincount(y, minlength=4)
    # unbalanced would be 9:3:1:1 of 56 draws; balanced is ~ 17:17:17:4
    assert counts[0] < 30 and counts[2] > 7


def test_balanced_sampling_from_records_evens_out_imbalanced_classes():
    """9:3:1 classes, no missing labels, as one record stream: balanced sampling
    draws each class about equally (no NaN from the empty no-label bin)."""
    import warnings

    import tensorflow as tf

    from keras_art.data.pipeline.dataset import build_dataset_from_records
    from tests.data.image_fixtures import encode, textured

    lab = np.repeat([0, 1, 2], [90, 30, 10])
    blob = encode(textured(16, 16), "jpeg")
    records = tf.data.Dataset.from_tensor_slices(
        {"image": [blob] * len(lab), "style": lab.astype(np.int64)}
    )
    augment, inp = cfgs(mixup_p=0.0, cutmix_p=0.0, batch_size=10)
    augment.random_resized_crop = False
    counts = np.zeros(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for epoch in range(3):
            ds = build_dataset_from_records(
                records,
                {"style": 3},
                augment,
                inp,
                training=True,
                seed=epoch,
                labels={"style": lab},
            )
            for _, targets, _ in ds.as_numpy_iterator():
                counts += targets["style"].sum(0)
    share = counts / counts.sum()  # unbalanced: 0.69 / 0.23 / 0.08
    assert np.all(np.abs(share - 1 / 3) < 0.08), share


def test_repeat_factors_balance_in_expectation_and_keep_the_unlabelled_share():
    from keras_art.data.pipeline.dataset import repeat_factors

    lab = np.array([0] * 60 + [1] * 30 + [3] * 10 + [-1] * 20)  # class 2 absent
    f = repeat_factors(lab, 4)
    counts = np.array([60, 30, 0, 10, 20])
    assert f[2] == 0 and f[4] == 1.0  # absent class; unlabelled keep their share
    expected = f * counts
    assert expected.sum() == pytest.approx(len(lab))  # one epoch's worth per pass
    assert expected[[0, 1, 3]] == pytest.approx([100 / 3] * 3)


def test_balanced_record_stream_at_wikiart_scale():
    """57,000 records in WikiArt style's skew (largest class 100x the smallest),
    labels and record ids only: one epoch is 57,000 records with every class about
    equally often; a rare class's records each come back ~its factor times, and a
    common class still shows a fresh spread of its records."""
    import tensorflow as tf

    from keras_art.data.pipeline.dataset import _balanced_from_records, _BuildSpec

    rng = np.random.default_rng(0)
    n = 57000
    sizes = np.floor(np.geomspace(100, 1, 27) / np.geomspace(100, 1, 27).sum() * n)
    sizes[0] += n - sizes.sum()
    lab = np.repeat(np.arange(27), sizes.astype(int))
    rng.shuffle(lab)
    base = tf.data.Dataset.from_tensor_slices(
        {"image": tf.as_string(tf.range(n)), "style": lab.astype(np.int32)}
    )
    augment, inp = cfgs()
    spec = _BuildSpec({"style": 27}, augment, inp, True, 7, "style", False)
    stream = _balanced_from_records(base, n, {"style": lab}, spec)
    assert int(stream.cardinality()) == n  # the trainer sizes its schedule from it
    ids, classes = [], []
    for batch in stream.batch(4096).as_numpy_iterator():
        ids.append(batch["image"].astype(int))
        classes.append(batch["style"])
    ids, classes = np.concatenate(ids), np.concatenate(classes)
    assert len(ids) == n
    share = np.bincount(classes, minlength=27) / n
    assert np.abs(share - 1 / 27).max() < 0.15 / 27, share
    rare = np.flatnonzero(lab == 26)
    copies = np.bincount(ids, minlength=n)[rare]
    assert copies.mean() == pytest.approx(n / 27 / len(rare), rel=0.15)
    common = np.flatnonzero(lab == 0)
    seen = np.unique(ids[np.isin(ids, common)])
    assert len(seen) > 0.9 * (n / 27)  # mostly distinct records of the big class


def test_tfrecord_input_matches_files(files, tmp_path):
    from keras_art.data.pipeline.tfrecord import write_shards

    write_shards(files, labels(), tmp_path, "val", shard_size=5)
    write_shards(files, labels(), tmp_path, "train", shard_size=5)
    augment, inp = cfgs()
    from_files = take_all(
        build_dataset(files, labels(), NUM_CLASSES, augment, inp, training=False)
    )
    augment, inp = cfgs(tfrecords=str(tmp_path))
    from_records = take_all(
        build_dataset(files, labels(), NUM_CLASSES, augment, inp, training=False)
    )
    # Shards are read interleaved: same examples, possibly another order.
    a_img, a_y = flatten(from_files)
    b_img, b_y = flatten(from_records)
    assert len(b_img) == N
    for img, y in zip(b_img, b_y, strict=True):
        j = int(np.argmin(np.abs(a_img - img).reshape(N, -1).max(1)))
        np.testing.assert_allclose(a_img[j], img, atol=1e-3)
        np.testing.assert_array_equal(a_y[j], y)
    train = take_all(
        build_dataset(files, labels(), NUM_CLASSES, augment, inp, training=True, seed=0)
    )
    assert len(train) == N // B and train[0][0].shape == (B, S, S, 3)


def flatten(batches):
    images = np.concatenate([b[0] for b in batches])
    y = np.concatenate(
        [
            np.concatenate([b[1][t] * b[2][t][:, None] for t in NUM_CLASSES], 1)
            for b in batches
        ]
    )
    return images, y


def test_bad_inputs_are_user_errors(files):
    augment, inp = cfgs()
    bad = labels()
    bad["style"] = bad["style"][:-1]
    with pytest.raises(UserError, match="align"):
        build_dataset(files, bad, NUM_CLASSES, augment, inp, training=True)
    bad = labels()
    bad["genre"][0] = 7
    with pytest.raises(UserError, match="outside"):
        build_dataset(files, bad, NUM_CLASSES, augment, inp, training=True)
    with pytest.raises(UserError, match="batch"):
        build_dataset(
            files[:2],
            {k: v[:2] for k, v in labels().items()},
            NUM_CLASSES,
            augment,
            inp,
            training=True,
        )
    with pytest.raises(UserError, match="primary_task"):
        build_dataset(
            files,
            labels(),
            NUM_CLASSES,
            augment,
            inp,
            training=True,
            primary_task="artist",
        )


def _plain(**input_kw):
    """No random per-image op and no mixing: a training image is its eval image."""
    augment, inp = cfgs(mixup_p=0.0, cutmix_p=0.0, **input_kw)
    augment.random_resized_crop = augment.hflip = False
    augment.color_jitter = augment.hue_jitter = augment.random_erasing = 0.0
    augment.scale_jitter = [1.0, 1.0]
    return augment, inp


@pytest.mark.parametrize("balanced", [True, False])
def test_training_pipeline_yields_epoch_order(files, balanced):
    """The tf.data pipeline trains on exactly `epoch_order`'s sequence (the function
    the order tests check): images and labels, batch by batch, for two epochs."""
    from keras_art.data.pipeline.class_balance import epoch_order

    augment, inp = _plain(balanced_sampling=balanced)
    want_images = np.stack(
        [
            decode_and_resize_for_eval(tf.io.read_file(f), S, augment.eval_resize)
            for f in files
        ]
    )
    for epoch in (0, 2):
        ds = build_dataset(
            files, labels(), NUM_CLASSES, augment, inp, training=True, seed=9,
            epoch=epoch,
        )  # fmt: skip
        images, y = flatten(take_all(ds))
        order = epoch_order(
            labels()["style"], 3, seed=9, balanced=balanced, epoch=epoch
        )[: len(images)]
        np.testing.assert_allclose(images, want_images[order], atol=1e-3)
        want_y = np.concatenate(
            [np.eye(c)[labels()[t][order]] * (labels()[t][order] >= 0)[:, None]
             for t, c in NUM_CLASSES.items()], 1,
        )  # fmt: skip
        np.testing.assert_array_equal(y, want_y)


def test_run_datasets_follow_epoch_order_and_resume(files):
    """`make_split_datasets` (what the run trains on): epoch k is
    ``epoch_order(seed=train.seed, epoch=k)``, and a fresh set of pipelines (a
    resumed run) gives epoch k + 1 exactly as the uninterrupted one."""
    from keras_art.config import Config
    from keras_art.data.catalog.prepare import PreparedData
    from keras_art.data.pipeline.class_balance import epoch_order
    from keras_art.data.pipeline.dataset import make_split_datasets

    cfg = Config(task="style")
    cfg.augment, cfg.input = _plain()
    cfg.train.seed = 4
    style = labels()["style"]
    prepared = PreparedData(
        files=list(files),
        labels={"style": style},
        class_names={"style": ["a", "b", "c"]},
        split=np.array(["train"] * N),
        tasks=("style",),
    )

    def epoch_labels(datasets, epoch):
        batches = take_all(datasets["train_for_epoch"](epoch))
        y = np.concatenate([b[1]["style"].argmax(1) for b in batches])
        w = np.concatenate([b[2]["style"] for b in batches])
        return np.where(w > 0, y, -1)

    run = make_split_datasets(cfg, prepared)
    uninterrupted = [epoch_labels(run, e) for e in range(3)]
    for e, got in enumerate(uninterrupted):
        order = epoch_order(style, 3, seed=4, balanced=True, epoch=e)
        np.testing.assert_array_equal(got, style[order][: len(got)])
    resumed = make_split_datasets(cfg, prepared)
    np.testing.assert_array_equal(epoch_labels(resumed, 2), uninterrupted[2])


def test_tfrecords_train_without_balanced_sampling(files, tmp_path):
    """Interleaved TFRecord files have unknown cardinality: without balanced
    sampling the training dataset used to have no length, and the trainer stopped
    with a traceback (it sizes the schedule from it). The record count sizes it."""
    from keras_art.data.pipeline.tfrecord import write_shards

    write_shards(files, labels(), tmp_path, "train", shard_size=5)
    augment, inp = cfgs(tfrecords=str(tmp_path), balanced_sampling=False)
    ds = build_dataset(
        files, labels(), NUM_CLASSES, augment, inp, training=True, seed=0
    )
    assert int(ds.cardinality()) == N // B
    batches = take_all(ds)
    assert len(batches) == N // B and batches[0][0].shape == (B, S, S, 3)


def test_scale_jitter_folded_into_the_crop_matches_jitter_after_the_crop():
    """With RandomResizedCrop on, the crop resizes straight to the jittered side
    (one resample); the same seed gives the same scale and placement as the
    two-step path, so the images agree up to resampling."""
    import tensorflow as tf

    from keras_art.config import AugmentConfig
    from keras_art.data.pipeline import augment as aug
    from keras_art.data.pipeline.dataset import augment_image
    from tests.data.image_fixtures import encode

    yy, xx = np.mgrid[0:120, 0:160]
    smooth = np.stack([yy * 2.0, xx * 1.5, (yy + xx) * 0.8], -1).astype(np.uint8)
    blob = tf.constant(encode(smooth, "bmp"))  # no DCT scaling: same crop pixels
    cfg = AugmentConfig(image_size=48, scale_jitter=[0.7, 1.3], hflip=False)
    cfg.color_jitter = cfg.hue_jitter = cfg.random_erasing = 0.0
    for s in range(5):
        seed = tf.constant([s, 11], tf.int64)
        folded = augment_image(blob, seed, cfg, 48).numpy()
        s_crop, s_jit, *_ = aug.split_seed(seed, 6)
        crop = aug.decode_random_resized_crop(
            blob, s_crop, 48, cfg.crop_scale, cfg.crop_ratio
        )
        two_step = aug.scale_jitter(crop, s_jit, cfg.scale_jitter).numpy()
        assert folded.shape == (48, 48, 3)
        # Same geometry: the black padding lands on the same pixels.
        np.testing.assert_array_equal(folded.sum(-1) == 0, two_step.sum(-1) == 0)
        assert np.abs(folded - two_step).mean() < 4.0


def _seed003_like(**kw):
    """Seed 003's training recipe at test size: RandomResizedCrop (scale 0.8-1) at
    48, rotation 15, horizontal flip, then the central 32 (its 256 -> 224)."""
    augment = AugmentConfig(
        image_size=32, center_crop_from=48, crop_scale=[0.8, 1.0], rotation=15.0
    )
    augment.scale_jitter = [1.0, 1.0]
    augment.color_jitter = augment.hue_jitter = augment.random_erasing = 0.0
    for key, value in kw.items():
        setattr(augment, key, value)
    return augment


def test_center_crop_from_keeps_the_middle_after_crop_and_rotation():
    from keras_art.data.pipeline import augment as aug
    from keras_art.data.pipeline.dataset import augment_image
    from tests.data.image_fixtures import encode

    yy, xx = np.mgrid[0:120, 0:160]
    blob = tf.constant(
        encode(np.stack([yy * 2, xx, yy + xx], -1).astype(np.uint8), "bmp")
    )
    plain = _seed003_like(random_resized_crop=False, rotation=0.0, hflip=False)
    plain.eval_resize = "resize"
    seed = tf.constant([3, 1], tf.int64)
    whole = decode_and_resize_for_eval(blob, 48, "resize").numpy()
    out = augment_image(blob, seed, plain, 32).numpy()
    np.testing.assert_array_equal(out, whole[8:40, 8:40])

    augment = _seed003_like()
    map_fn = tf.function(lambda b, s: augment_image(b, s, augment, 32))
    mapped = tf.data.Dataset.from_tensors((blob, seed)).map(map_fn)
    in_map = next(iter(mapped)).numpy()
    eager = augment_image(blob, seed, augment, 32).numpy()
    # The same steps by hand: crop (+ flip) at 48, rotate at 48, then the centre.
    s_crop, _, _, s_rot, _, _ = aug.split_seed(seed, 6)
    crop = aug.decode_random_resized_crop(
        blob, s_crop, 48, augment.crop_scale, augment.crop_ratio, hflip=True
    )
    by_hand = aug.random_rotate_zoom(crop, s_rot, 15.0).numpy()[8:40, 8:40]
    assert eager.shape == in_map.shape == (32, 32, 3)
    np.testing.assert_allclose(eager, by_hand, atol=1e-3)
    np.testing.assert_allclose(in_map, eager, atol=1e-3)
