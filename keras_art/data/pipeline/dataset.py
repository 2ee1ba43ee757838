"""The training/evaluation input pipeline: files or TFRecords -> model-ready batches.

`build_dataset` is the contract the trainer, evaluator and tuner code against. It
yields ``(images, targets, weights)``:

- ``images``: float32 ``(B, S, S, 3)``, RGB in [0, 255] (the model normalises: its
  first layer is ``input_normalization``); S = ``augment.image_size`` (training with
  ``augment.multi_size``: one size per batch drawn from that list, shape
  ``(B, None, None, 3)``).
- ``targets``: ``{task: (B, C_task)}`` float32, one-hot or MixUp/CutMix soft labels
  (all zeros where the label is missing). No label smoothing: that is the loss's job.
- ``weights``: ``{task: (B,)}`` float32, 0 where the label is -1 (times the class
  weight when ``input.class_weights``).

Training: seeded shuffle (or class-balanced sampling), per-image augmentation,
``drop_remainder=True``, MixUp/CutMix, prefetch; no ``repeat`` (the trainer decides
epochs). With ``input.balanced_sampling`` the sampler is infinite and one epoch is
defined as N draws (N = number of training examples), i.e. ``N // B`` batches.
Evaluation: file order, eval resize, no mixing, the last partial batch kept.

Caching (``input.cache``): evaluation caches decoded, eval-resized images (as uint8,
at most 0.5 grey level from the uncached float values). Training caches what stays
the same across epochs: the decoded eval-resized image when no random per-image op
is enabled, otherwise the encoded file bytes (so augmentation stays random and disk
reads happen once). The cache always sits before shuffling and sampling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from keras_art.config import AugmentConfig, InputConfig
from keras_art.errors import UserError


def make_split_datasets(cfg, prepared) -> dict:
    """The run's pipelines: ``train_for_epoch`` (epoch -> dataset), ``val``, ``test``
    (None when a split is empty) and, with ``train.feature_cache``, ``train_eval``
    (the train split through the evaluation pipeline)."""
    if len(prepared.indices("train")) == 0:
        raise UserError(
            "The train split is empty. Lower data.min_per_class or check data.split."
        )

    def make(split: str, training: bool, seed_offset: int = 0):
        idx = prepared.indices(split)
        if len(idx) == 0:
            return None
        return build_dataset(
            [prepared.files[i] for i in idx],
            {t: prepared.labels[t][idx] for t in prepared.tasks},
            prepared.num_classes,
            cfg.augment,
            cfg.input,
            training=training,
            seed=cfg.train.seed + seed_offset,
            split=split,
        )

    datasets = {
        # A fresh pipeline per epoch, seeded by the epoch: a resumed run sees
        # exactly the batches the uninterrupted run would have seen.
        "train_for_epoch": lambda epoch: make("train", True, seed_offset=epoch),
        "val": make("val", training=False),
        "test": make("test", training=False),
    }
    if cfg.train.feature_cache:
        datasets["train_eval"] = make("train", training=False)
    return datasets


def build_dataset(
    files: Sequence[str],
    labels: Mapping[str, np.ndarray],
    num_classes: Mapping[str, int],
    augment: AugmentConfig,
    input_cfg: InputConfig,
    *,
    training: bool,
    seed: int | None = None,
    primary_task: str | None = None,
    split: str | None = None,
):
    """Batches of ``(images, targets, weights)`` from image files (see module doc).

    Args:
        files: image paths (JPEG, PNG incl. RGBA/grey/16-bit, GIF, BMP).
        labels: task -> int array aligned with ``files``; -1 = missing.
        num_classes: task -> class count; its keys are the tasks produced.
        augment, input_cfg: the run's `AugmentConfig` / `InputConfig`.
        training: training pipeline (augment, shuffle, mix) or evaluation.
        seed: makes shuffling, sampling and augmentation reproducible.
        primary_task: the task balanced sampling balances (default: first task).
        split: with ``input_cfg.tfrecords`` set, the shard split to read
            (default ``train`` / ``val``); ``files``/``labels`` then only supply the
            class counts for balancing and class weights.
    """
    import tensorflow as tf

    tasks, primary = _check_tasks(labels, num_classes, primary_task)
    n = len(files)
    label_arrays = {t: _check_labels(labels[t], n, num_classes[t], t) for t in tasks}
    if input_cfg.tfrecords:
        from keras_art.data.pipeline.tfrecord import read_shards

        records = read_shards(
            input_cfg.tfrecords,
            split or ("train" if training else "val"),
            deterministic=input_cfg.deterministic or not training,
        )
        return build_dataset_from_records(
            records,
            num_classes,
            augment,
            input_cfg,
            training=training,
            seed=seed,
            primary_task=primary,
            labels=label_arrays if n else None,
        )
    if n == 0:
        raise UserError("build_dataset: no image files given. Check the split.")
    elements = {"image": tf.constant([str(f) for f in files])}
    elements.update({t: tf.constant(a, tf.int32) for t, a in label_arrays.items()})
    return _build(
        elements,
        n,
        label_arrays,
        num_classes,
        augment,
        input_cfg,
        training=training,
        seed=seed,
        primary=primary,
        from_files=True,
    )


def build_dataset_from_records(
    records,
    num_classes: Mapping[str, int],
    augment: AugmentConfig,
    input_cfg: InputConfig,
    *,
    training: bool,
    seed: int | None = None,
    primary_task: str | None = None,
    labels: Mapping[str, np.ndarray] | None = None,
):
    """`build_dataset` over a dataset of records ``{"image": encoded bytes,
    <task>: int (-1 missing), ...}`` such as
    `keras_art.data.pipeline.tfrecord.read_shards`.

    ``labels`` (task -> int array over the same records, e.g. from the manifest)
    gives the class counts for balanced sampling, class weights and the epoch size;
    without it the records are counted in one pass, and balanced sampling uses
    ``rejection_resample`` with an estimated initial distribution.
    """
    import tensorflow as tf

    tasks = list(num_classes)
    primary = primary_task or tasks[0]
    if primary not in num_classes:
        raise UserError(
            f"primary_task {primary!r} is not one of the tasks: {', '.join(tasks)}."
        )
    records = records.map(
        lambda r: {"image": r["image"], **{t: tf.cast(r[t], tf.int32) for t in tasks}}
    )
    if labels is not None:
        n = len(next(iter(labels.values())))
    else:
        n = int(records.reduce(np.int64(0), lambda c, _: c + 1).numpy())
    if n == 0:
        raise UserError("build_dataset: the TFRecord split holds no records.")
    return _build(
        records,
        n,
        labels,
        num_classes,
        augment,
        input_cfg,
        training=training,
        seed=seed,
        primary=primary,
        from_files=False,
    )


# ---------------------------------------------------------------------------- core
def _build(
    elements,
    n,
    labels,
    num_classes,
    augment,
    input_cfg,
    *,
    training,
    seed,
    primary,
    from_files,
):
    import tensorflow as tf

    from keras_art.data.pipeline.decode import check_eval_mode

    check_eval_mode(augment.eval_resize)
    _check_input_cfg(input_cfg, augment, n, training)
    tasks = list(num_classes)
    autotune = tf.data.AUTOTUNE
    batch = input_cfg.batch_size
    size = augment.image_size
    deterministic = bool(input_cfg.deterministic) or not training
    det_images = training and not augment_is_random(augment)
    decode_early = (not training) or det_images

    def prepare(el):
        data = tf.io.read_file(el["image"]) if from_files else el["image"]
        if decode_early:
            from keras_art.data.pipeline.decode import decode_and_resize_for_eval

            image = decode_and_resize_for_eval(data, size, augment.eval_resize)
            data = tf.cast(tf.round(image), tf.uint8) if input_cfg.cache else image
        return {**el, "image": data}

    def prepared(ds):
        # Reading/decoding is deterministic per element, so a cache here (before
        # any shuffle or sampling) is correct. Uncached, reading happens after the
        # shuffle so the buffer holds paths, not image bytes.
        if input_cfg.cache:
            return ds.map(prepare, num_parallel_calls=autotune).cache()
        return ds

    if isinstance(elements, Mapping):
        base = tf.data.Dataset.from_tensor_slices(dict(elements))
    else:
        base = elements

    if not training:
        ds = prepared(base)
        if not input_cfg.cache:
            ds = ds.map(prepare, num_parallel_calls=autotune, deterministic=True)
        ds = ds.map(lambda el: {**el, "image": tf.cast(el["image"], tf.float32)})
    else:
        if input_cfg.balanced_sampling:
            ds = _balanced(
                base,
                prepared,
                n,
                labels,
                num_classes,
                primary,
                input_cfg,
                seed,
                from_tensors=isinstance(elements, Mapping),
                elements=elements,
            )
        else:
            ds = prepared(base).shuffle(
                max(1, min(input_cfg.shuffle_buffer, n)),
                seed=seed,
                reshuffle_each_iteration=True,
            )
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds.batch(2)))
        train_size = max(augment.multi_size) if augment.multi_size else size

        def augment_element(el, s):
            if not input_cfg.cache:
                el = prepare(el)
            image = augment_image(
                el["image"],
                s,
                augment,
                train_size,
                decoded=decode_early,
            )
            return {**el, "image": image}

        ds = ds.map(
            augment_element, num_parallel_calls=autotune, deterministic=deterministic
        )

    weights_per_class = _class_weight_table(
        labels, num_classes, input_cfg, training, primary
    )

    def to_targets(el):
        targets, weights = {}, {}
        for t in tasks:
            lab = el[t]
            targets[t] = tf.one_hot(lab, num_classes[t], dtype=tf.float32)
            w = tf.cast(lab >= 0, tf.float32)
            if t in weights_per_class:
                w *= tf.gather(weights_per_class[t], tf.maximum(lab, 0))
            weights[t] = w
        return el["image"], targets, weights

    ds = ds.batch(
        batch,
        drop_remainder=training,
        num_parallel_calls=autotune,
        deterministic=deterministic,
    )
    ds = ds.map(to_targets, num_parallel_calls=autotune, deterministic=deterministic)

    mixing = training and (input_cfg.mixup_p > 0 or input_cfg.cutmix_p > 0)
    multi = training and bool(augment.multi_size)
    if mixing or multi:
        from keras_art.data.pipeline import augment as aug
        from keras_art.data.pipeline.mixing import mix_batch

        bseed = None if seed is None else seed + 1
        bseeds = tf.data.Dataset.random(seed=bseed, rerandomize_each_iteration=True)

        def batch_ops(data, s):
            images, targets, weights = data
            s_mix, s_size = tf.unstack(tf.random.experimental.stateless_split(s, 2))
            if mixing:
                images, targets, weights = mix_batch(
                    images,
                    targets,
                    weights,
                    s_mix,
                    mixup_p=input_cfg.mixup_p,
                    mixup_alpha=input_cfg.mixup_alpha,
                    cutmix_p=input_cfg.cutmix_p,
                    cutmix_alpha=input_cfg.cutmix_alpha,
                )
            if multi:
                images = aug.resize_batch_to_random_size(
                    images, s_size, augment.multi_size
                )
            return images, targets, weights

        ds = tf.data.Dataset.zip((ds, bseeds.batch(2))).map(
            batch_ops, num_parallel_calls=autotune, deterministic=deterministic
        )

    options = tf.data.Options()
    options.deterministic = deterministic
    return ds.with_options(options).prefetch(autotune)


def augment_is_random(augment: AugmentConfig) -> bool:
    """Whether any per-image random op is on (then decoded images can't be cached)."""
    return bool(
        augment.random_resized_crop
        or list(augment.scale_jitter) != [1.0, 1.0]
        or augment.hflip
        or augment.vflip
        or augment.rotation > 0
        or list(augment.zoom) != [1.0, 1.0]
        or augment.color_jitter > 0
        or augment.hue_jitter > 0
        or augment.random_erasing > 0
    )


def augment_image(data, seed, augment: AugmentConfig, size: int, decoded=False):
    """One training image: encoded bytes (or an already decoded, eval-resized
    image when ``decoded``) -> float32 (size, size, 3) RGB in [0, 255], every op
    of ``augment`` applied with sub-seeds of ``seed``.

    Order: crop (+ flips) -> scale jitter -> rotation/zoom -> random erasing ->
    colour jitter. Erasing comes before the colour jitter (torchvision erases
    after it, on normalised tensors); the erased box is noise either way."""
    import tensorflow as tf

    from keras_art.data.pipeline import augment as aug
    from keras_art.data.pipeline.decode import decode_and_resize_for_eval

    s_crop, s_jit, s_flip, s_rot, s_col, s_erase = tf.unstack(
        tf.random.experimental.stateless_split(seed, 6)
    )
    flipped = False
    if decoded:
        image = tf.cast(data, tf.float32)
        if image.shape[0] != size:
            image = tf.image.resize(image, [size, size])
    elif augment.random_resized_crop:
        # The fused crop also flips (decided from its seed): no separate pass.
        image = aug.decode_random_resized_crop(
            data,
            s_crop,
            size,
            augment.crop_scale,
            augment.crop_ratio,
            hflip=augment.hflip,
            vflip=augment.vflip,
        )
        flipped = True
    else:
        image = decode_and_resize_for_eval(data, size, augment.eval_resize)
    if list(augment.scale_jitter) != [1.0, 1.0]:
        image = aug.scale_jitter(image, s_jit, augment.scale_jitter)
    if (augment.hflip or augment.vflip) and not flipped:
        image = aug.random_flip(image, s_flip, augment.hflip, augment.vflip)
    if augment.rotation > 0 or list(augment.zoom) != [1.0, 1.0]:
        image = aug.random_rotate_zoom(image, s_rot, augment.rotation, augment.zoom)
    if augment.random_erasing > 0:
        image = aug.random_erasing(image, s_erase, augment.random_erasing)
    if augment.color_jitter > 0 or augment.hue_jitter > 0:
        image = aug.color_jitter(image, s_col, augment.color_jitter, augment.hue_jitter)
    return tf.ensure_shape(image, [size, size, 3])


def _balanced(
    base,
    prepared,
    n,
    labels,
    num_classes,
    primary,
    input_cfg,
    seed,
    *,
    from_tensors,
    elements,
):
    """N draws per epoch, uniform over the primary task's classes (see sampling)."""
    import tensorflow as tf

    from keras_art.data.pipeline.class_balance import group_indices

    c = num_classes[primary]
    if from_tensors:
        groups, probs = group_indices(labels[primary], c)
        streams = []
        for k, idx in enumerate(groups):
            sub = {key: tf.gather(v, idx) for key, v in elements.items()}
            ds = prepared(tf.data.Dataset.from_tensor_slices(sub))
            gseed = None if seed is None else seed + 7919 * (k + 1)
            buf = max(1, min(input_cfg.shuffle_buffer, len(idx)))
            streams.append(ds.shuffle(buf, seed=gseed).repeat())
        ds = tf.data.Dataset.sample_from_datasets(
            streams,
            weights=probs.astype(np.float32).tolist(),
            seed=seed,
            rerandomize_each_iteration=True,
        )
        return ds.take(n)
    # Records: one stream, so reject/accept towards the balanced distribution.
    bins = c + 1  # the last bin holds records without a primary label
    if labels is not None:
        lab = np.asarray(labels[primary])
        counts = np.bincount(np.where(lab < 0, c, lab), minlength=bins).astype(float)
        initial = counts / counts.sum()
        present = counts[:c] > 0
        target = np.where(present, (1 - initial[c]) / max(present.sum(), 1), 0.0)
        target = np.append(target, initial[c])
    else:
        initial = None
        target = np.full(bins, 1.0 / bins)
    ds = (
        prepared(base)
        .shuffle(max(1, min(input_cfg.shuffle_buffer, n)), seed=seed)
        .repeat()
    )
    ds = ds.rejection_resample(
        lambda el: tf.where(el[primary] < 0, c, el[primary]),
        target_dist=target.astype(np.float32),
        initial_dist=None if initial is None else initial.astype(np.float32),
        seed=seed,
    ).map(lambda _, el: el)
    return ds.take(n)


def _class_weight_table(labels, num_classes, input_cfg, training, primary):
    """Per-task inverse-frequency tables; the balanced primary task is skipped (the
    sampler already equalises it, weighting too would correct twice)."""
    import tensorflow as tf

    from keras_art.data.pipeline.class_balance import class_weights

    if not (training and input_cfg.class_weights):
        return {}
    if labels is None:
        raise UserError(
            "input.class_weights with TFRecord input needs the split's labels; pass "
            "labels= (e.g. from the manifest) or set input.class_weights=false."
        )
    out = {}
    for task, c in num_classes.items():
        if task == primary and input_cfg.balanced_sampling:
            continue
        out[task] = tf.constant(class_weights(labels[task], c))
    return out


# ---------------------------------------------------------------------- validation
def _check_tasks(labels, num_classes, primary_task):
    tasks = list(num_classes)
    if not tasks:
        raise UserError("build_dataset: num_classes is empty; name at least one task.")
    missing = [t for t in tasks if t not in labels]
    if missing:
        raise UserError(
            f"build_dataset: no labels for task(s) {', '.join(missing)}. Pass "
            f"labels[task] for every task in num_classes."
        )
    primary = primary_task or tasks[0]
    if primary not in num_classes:
        raise UserError(
            f"primary_task {primary!r} is not one of the tasks: {', '.join(tasks)}."
        )
    return tasks, primary


def _check_labels(values, n, c, task):
    arr = np.asarray(values).astype(np.int64).reshape(-1)
    if len(arr) != n:
        raise UserError(
            f"labels[{task!r}] has {len(arr)} entries for {n} files; they must align."
        )
    bad = arr[(arr < -1) | (arr >= c)]
    if len(bad):
        raise UserError(
            f"labels[{task!r}] holds {int(bad[0])}, outside -1..{c - 1} "
            f"(num_classes[{task!r}]={c})."
        )
    return arr


def _check_input_cfg(input_cfg: InputConfig, augment: AugmentConfig, n, training):
    if input_cfg.batch_size < 1:
        raise UserError("input.batch_size must be at least 1.")
    for name in ("mixup_p", "cutmix_p"):
        p = getattr(input_cfg, name)
        if not 0.0 <= p <= 1.0:
            raise UserError(f"input.{name} must be in [0, 1]. Received: {p}")
    if input_cfg.mixup_p + input_cfg.cutmix_p > 1.0 + 1e-6:
        raise UserError(
            "input.mixup_p + input.cutmix_p must be at most 1 (one mix per batch)."
        )
    if training and n < input_cfg.batch_size:
        raise UserError(
            f"{n} training images but input.batch_size={input_cfg.batch_size}: no "
            f"full batch. Lower --batch-size."
        )
    lo, hi = augment.crop_scale
    if not 0 < lo <= hi <= 1:
        raise UserError(
            f"augment.crop_scale must satisfy 0 < min <= max <= 1. Received: "
            f"{augment.crop_scale}"
        )
    if not 0 < augment.crop_ratio[0] <= augment.crop_ratio[1]:
        raise UserError(f"augment.crop_ratio invalid: {augment.crop_ratio}")
    if any(s < 8 for s in augment.multi_size):
        raise UserError(
            f"augment.multi_size entries must be >= 8: {augment.multi_size}"
        )
    if not 0.0 <= augment.random_erasing <= 1.0:
        raise UserError("augment.random_erasing is a probability in [0, 1].")


def steps_per_epoch(n: int, batch_size: int, training: bool) -> int:
    """Batches one pass of `build_dataset` yields for ``n`` examples."""
    return n // batch_size if training else math.ceil(n / batch_size)
