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

Training: one epoch per pipeline (``epoch``), N examples (N = number of training
examples, i.e. ``N // B`` batches) in the order
`keras_art.data.pipeline.class_balance.epoch_order` gives for ``(seed, epoch)``: a
full seeded permutation, or with ``input.balanced_sampling`` class-balanced draws
that walk through a permutation of every whole class. The pipeline is a dataset of
those paths and labels; files are read and decoded only after that (no shuffle
buffer of images). Then per-image augmentation, ``drop_remainder=True``,
MixUp/CutMix, prefetch; no ``repeat`` (the trainer decides epochs).
TFRecord input is one sequential stream: shard order shuffled per epoch, then a
``input.shuffle_buffer`` shuffle (when balanced, after repeat-factor sampling:
`repeat_factors`); the manifest's record count gives the epoch size.
Evaluation: file order, eval resize, no mixing, the last partial batch kept.
With ``input.data_service`` the training images are read and augmented on a tf.data
service cluster, the rest stays here (`keras_art.data.pipeline.service`).

Caching (``input.cache``): evaluation caches decoded, eval-resized images (as uint8,
at most 0.5 grey level from the uncached float values), before any shuffling.
Training from files reads after the order is fixed and does not cache: each epoch
is a fresh pipeline whose cache would be dropped with it. Training from TFRecords
caches the decoded image when no random per-image op is enabled, otherwise the
encoded bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from keras_art.config import AugmentConfig, InputConfig, augment_with
from keras_art.data.pipeline import augment as aug
from keras_art.data.pipeline import service
from keras_art.data.pipeline.batch_augment import make_batch_augment
from keras_art.data.pipeline.class_balance import class_weights, epoch_order
from keras_art.data.pipeline.decode import check_eval_mode, decode_and_resize_for_eval
from keras_art.data.pipeline.mixing import mix_batch_as_configured
from keras_art.errors import ParameterError, UserError


class TrainEpochs:
    """The training pipeline of each epoch (``epoch -> dataset``) for one
    augmentation, and its variants for training stages' augmentation overrides.

    Args:
        build: ``(augment, epoch) -> dataset``, a function of its arguments only (a
            resumed run sees the batches the uninterrupted one saw).
        augment, input_cfg: the augmentation this instance trains with, and the
            input settings (for ``augment.on_device``'s batch ops).
        batches_per_epoch: the batches an epoch plans, for a trainer that cannot
            count them (a tf.data service pipeline's length is unknown).
    """

    def __init__(
        self,
        build: Callable[[AugmentConfig, int], tf.data.Dataset],
        augment: AugmentConfig,
        input_cfg: InputConfig,
        batches_per_epoch: int | None = None,
    ):
        self._build = build
        self.augment = augment
        self.input_cfg = input_cfg
        self.batches_per_epoch = batches_per_epoch
        # The batch ops the train step runs with this augmentation (on_device).
        self.batch_augment = make_batch_augment(augment, input_cfg)
        self._variants: dict[str, TrainEpochs] = {}

    def __call__(self, epoch: int) -> tf.data.Dataset:
        return self._build(self.augment, epoch)

    def with_augment(self, overrides: Mapping[str, Any]) -> TrainEpochs:
        """The same pipeline with ``overrides`` (augment key -> value) applied;
        one instance per distinct overrides."""
        if not overrides:
            return self
        key = json.dumps(dict(overrides), sort_keys=True)
        if key not in self._variants:
            augment = augment_with(self.augment, overrides, "stage augment")
            _check_augment(augment)
            self._variants[key] = TrainEpochs(
                self._build, augment, self.input_cfg, self.batches_per_epoch
            )
        return self._variants[key]


def make_split_datasets(cfg, prepared) -> dict:
    """The run's pipelines: ``train_for_epoch`` (a `TrainEpochs`: epoch -> dataset,
    and each training stage's augmentation), ``val``, ``test`` (None when a split
    is empty) and, with ``train.feature_cache``, ``train_eval`` (the train split
    through the evaluation pipeline)."""
    if len(prepared.indices("train")) == 0:
        raise UserError(
            "The train split is empty. Lower data.min_per_class or check data.split."
        )
    if cfg.input.tfrecords:
        from keras_art.data.pipeline.tfrecord import check_shards_match

        check_shards_match(prepared, cfg.input.tfrecords)

    def make(split: str, training: bool, epoch: int = 0, augment=cfg.augment):
        idx = prepared.indices(split)
        if len(idx) == 0:
            return None
        return build_dataset(
            [prepared.files[i] for i in idx],
            {t: prepared.labels[t][idx] for t in prepared.tasks},
            prepared.num_classes,
            augment,
            cfg.input,
            training=training,
            seed=cfg.train.seed,
            epoch=epoch,
            split=split,
        )

    datasets = {
        # A fresh pipeline per epoch, a function of (seed, epoch) only: a resumed
        # run sees exactly the batches the uninterrupted run would have seen.
        "train_for_epoch": TrainEpochs(
            lambda augment, epoch: make("train", True, epoch, augment),
            cfg.augment,
            cfg.input,
            steps_per_epoch(len(prepared.indices("train")), cfg.input.batch_size, True),
        ),
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
    epoch: int = 0,
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
        epoch: the training epoch this pipeline yields (0-based): the order is
            ``epoch_order(..., seed=seed, epoch=epoch)``, augmentation is seeded
            by ``seed + epoch``.
        primary_task: the task balanced sampling balances (default: first task).
        split: with ``input_cfg.tfrecords`` set, the shard split to read
            (default ``train`` / ``val``); ``files``/``labels`` then only supply the
            class counts for balancing and class weights.
    """

    tasks, primary = _check_tasks(labels, num_classes, primary_task)
    n = len(files)
    label_arrays = {t: _check_labels(labels[t], n, num_classes[t], t) for t in tasks}
    if input_cfg.tfrecords:
        return _build_from_shards(
            split or ("train" if training else "val"),
            label_arrays if n else None,
            num_classes, augment, input_cfg,
            training=training, seed=seed, epoch=epoch, primary_task=primary,
        )  # fmt: skip
    if n == 0:
        raise UserError("build_dataset: no image files given. Check the split.")
    elements = {"image": tf.constant([str(f) for f in files])}
    elements.update({t: tf.constant(a, tf.int32) for t, a in label_arrays.items()})
    spec = _BuildSpec(
        num_classes,
        augment,
        input_cfg,
        training,
        _epoch_seed(seed, epoch),
        primary,
        True,
        order_seed=seed,
        epoch=epoch,
    )
    return _build(elements, n, label_arrays, spec)


def _build_from_shards(
    split: str,
    labels: dict[str, np.ndarray] | None,
    num_classes: Mapping[str, int],
    augment: AugmentConfig,
    input_cfg: InputConfig,
    *,
    training: bool,
    seed: int | None,
    epoch: int,
    primary_task: str,
):
    """`build_dataset` of ``split`` read from the shards in ``input_cfg.tfrecords``
    (``labels``: the split's, for balancing and class weights)."""
    from keras_art.data.pipeline.tfrecord import read_shards

    records = read_shards(
        input_cfg.tfrecords,
        split,
        deterministic=input_cfg.deterministic or not training,
        shuffle_seed=_epoch_seed(seed, epoch) if training else None,
        shuffle_files=training,
    )
    return build_dataset_from_records(
        records,
        num_classes,
        augment,
        input_cfg,
        training=training,
        seed=_epoch_seed(seed, epoch),
        primary_task=primary_task,
        labels=labels,
    )


def _epoch_seed(seed: int | None, epoch: int) -> int | None:
    return None if seed is None else seed + epoch


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
    without it the records' labels are read in one pass first.
    """

    tasks = list(num_classes)
    primary = _primary_task(tasks, primary_task)
    records = records.map(
        lambda r: {"image": r["image"], **{t: tf.cast(r[t], tf.int32) for t in tasks}}
    )
    if labels is None:
        labels = _count_record_labels(records, tasks)
    n = len(next(iter(labels.values())))
    if n == 0:
        raise UserError("build_dataset: the TFRecord split holds no records.")
    # Interleaved TFRecord files have unknown cardinality; the epoch size must be
    # known (the trainer sizes the LR schedule from it). Checked while iterating.
    records = records.apply(tf.data.experimental.assert_cardinality(n))
    spec = _BuildSpec(num_classes, augment, input_cfg, training, seed, primary, False)
    return _build(records, n, labels, spec)


# ---------------------------------------------------------------------------- core
@dataclass(frozen=True)
class _BuildSpec:
    """What one `build_dataset` call fixes for every stage of its pipeline."""

    num_classes: Mapping[str, int]
    augment: AugmentConfig
    input_cfg: InputConfig
    training: bool
    seed: int | None  # augmentation, mixing and record shuffling: seed + epoch
    primary: str
    from_files: bool  # elements hold paths (else encoded bytes from records)
    order_seed: int | None = None  # `epoch_order`'s seed (files only)
    epoch: int = 0

    @property
    def deterministic(self) -> bool:
        return bool(self.input_cfg.deterministic) or not self.training

    @property
    def cached(self) -> bool:
        # Training from files reads after `epoch_order` picks the examples, and
        # each epoch builds a fresh pipeline, whose cache would die with it.
        return bool(self.input_cfg.cache) and not (self.training and self.from_files)

    @property
    def decode_early(self) -> bool:
        # Without a random per-image op the decoded, eval-resized image is the
        # same every epoch, so it is what gets read (and cached).
        return not self.training or not augment_is_random(self.augment)

    @property
    def on_service(self) -> bool:
        # Training images from files go to the tf.data service (service.py).
        return self.training and self.from_files and bool(self.input_cfg.data_service)

    @property
    def mixing(self) -> bool:
        cfg = self.input_cfg
        mixes = cfg.mixup_p > 0 or cfg.cutmix_p > 0
        # augment.on_device: the train step mixes (batch_augment).
        return self.training and mixes and not self.augment.on_device

    @property
    def multi_size(self) -> bool:
        return self.training and bool(self.augment.multi_size)


def _build(elements, n, labels, spec: _BuildSpec):
    """``elements``: a dict of tensors (from files) or a dataset of records."""

    check_eval_mode(spec.augment.eval_resize)
    _check_input_cfg(spec.input_cfg, spec.augment, n, spec.training)
    if isinstance(elements, Mapping):
        base = tf.data.Dataset.from_tensor_slices(dict(elements))
    else:
        base = elements
    if spec.on_service:
        ds = _prepared_on_service(elements, labels, spec)
    elif spec.training:
        ds = _augmented(_training_source(elements, base, n, labels, spec), spec)
    else:
        ds = _evaluation_images(base, spec)
    ds = _batch_level_ops(_batched_targets(ds, labels, spec), spec)
    options = tf.data.Options()
    options.deterministic = spec.deterministic
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _read_element(el, spec: _BuildSpec):
    """The element with its image read: encoded bytes, or the decoded eval-resized
    image when ``spec.decode_early`` (uint8 when cached: a quarter of the memory)."""

    data = tf.io.read_file(el["image"]) if spec.from_files else el["image"]
    if spec.decode_early:
        augment = spec.augment
        image = decode_and_resize_for_eval(
            data, augment.image_size, augment.eval_resize
        )
        data = tf.cast(tf.round(image), tf.uint8) if spec.cached else image
    return {**el, "image": data}


def _cached(ds, spec: _BuildSpec):
    # Reading/decoding is deterministic per element, so a cache here (before any
    # shuffle or sampling) is correct. Uncached, reading happens after the shuffle
    # so the buffer holds paths, not image bytes.

    if spec.cached:
        return ds.map(
            lambda el: _read_element(el, spec), num_parallel_calls=tf.data.AUTOTUNE
        ).cache()
    return ds


def _evaluation_images(base, spec: _BuildSpec):
    ds = _cached(base, spec)
    if not spec.cached:
        ds = ds.map(
            lambda el: _read_element(el, spec),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.map(lambda el: {**el, "image": tf.cast(el["image"], tf.float32)})


def _training_source(elements, base, n, labels, spec: _BuildSpec):
    """N examples per epoch: `epoch_order` for files; for records, a shuffle
    buffer, after repeat-factor sampling when balanced."""
    if isinstance(elements, Mapping):
        return _ordered_from_tensors(elements, labels, spec)
    if not spec.input_cfg.balanced_sampling:
        return _cached(base, spec).shuffle(
            _buffer_size(spec, n), seed=spec.seed, reshuffle_each_iteration=True
        )
    return _balanced_from_records(base, n, labels, spec)


def _ordered_from_tensors(elements, labels, spec: _BuildSpec, positions=False):
    """The epoch's examples (paths and labels, nothing read yet) in the order
    `epoch_order` gives: the function the data report and the tests describe.
    ``positions``: each example also carries its index in that order."""

    order = epoch_order(
        labels[spec.primary],
        spec.num_classes[spec.primary],
        seed=spec.order_seed,
        balanced=spec.input_cfg.balanced_sampling,
        epoch=spec.epoch,
    )
    ordered = {key: tf.gather(v, order) for key, v in elements.items()}
    if positions:
        ordered["position"] = tf.range(len(order), dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices(ordered)


def _prepared_on_service(elements, labels, spec: _BuildSpec):
    """The epoch's examples read and augmented on the tf.data service's workers,
    each seeded by (seed + epoch, its position): `keras_art.data.pipeline.service`."""

    base = spec.seed if spec.seed is not None else int(np.random.randint(2**31))
    ds = _ordered_from_tensors(elements, labels, spec, positions=True).map(
        lambda el: service.to_service_element(
            _augment_element(el, service.element_seed(base, el["position"]), spec)
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return service.distribute(
        ds, spec.input_cfg.data_service, spec.input_cfg.batch_size
    )


def _buffer_size(spec: _BuildSpec, n: int) -> int:
    return max(1, min(spec.input_cfg.shuffle_buffer, n))


def _augmented(ds, spec: _BuildSpec):
    """Each element's image augmented with its own seed from a seeded stream."""

    seeds = tf.data.Dataset.random(seed=spec.seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, seeds.batch(2)))
    return ds.map(
        lambda el, seed: _augment_element(el, seed, spec),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=spec.deterministic,
    )


def _augment_element(el, seed, spec: _BuildSpec):
    augment = spec.augment
    if not spec.cached:
        el = _read_element(el, spec)
    # Multi-size training resizes whole batches later: augment at the largest size.
    size = max(augment.multi_size) if augment.multi_size else augment.image_size
    image = augment_image(el["image"], seed, augment, size, decoded=spec.decode_early)
    return {**el, "image": image}


def _batched_targets(ds, labels, spec: _BuildSpec):
    """Batches of ``(images, one-hot targets, weights)``."""

    weight_tables = _class_weight_table(labels, spec)
    ds = ds.batch(
        spec.input_cfg.batch_size,
        drop_remainder=spec.training,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=spec.deterministic,
    )
    return ds.map(
        lambda el: _targets(el, spec.num_classes, weight_tables),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=spec.deterministic,
    )


def _targets(el, num_classes, weight_tables):
    targets, weights = {}, {}
    for task, c in num_classes.items():
        lab = el[task]
        targets[task] = tf.one_hot(lab, c, dtype=tf.float32)
        w = tf.cast(lab >= 0, tf.float32)
        if task in weight_tables:
            w *= tf.gather(weight_tables[task], tf.maximum(lab, 0))
        weights[task] = w
    return el["image"], targets, weights


def _batch_level_ops(ds, spec: _BuildSpec):
    """MixUp/CutMix and the multi-size resize, each batch with its own seed."""

    if not (spec.mixing or spec.multi_size):
        return ds
    bseed = None if spec.seed is None else spec.seed + 1
    bseeds = tf.data.Dataset.random(seed=bseed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((ds, bseeds.batch(2))).map(
        lambda batch, seed: _mix_and_resize(batch, seed, spec),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=spec.deterministic,
    )


def _mix_and_resize(batch, seed, spec: _BuildSpec):
    images, targets, weights = batch
    s_mix, s_size = aug.split_seed(seed, 2)
    if spec.mixing:
        images, targets, weights = mix_batch_as_configured(
            images, targets, weights, s_mix, spec.input_cfg
        )
    if spec.multi_size:
        images = aug.resize_batch_to_random_size(
            images, s_size, spec.augment.multi_size
        )
    return images, targets, weights


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

    Order: crop (+ flips) -> scale jitter -> rotation/zoom -> [the central
    ``size`` square, when ``augment.center_crop_from`` set the side of the steps
    before] -> random erasing -> colour jitter. Erasing comes before the colour
    jitter (torchvision erases after it, on normalised tensors); the erased box is
    noise either way."""

    s_crop, s_jit, s_flip, s_rot, s_col, s_erase = aug.split_seed(seed, 6)
    jitter = list(augment.scale_jitter) != [1.0, 1.0]
    # With RandomResizedCrop the scale jitter is folded into the crop (one
    # resample; the same draws as `aug.scale_jitter` from the same seed).
    fold = jitter and augment.random_resized_crop and not decoded
    side = max(augment.center_crop_from or size, size)
    image, flipped = _training_crop(
        data, s_crop, augment, side, decoded, jitter_seed=s_jit if fold else None
    )
    if jitter and not fold:
        image = aug.scale_jitter(image, s_jit, augment.scale_jitter)
    if (augment.hflip or augment.vflip) and not flipped:
        image = aug.random_flip(image, s_flip, augment.hflip, augment.vflip)
    if augment.rotation > 0 or list(augment.zoom) != [1.0, 1.0]:
        image = aug.random_rotate_zoom(image, s_rot, augment.rotation, augment.zoom)
    if side != size:
        # torchvision's CenterCrop: offset round((side - size) / 2).
        start = int(round((side - size) / 2))
        image = image[start : start + size, start : start + size]
    if augment.on_device:
        # Erasing and colour run on the batch in the train step (batch_augment).
        return tf.ensure_shape(image, [size, size, 3])
    if augment.random_erasing > 0:
        image = aug.random_erasing(image, s_erase, augment.random_erasing)
    if augment.color_jitter > 0 or augment.hue_jitter > 0:
        image = aug.color_jitter(image, s_col, augment.color_jitter, augment.hue_jitter)
    return tf.ensure_shape(image, [size, size, 3])


def _training_crop(
    data, seed, augment: AugmentConfig, size: int, decoded: bool, jitter_seed=None
):
    """The image at ``size`` before the other ops, and whether it is flipped
    (``jitter_seed``: scale jitter folded into the RandomResizedCrop)."""

    if decoded:
        image = tf.cast(data, tf.float32)
        if image.shape[0] != size:
            image = tf.image.resize(image, [size, size])
        return image, False
    if augment.random_resized_crop:
        # The fused crop also flips (decided from its seed): no separate pass.
        image = aug.decode_random_resized_crop(
            data,
            seed,
            size,
            augment.crop_scale,
            augment.crop_ratio,
            hflip=augment.hflip,
            vflip=augment.vflip,
            jitter_seed=jitter_seed,
            jitter_range=augment.scale_jitter,
        )
        return image, True
    return decode_and_resize_for_eval(data, size, augment.eval_resize), False


def _balanced_from_records(base, n, labels, spec: _BuildSpec):
    """Records come as one stream, so balance it by repeat factors: each record is
    emitted k times, k = floor(f + u) with u ~ U[0, 1) (its class's factor f, see
    `repeat_factors`), so every class gets an equal share in expectation (rare
    classes' records repeat, common ones' are sometimes skipped). Written by hand:
    ``rejection_resample`` only rejects, so it reads 1 / (mean acceptance) records
    per one it keeps (2.5 on 40:25:15:12:8 classes) and cost 0.9 ms of CPU per
    image here; this reads about one."""

    primary = spec.primary
    c = spec.num_classes[primary]
    factors = tf.constant(repeat_factors(labels[primary], c), tf.float32)
    seeds = tf.data.Dataset.random(seed=spec.seed, rerandomize_each_iteration=True)

    def copies(el, draw):
        f = tf.gather(factors, tf.where(el[primary] < 0, c, el[primary]))
        u = tf.cast(draw % (1 << 24), tf.float32) / float(1 << 24)
        k = tf.cast(tf.floor(f + u), tf.int64)
        return tf.data.Dataset.from_tensors(el).repeat(k)

    buffer = _buffer_size(spec, n)
    # Shuffled before (so the epoch's cut at n records is a random one, whatever
    # the stream's order) and after (to spread a record's copies; a smaller
    # buffer: it holds mostly other records' bytes).
    records = _cached(base, spec).shuffle(buffer, seed=spec.seed).repeat()
    ds = tf.data.Dataset.zip((records, seeds)).flat_map(copies)
    ds = ds.shuffle(min(buffer, _COPY_SPREAD), seed=spec.seed).take(n)
    # flat_map hides the length; the stream is endless, so take(n) gives n.
    return ds.apply(tf.data.experimental.assert_cardinality(n))


_COPY_SPREAD = 512  # shuffle buffer after repeat-factor sampling (records)


def repeat_factors(primary_labels, c: int) -> np.ndarray:
    """Expected copies per record of each primary class (index ``c``: records
    without a primary label) for balanced sampling: the unlabelled keep their
    share (factor 1), every class present gets an equal share of the rest, so the
    expected number of records emitted per pass is the number of records."""
    lab = np.asarray(primary_labels)
    counts = np.bincount(np.where(lab < 0, c, lab), minlength=c + 1).astype(float)
    labelled = counts[:c].sum()
    present = np.count_nonzero(counts[:c])
    factors = np.ones(c + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = labelled / max(present, 1)
        factors[:c] = np.where(counts[:c] > 0, share / counts[:c], 0.0)
    return factors


def _count_record_labels(records, tasks) -> dict[str, np.ndarray]:
    """Every record's labels, in one pass over the stream (no image decoded)."""

    values = {t: [] for t in tasks}
    labels = records.map(
        lambda r: {t: r[t] for t in tasks}, num_parallel_calls=tf.data.AUTOTUNE
    )
    for batch in labels.batch(4096).as_numpy_iterator():
        for t in tasks:
            values[t].append(batch[t])
    return {
        t: np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64)
        for t, v in values.items()
    }


def _class_weight_table(labels, spec: _BuildSpec):
    """Per-task inverse-frequency tables; the balanced primary task is skipped (the
    sampler already equalises it, weighting too would correct twice)."""

    input_cfg = spec.input_cfg
    if not (spec.training and input_cfg.class_weights):
        return {}
    if labels is None:
        raise UserError(
            "input.class_weights with TFRecord input needs the split's labels; pass "
            "labels= (e.g. from the manifest) or set input.class_weights=false."
        )
    out = {}
    for task, c in spec.num_classes.items():
        if task == spec.primary and input_cfg.balanced_sampling:
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
    return tasks, _primary_task(tasks, primary_task)


def _primary_task(tasks: list[str], primary_task: str | None) -> str:
    primary = primary_task or tasks[0]
    if primary not in tasks:
        raise UserError(
            f"primary_task {primary!r} is not one of the tasks: {', '.join(tasks)}."
        )
    return primary


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
        raise ParameterError(
            f"{n} training images but input.batch_size={input_cfg.batch_size}: no "
            f"full batch. Lower {{input.batch_size}}."
        )
    _check_augment(augment)


def _check_augment(augment: AugmentConfig) -> None:
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
