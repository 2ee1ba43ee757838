"""One configuration tree for every run: data, augment, input, model, train, tune.

A run's config is built as ``preset -> --config FILE -> --set key=value`` and the
resolved tree is written to ``<run>/config.json``: ``--config <run>/config.json``
repeats a run.

Presets (``PRESETS``) are plain functions; each docstring holds the command that
uses it::

    python -m keras_art.train --task artist                       # preset "demo"
    python -m keras_art.train --task style --preset seed000 --data /data/wikiart-release
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_art.errors import ParameterError, UserError
from keras_art.registry import (
    BACKBONES,
    DATASET_FORMATS,
    EVAL_RESIZE_MODES,
    HEADS,
    MIXED_PRECISION,
    MONITOR_METRIC,
    SCHEDULES,
    STAGES,
    STRATEGIES,
    TASK_CHOICES,
    TASKS,
    TUNE_STAGES,
    TUNERS,
)
from keras_art.stage_plan import (
    StageConfig,
    check_stages,
    learning_backbone_stages,
    resolve_stages,
)
from keras_art.user_input import parse_host_port, read_json_or_yaml


def default_cache_dir() -> str:
    """Where generated data and extracted shards live (``$KERAS_ART_CACHE`` wins)."""
    return os.environ.get("KERAS_ART_CACHE") or str(
        Path.home() / ".cache" / "keras_art"
    )


# Beyond 16 bits the near-duplicate search slows (keras_art.data.catalog.hamming)
# and different paintings start to merge.
MAX_NEAR_DUPLICATE_DISTANCE = 16


@dataclass
class DataConfig:
    """Where images come from and which of them a run uses."""

    format: str = "sample"
    path: str | None = None  # dataset root; None with format "sample" = embedded sample
    images_dir: str | None = None  # wikiart: overrides <path>/wikiart
    labels_dir: str | None = None  # wikiart: overrides <path>/wikiart_csv
    names_file: str | None = None  # parquet: label names when the shards lack them
    cache_dir: str = field(default_factory=default_cache_dir)
    # Embedded sample size (images written once to the cache, reused after).
    sample_images: int = 720
    sample_seed: int = 0
    # Subsets (seeds 001-003): top-N classes, a named list, per-class bounds.
    top_n: int | None = None
    classes: list[str] = field(default_factory=list)
    min_per_class: int = 0
    max_per_class: int | None = None
    drop_unknown: bool = True  # parquet "Unknown Artist"/"Unknown Genre"
    # Splits: fractions of train/val/test; a source's own train/val split is kept
    # when use_official_split (test is then carved out of train).
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    # Or images per split (train, val[, test]), drawn at random (data.split_seed)
    # from the rows left after the subset, e.g. seed 003's [5000, 1667, 1667]; the
    # rest is left out. [] = split by the fractions.
    split_sizes: list[int] = field(default_factory=list)
    use_official_split: bool = True
    split_seed: int = 42
    small_classes: str = "drop"  # "drop" or "error" for classes too small to split
    validate: bool = True  # scan images before training; bad files are excluded
    # Near-duplicates (one painting at several sizes, crops, frames) share a split:
    # the largest pHash Hamming distance that links two images, at most 16; None =
    # only byte-identical files. Why 10: keras_art/data/catalog/perceptual_hash.py.
    near_duplicate_distance: int | None = 10


@dataclass
class AugmentConfig:
    """Per-image augmentation (training) and the evaluation resize."""

    image_size: int = 384
    random_resized_crop: bool = True
    crop_scale: list[float] = field(default_factory=lambda: [0.35, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [0.75, 1.3333])
    # Seed 000's "Scale Jitter" after the crop: rescale by U(0.8, 1.2), then crop or
    # pad back to image_size. [1.0, 1.0] = off.
    scale_jitter: list[float] = field(default_factory=lambda: [0.8, 1.2])
    hflip: bool = True
    vflip: bool = False
    rotation: float = 0.0  # degrees, +-; seed 002 uses 30
    zoom: list[float] = field(default_factory=lambda: [1.0, 1.0])  # seed 002: 0.5-1.5
    color_jitter: float = 0.2  # brightness/contrast/saturation strength; 0 = off
    hue_jitter: float = 0.02
    random_erasing: float = 0.25  # probability per image; 0 = off
    eval_resize: str = "center_crop"
    multi_size: list[int] = field(default_factory=list)  # seed 002: [224, 260, 296]
    # Training: crop (+ flips), scale jitter and rotation at this side, then the
    # central image_size square (seed 003: 256 -> 224). None: all at image_size.
    center_crop_from: int | None = None
    # Colour jitter, random erasing and MixUp/CutMix run on each batch in the train
    # step (on the GPU) instead of in tf.data: for GPU hosts short of CPU cores.
    on_device: bool = False


@dataclass
class InputConfig:
    """Batching, mixing, balancing and tf.data behaviour."""

    batch_size: int = 32
    # Training from files draws a full seeded permutation per epoch; the buffer is
    # only for TFRecord streams, which cannot be read in random order.
    shuffle_buffer: int = 2048
    cache: bool = False  # evaluation (and TFRecord training): decoded images in RAM
    # Exact order even with parallel maps (needed for a bit-identical resume).
    deterministic: bool = False
    tfrecords: str | None = None  # folder of shards from data_scripts/make_tfrecords.py
    mixup_p: float = 0.35
    mixup_alpha: float = 0.3
    cutmix_p: float = 0.35
    cutmix_alpha: float = 1.0
    balanced_sampling: bool = True  # seed 000's weighted sampler
    class_weights: bool = False
    # grpc://HOST:PORT of a tf.data service dispatcher (python -m
    # keras_art.data_service): the training images are read, decoded and augmented
    # on its workers (keras_art/data/pipeline/service.py says what changes).
    data_service: str | None = None


@dataclass
class ModelConfig:
    """Backbone and head; defaults are seed 000's CNN-RNN."""

    backbone: str = "resnet50"
    weights: str = "imagenet"  # "imagenet", "none" or a path to a local .h5
    head: str = "cnn_rnn"
    proj_dim: int = 320
    gru_units: int = 256
    gru_layers: int = 2
    dropout: float = 0.3
    dense_units: list[int] = field(default_factory=lambda: [384, 128])
    dense_dropout: float = 0.5
    dense_batchnorm: bool = True  # each dense block ends in BatchNorm (seed 002)
    spp_levels: list[int] = field(default_factory=lambda: [1, 2, 3])
    spp_pooling: str = "max"


@dataclass
class TrainConfig:
    """Staged fine-tuning and the optimisation recipe (seed 000 defaults)."""

    epochs: int = 15
    unfreeze_epoch: int = 3  # stage 2 starts at this epoch (0-based); -1 = never
    unfreeze_on_plateau: bool = False  # or earlier, when val macro-F1 stalls
    unfreeze_from: str = "conv3"  # first backbone stage that learns in stage 2
    lr_head: float = 8e-4
    lr_backbone: float = 1.5e-4
    # Extra groups, e.g. seed 004 {"conv2": 1e-6, "conv3": 1e-5}: stage -> LR.
    lr_groups: dict[str, float] = field(default_factory=dict)
    weight_decay: float = 0.05
    schedule: str = "cosine"
    cosine_t_max_epochs: int = 15
    eta_min: float = 1e-6
    warmup_epochs: float = 0.0
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    clipnorm: float | None = 1.0  # seed 000's global max_norm; 0 or None = no clipping
    label_smoothing: float = 0.03
    early_stopping_patience: int = 5  # epochs without val macro-F1 gain; 0 = off
    monitor: str = MONITOR_METRIC
    task_weights: dict[str, float] = field(default_factory=dict)
    # "auto": float16 where a GPU is visible, off on CPU (resolved at run start).
    mixed_precision: str = "auto"
    strategy: str = "auto"
    seed: int = 42
    steps_per_epoch: int | None = None  # cap, for smoke runs
    feature_cache: bool = False  # frozen stage trains the head on cached features
    # XLA-compile the train and eval steps (one replica only; ignored, with a
    # warning, under MirroredStrategy). Off: on CPU XLA made the unfrozen step 2-3x
    # slower for every head and the rest no faster (bench train-step --jit off on).
    jit_compile: bool = False
    # Write the test split's report (python -m keras_art.evaluate, no TTA, Grad-CAM
    # or audit) into <run>/eval/test/ when training ends.
    report: bool = True
    # BatchNorm of unfrozen stages learns: None = only when the backbone starts from
    # random init (pretrained BN statistics are kept frozen, in inference mode).
    train_bn: bool | None = None
    # The schedule as a list of stages (`keras_art.stage_plan.StageConfig`: name,
    # epochs, what trains, LRs, augment overrides, early stop, plateau, BN). Empty:
    # the two-stage shorthand, frozen until unfreeze_epoch then unfrozen from
    # unfreeze_from. With stages, unfreeze_epoch is unused, unfreeze_from is the
    # stages' default and epochs caps their sum.
    stages: list[StageConfig] = field(default_factory=list)
    # Start from another run's weights (its best.keras) or a .keras file, layer by
    # layer where names and shapes match (`keras_art.models.warm_start`).
    init_from: str | None = None


@dataclass
class TuneConfig:
    """A KerasTuner search (``python -m tuning.search``); the hyperparameters and
    their ranges are in ``tuning/space.py``."""

    tuner: str = "hyperband"
    max_trials: int | None = None  # None: hyperband's own schedule; the others 20
    epochs: int = 10  # most epochs one trial trains (hyperband's max_epochs)
    hyperband_factor: int = 3
    directory: str = "tuning_runs"
    project: str = ""  # default: <task>-<stage>
    stage: str = "head"  # head: frozen backbone, cached features; full: staged
    space: str = "default"  # a named space (tuning.space.NAMED_SPACES) or a file
    values: dict[str, Any] = field(default_factory=dict)  # name -> allowed values
    fixed: dict[str, Any] = field(default_factory=dict)  # name -> one pinned value
    max_failed_trials: int = 3  # consecutive failed trials before the search stops
    max_retries: int = 1  # reruns of a crashed trial, or of one whose worker was lost
    # Distributed search (``--chief``/``--tuner-id``): seconds without a heartbeat
    # before a worker's trial goes back to the queue, and seconds the chief waits with
    # no worker in touch (and a worker for a silent chief) before giving up.
    worker_timeout: float = 60.0
    idle_timeout: float = 600.0


@dataclass
class Config:
    task: str = "artist"
    workdir: str = "runs"
    run_name: str = ""  # default: <task>-<head>-<timestamp>
    preset: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The label tasks this run trains on."""
        return TASKS if self.task == "multi" else (self.task,)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def validate(self) -> Config:
        """Check the choices that have a fixed vocabulary; return self."""
        _choice("task", self.task, TASK_CHOICES)
        _choice("data.format", self.data.format, DATASET_FORMATS)
        _choice("data.small_classes", self.data.small_classes, ("drop", "error"))
        _choice("augment.eval_resize", self.augment.eval_resize, EVAL_RESIZE_MODES)
        _choice("model.head", self.model.head, HEADS)
        _choice("model.backbone", self.model.backbone, tuple(BACKBONES))
        _choice("model.spp_pooling", self.model.spp_pooling, ("max", "avg"))
        _choice("train.mixed_precision", self.train.mixed_precision, MIXED_PRECISION)
        _choice("train.strategy", self.train.strategy, STRATEGIES)
        _choice("train.schedule", self.train.schedule, SCHEDULES)
        _choice("train.unfreeze_from", self.train.unfreeze_from, STAGES)
        _choice("tune.tuner", self.tune.tuner, TUNERS)
        _choice("tune.stage", self.tune.stage, TUNE_STAGES)
        check_stages(self.train)
        self._check_stage_augment()
        self._check_lr_groups()
        self._check_sizes()
        split = self.data.split
        if (
            len(split) not in (2, 3)
            or any(f < 0 for f in split)
            or not (0.999 <= sum(split) <= 1.001)
        ):
            raise UserError(
                f"data.split must be 2 or 3 non-negative fractions summing to 1 "
                f"(e.g. [0.8, 0.2] or [0.6, 0.2, 0.2]). Received: {split}"
            )
        distance = self.data.near_duplicate_distance
        if distance is not None and not (
            isinstance(distance, int) and 0 <= distance <= MAX_NEAR_DUPLICATE_DISTANCE
        ):
            raise UserError(
                f"data.near_duplicate_distance must be null or a whole number of bits "
                f"from 0 to {MAX_NEAR_DUPLICATE_DISTANCE} (default 10). Received: "
                f"{distance!r}"
            )
        if self.augment.image_size < 32:
            raise UserError(
                f"augment.image_size must be at least 32. Received: "
                f"{self.augment.image_size}"
            )
        if self.input.batch_size < 1 or self.train.epochs < 1:
            raise UserError("input.batch_size and train.epochs must be at least 1.")
        self._check_data_service()
        return self

    def _check_data_service(self) -> None:
        """``input.data_service``: an address, with image files, order not promised."""
        address = self.input.data_service
        if address is None:
            return
        check_data_service_address(address)
        if self.input.tfrecords:
            raise UserError(
                "input.data_service prepares images read from files; input.tfrecords "
                "is read in the trainer. Set one of them to null."
            )
        if self.input.deterministic:
            raise UserError(
                "input.deterministic promises a fixed batch order, which images "
                "arriving from several tf.data service workers cannot keep. Set "
                "input.deterministic=false or input.data_service=null."
            )

    def _check_sizes(self) -> None:
        """``data.split_sizes``, ``augment.center_crop_from`` and ``train.clipnorm``."""
        sizes = self.data.split_sizes
        if sizes and (len(sizes) not in (2, 3) or min(sizes) < 0 or sizes[0] < 1):
            raise UserError(
                f"data.split_sizes must be [] or 2 or 3 image counts (train, val"
                f"[, test]) with train at least 1, e.g. [5000, 1667, 1667]. "
                f"Received: {sizes}"
            )
        crop_from = self.augment.center_crop_from
        side = max([self.augment.image_size, *self.augment.multi_size])
        if crop_from is not None and crop_from < side:
            raise UserError(
                f"augment.center_crop_from must be null or at least the training "
                f"image side {side} (augment.image_size, augment.multi_size). "
                f"Received: {crop_from}"
            )
        if self.train.clipnorm is not None and self.train.clipnorm < 0:
            raise UserError(
                f"train.clipnorm must be >= 0 (0 or null = no clipping). Received: "
                f"{self.train.clipnorm}"
            )

    def _check_stage_augment(self) -> None:
        """Each stage's augmentation overrides are `AugmentConfig` keys and values;
        a head-only stage cannot change what cached features were made with."""
        stages = resolve_stages(self.train)
        for i, stage in enumerate(self.train.stages):
            augment_with(self.augment, stage.augment, f"train.stages.{i}.augment")
        if self.train.feature_cache and any(
            s.trains == "head" and s.augment for s in stages
        ):
            raise UserError(
                "train.feature_cache trains head-only stages on features cached "
                "once with augment.*, which cannot follow a stage's augment "
                "overrides. Set train.feature_cache=false, or move the overrides "
                "to augment.*."
            )

    def _check_lr_groups(self) -> None:
        """A learning-rate group for a stage that never unfreezes is a mistake."""
        learning = learning_backbone_stages(self.train)
        for stage in self.train.lr_groups:
            _choice("train.lr_groups stage", stage, STAGES)
            if stage in learning:
                continue
            if self.train.stages:
                raise UserError(
                    f"train.lr_groups sets a learning rate for {stage}, but no "
                    f"stage of train.stages lets it train. Give a stage "
                    f"trains=all with unfreeze_from={stage} or earlier (or drop "
                    f"{stage} from train.lr_groups)."
                )
            raise UserError(
                f"train.lr_groups sets a learning rate for {stage}, but "
                f"train.unfreeze_from={self.train.unfreeze_from} with "
                f"unfreeze_epoch={self.train.unfreeze_epoch} never lets it "
                f"train. Set train.unfreeze_from={stage} (or drop "
                f"{stage} from train.lr_groups)."
            )


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(
            f"Unknown {name} {value!r}. Choose one of: {', '.join(choices)}."
        )


# --------------------------------------------------------------------------- presets
PRESETS: dict[str, Callable[[], Config]] = {}


def register_preset(fn: Callable[[], Config]) -> Callable[[], Config]:
    """Register ``preset_<name>`` as ``<name>``, ``_`` spelled ``-``
    (``preset_seed004_baseline`` is ``--preset seed004-baseline``)."""
    PRESETS[fn.__name__.removeprefix("preset_").replace("_", "-")] = fn
    return fn


@register_preset
def preset_default() -> Config:
    """Seed 000's recipe at its full 384 px size, plus early stopping after 5 epochs
    without a val macro-F1 gain (``seed000``, as its seed, has none).

    python -m keras_art.train --task style --data /data/wikiart-release --format wikiart
    """
    return Config(preset="default")


@register_preset
def preset_seed000() -> Config:
    """Seed 000 as published: CNN-RNN head (ResNet-50 cut at conv5, 320-channel
    projection, 2-layer BiGRUs over rows and columns with attention pooling, fused
    with GAP), RandomResizedCrop 384 + scale jitter + flip + colour jitter + random
    erasing, balanced sampling, MixUp (p 0.35, alpha 0.3) + CutMix (p 0.35, alpha 1),
    label smoothing 0.03, AdamW 8e-4 (new modules) / 1.5e-4 (unfrozen backbone),
    cosine T_max 15 to 1e-6 (every group), gradient clipping at global norm 1.0 and
    mixed precision (``auto``: float16 with a GPU, off on CPU, where it only slows).

    Style: "all layers learn after a certain epoch" (the unfreeze reaches conv1);
    artist/genre keep the stem and conv2 frozen (see `resolve_task_defaults`).

    Substitutions (values the seed does not give):

    - unfreeze at epoch 3, from conv3 for artist/genre ("after a certain epoch",
      "early stem blocks frozen");
    - crop scale 0.35-1, scale jitter 0.8-1.2, colour jitter 0.2 with hue 0.02
      ("moderate"), erasing probability 0.25, dropout 0.3, weight decay 0.05,
      batch 32, 15 epochs (the schedule's T_max), evaluation on the central
      square;
    - the split: the release's own train/val lists, with 10% of all images carved
      out of train as test (``data.split`` 0.8/0.1/0.1 on data without lists);
    - the weighted sampler draws class-balanced epochs of the train split's size;
    - no early stopping (the seed names none: the cosine schedule runs to its
      end); the epoch with the best val macro-F1 is the one kept;
    - AMP's GradScaler is keras_art's dynamic loss scale (float16 only).

    python -m keras_art.train --task style --preset seed000 --data DIR --format wikiart
    """
    cfg = Config(preset="seed000")
    cfg.train.epochs = 15
    cfg.train.early_stopping_patience = 0
    return cfg


@register_preset
def preset_seed002() -> Config:
    """Seed 002's three rounds on Best Artworks' top-10 artists, 200 works each (its
    2,000-work subset), 80/20, GAP head + dense blocks (384, 128), 224 px, batch 32,
    Adam (AdamW, weight decay 0), no gradient clipping, LR x0.1 after 4 epochs
    without a val macro-F1 gain (no floor: the seed's best gains came at 1e-6 and
    below), early stop after 10:

    1. ``baseline``: everything learns from the ImageNet weights at 1e-4, rotation
       30 and zoom 0.5-1.5 (up to 50 epochs);
    2. ``frozen``: the ResNet frozen, 40 epochs on the dense and BatchNorm layers
       at 1e-4 again, with horizontal and vertical flips instead;
    3. ``finetune``: every layer at 1e-7, flips, 30 epochs (no plateau, no early
       stop).

    Each round starts fresh: its own LRs, early stopping and plateau.
    python -m keras_art.train --task artist --preset seed002 \
        --data DIR --format best-artworks
    All 50 artists (the seed's final run): add --set data.top_n=null --set
    data.max_per_class=null. Shorter rounds: --set train.stages.frozen.epochs=5
    (a stage by name, or by index from 0).

    Substitutions: the seed does not say how it drew its 2,000 works; 200 of each
    top-10 artist (each has 255-877) gives exactly 2,000, chosen by a seeded hash
    (``data.max_per_class``). It gives no length for round 1 (its curves end near
    epoch 30), so early stopping ends it, at 50 at most. Its early stopping
    patience 4 and plateau patience 10 cannot both hold (the run would stop before
    the LR drop it describes); this is the reading in which its behaviour can
    happen. The seed trained the dense-block models from the baseline's weights:
    train the baseline with --set model.dense_units=[], then the dense-block run
    with --init-from <baseline run>. The ResNet's BatchNorm keeps its ImageNet
    statistics (the project's policy; set train.stages.N.train_bn=true to let it
    learn), and its multi-size SPP variant is ``--head spp --set
    augment.multi_size=[224,260,296]``. Adam at 1e-4 becomes AdamW with weight
    decay 0 at 1e-4; no gradient clipping and no mixed precision (both seed 000's).
    """
    cfg = Config(preset="seed002")
    cfg.data.top_n = 10
    cfg.data.max_per_class = 200
    cfg.data.split = [0.8, 0.2]
    _plain_augment(cfg.augment, image_size=224)
    cfg.augment.eval_resize = "resize"
    # Rounds 2 and 3's flips also outside the stages: a head search (tuning, on
    # cached features of the frozen backbone) is round 2.
    for key, value in _SEED002_FLIPS.items():
        setattr(cfg.augment, key, value)
    _plain_input(cfg.input)
    cfg.model.head = "gap"
    cfg.train.unfreeze_from = "conv1"
    cfg.train.lr_head = cfg.train.lr_backbone = 1e-4
    cfg.train.weight_decay = 0.0
    cfg.train.clipnorm = 0.0
    cfg.train.mixed_precision = "off"
    cfg.train.schedule = "plateau"
    cfg.train.plateau_patience = 4
    cfg.train.eta_min = 0.0  # the plateau's floor
    cfg.train.label_smoothing = 0.0
    cfg.train.early_stopping_patience = 10
    cfg.train.stages = _seed002_rounds()
    cfg.train.epochs = sum(stage.epochs for stage in cfg.train.stages)
    return cfg


_SEED002_FLIPS = {"rotation": 0.0, "zoom": [1.0, 1.0], "hflip": True, "vflip": True}


def _seed002_rounds() -> list[StageConfig]:
    """Seed 002's three rounds (`preset_seed002`'s docstring)."""
    rotate_zoom = {"rotation": 30.0, "zoom": [0.5, 1.5], "hflip": False}
    rotate_zoom["vflip"] = False
    return [
        StageConfig("baseline", 50, "all", augment=rotate_zoom),
        StageConfig("frozen", 40, "head", lr_head=1e-4, augment=dict(_SEED002_FLIPS)),
        StageConfig(
            "finetune", 30, "all", lr_head=1e-7, lr_backbone=1e-7,
            augment=dict(_SEED002_FLIPS), early_stopping_patience=0,
            plateau_patience=0,
        ),
    ]  # fmt: skip


@register_preset
def preset_seed001() -> Config:
    """Seed 001: ResNet-50 fine-tuned end to end on the ten Best Artworks artists it
    names (Picasso, Rembrandt, Sisley, Titian, Modigliani, Warhol, Kahlo, Rublev,
    Mondrian, Pollock: 1,916 images), 85/15 train/validation, AdamW lr 8e-4 weight
    decay 0.01 betas (0.9, 0.999), batch 32, 50 epochs; no clipping, no mixed
    precision.

    The artists are spelled as artists.csv spells them (the reader's class names);
    folder spellings ("Pablo_Picasso") match too. A named artist missing from the
    data stops the run with one error naming every missing artist.

    Substitutions (the seed names no augmentation, image size, schedule, freezing
    or head for its ResNet run): 224 px, RandomResizedCrop (scale 0.35-1) +
    horizontal flip, evaluation on the central square, a constant LR, ImageNet
    weights, every layer trains from the first epoch, and a linear classifier on
    global average pooling (``gap`` with no dense blocks). Its batch
    of 32 was per GPU on 2 GPUs (a global batch of 64 under DDP);
    ``--batch-size 64`` repeats that. Its ViT and iFormer runs have no
    keras.applications counterpart.
    python -m keras_art.train --task artist --preset seed001 \\
        --data DIR --format best-artworks
    """
    cfg = Config(preset="seed001")
    cfg.data.classes = [
        "Pablo Picasso",
        "Rembrandt",
        "Alfred Sisley",
        "Titian",
        "Amedeo Modigliani",
        "Andy Warhol",
        "Frida Kahlo",
        "Andrei Rublev",
        "Piet Mondrian",
        "Jackson Pollock",
    ]
    cfg.data.split = [0.85, 0.15]
    _plain_augment(cfg.augment, image_size=224)
    cfg.augment.random_resized_crop = True
    cfg.augment.hflip = True
    cfg.augment.eval_resize = "center_crop"
    _plain_input(cfg.input)
    cfg.model.head = "gap"
    cfg.model.dense_units = []
    _plain_train(cfg.train)
    cfg.train.epochs = 50
    cfg.train.unfreeze_epoch = 0
    cfg.train.unfreeze_from = "conv1"
    cfg.train.lr_head = cfg.train.lr_backbone = 8e-4
    cfg.train.weight_decay = 0.01
    return cfg


@register_preset
def preset_seed003() -> Config:
    """Seed 003's best ResNet run: the HF WikiArt parquet release, the four major
    artists (Van Gogh, Roerich, Renoir, Monet), 60/20/20 (its 3,865 / 1,288 /
    1,289 images), a frozen ResNet-50 under Linear(256)-ReLU-Dropout(0.3)-Linear
    (525,572 trainable parameters), lr 1e-5, batch 32, 7 epochs. Training images:
    RandomResizedCrop(256, scale 0.8-1) -> RandomRotation(15) -> horizontal flip ->
    CenterCrop(224) (``augment.center_crop_from`` 256). No clipping, no mixed
    precision. Its sampled 5,000 / 1,667 / 1,667 run is ``seed003-sample``.

    Substitutions:

    - evaluation's Resize(256) + CenterCrop(224) keeps the central 224/256 of the
      short side; here the central square is resized to 224 (``center_crop``);
    - rotation fills the corners with the nearest edge pixels (torchvision: black);
    - the seed names no optimiser: Adam, as AdamW with weight decay 0; LogSoftmax +
      NLLLoss is cross-entropy on the softmax;
    - each backbone's own ImageNet normalisation replaces torchvision's mean/std;
    - its ResNet-18 and AlexNet runs have no keras.applications model.
    python -m keras_art.train --task artist --preset seed003 \\
        --data DIR/data --format parquet
    """
    cfg = Config(preset="seed003")
    cfg.data.classes = [
        "vincent-van-gogh",
        "nicholas-roerich",
        "pierre-auguste-renoir",
        "claude-monet",
    ]
    cfg.data.split = [0.6, 0.2, 0.2]
    _seed003_recipe(cfg)
    cfg.model.dense_dropout = 0.3
    cfg.train.epochs = 7
    cfg.train.lr_head = 1e-5
    return cfg


@register_preset
def preset_seed003_sample() -> Config:
    """Seed 003's "subset of the original dataset" run: 5,000 / 1,667 / 1,667
    images drawn at random (``data.split_sizes``, seeded by ``data.split_seed``)
    from every artist of the HF WikiArt parquet release, Dropout(0.4), lr 1e-4,
    5 epochs; otherwise as ``seed003`` (same augmentation, head and frozen
    backbone, batch 32, no clipping, no mixed precision).

    Substitutions: as ``seed003``; and the seed counts 129 artist classes with
    "Unknown Artist" but does not say whether its sample kept them: here they are
    dropped (``data.drop_unknown``). The draw is keras_art's (a hash of each image's
    bytes and the seed), not the seed's own sample.
    python -m keras_art.train --task artist --preset seed003-sample \\
        --data DIR/data --format parquet
    """
    cfg = Config(preset="seed003-sample")
    cfg.data.split = [0.6, 0.2, 0.2]
    cfg.data.split_sizes = [5000, 1667, 1667]
    _seed003_recipe(cfg)
    cfg.model.dense_dropout = 0.4
    cfg.train.epochs = 5
    cfg.train.lr_head = 1e-4
    return cfg


def _seed003_recipe(cfg: Config) -> None:
    """What both seed 003 runs share: augmentation, batches, head, frozen backbone."""
    _plain_augment(cfg.augment, image_size=224)
    cfg.augment.random_resized_crop = True
    cfg.augment.crop_scale = [0.8, 1.0]
    cfg.augment.center_crop_from = 256
    cfg.augment.rotation = 15.0
    cfg.augment.hflip = True
    cfg.augment.eval_resize = "center_crop"
    _plain_input(cfg.input)
    cfg.model.head = "gap"
    cfg.model.dense_units = [256]
    cfg.model.dense_batchnorm = False
    _plain_train(cfg.train)
    cfg.train.unfreeze_epoch = -1  # only the new layers train


@register_preset
def preset_seed004() -> Config:
    """Seed 004: 31 Best Artworks artists, images letterboxed to 224 px ("resized to
    224x224 with the use of padding"), 80/20 train/held-out, flip, rotation 10,
    colour jitter 0.1 (brightness, contrast, saturation), three learning-rate
    groups (early layers 1e-6, intermediate 1e-5, final layer 1e-3), batch 32, 20
    epochs, early stopping after 5 epochs without a gain; no clipping, no mixed
    precision. The evaluation report gives bootstrap 95% intervals for accuracy,
    precision, recall and F1 (its tables' precision/recall/F1 are the weighted
    ones: recall equals accuracy in every row). Its baseline is
    ``seed004-baseline``.

    Any of its three backbones: ``--backbone resnet50`` (default), ``efficientnetb0``
    or ``convnext_tiny``.

    Substitutions:

    - the seed does not say which 31 artists: the 31 with the most images
      (``data.top_n`` 31; ties go to the artist listed first in artists.csv);
    - its "test" 20% drives early stopping, so it is keras_art's val split (there
      is no untouched test split, as in the seed); early stopping watches val
      macro-F1 (the seed does not say what it watched);
    - "early" = conv1-conv2, "intermediate" = conv3-conv5 (the seed does not say
      where it cut); Adam = AdamW with weight decay 0; the classifier is a linear
      layer on global average pooling;
    - rotation fills the corners with the nearest edge pixels (torchvision: black);
      each backbone's own ImageNet normalisation replaces the stated mean/std.
    python -m keras_art.train --task artist --preset seed004 --backbone convnext_tiny \\
        --data DIR --format best-artworks
    """
    cfg = Config(preset="seed004")
    cfg.data.top_n = 31
    cfg.data.split = [0.8, 0.2]
    _plain_augment(cfg.augment, image_size=224)
    cfg.augment.eval_resize = "letterbox"
    cfg.augment.hflip = True
    cfg.augment.rotation = 10.0
    cfg.augment.color_jitter = 0.1
    _plain_input(cfg.input)
    cfg.model.head = "gap"
    cfg.model.dense_units = []
    _plain_train(cfg.train)
    cfg.train.epochs = 20
    cfg.train.unfreeze_epoch = 0
    cfg.train.unfreeze_from = "conv1"
    cfg.train.lr_head = 1e-3
    cfg.train.lr_backbone = 1e-5
    cfg.train.lr_groups = {"conv1": 1e-6, "conv2": 1e-6}
    cfg.train.early_stopping_patience = 5
    return cfg


@register_preset
def preset_seed004_baseline() -> Config:
    """Seed 004's baseline: "a pretrained ResNet50 model with only its output layer
    changed", fitted for 10 epochs: the backbone stays frozen and only the output
    layer learns (lr 1e-3, the seed's final-layer rate); data, augmentation, batch
    and early stopping as ``seed004``.

    Substitutions: as ``seed004``.
    python -m keras_art.train --task artist --preset seed004-baseline \\
        --data DIR --format best-artworks
    """
    cfg = preset_seed004()
    cfg.preset = "seed004-baseline"
    cfg.train.epochs = 10
    cfg.train.unfreeze_epoch = -1
    cfg.train.lr_groups = {}
    return cfg


def _plain_augment(augment: AugmentConfig, image_size: int) -> None:
    """No augmentation at all: presets switch on what their seed used."""
    augment.image_size = image_size
    augment.random_resized_crop = False
    augment.scale_jitter = [1.0, 1.0]
    augment.hflip = False
    augment.color_jitter = augment.hue_jitter = 0.0
    augment.random_erasing = 0.0


def _plain_train(train: TrainConfig) -> None:
    """A constant LR with no weight decay, label smoothing, early stopping, gradient
    clipping or mixed precision (seed 000's alone)."""
    train.schedule = "constant"
    train.weight_decay = 0.0
    train.label_smoothing = 0.0
    train.early_stopping_patience = 0
    train.clipnorm = 0.0
    train.mixed_precision = "off"


def _plain_input(input_cfg: InputConfig) -> None:
    """Plain shuffled batches of 32: no MixUp/CutMix, no class-balanced sampling."""
    input_cfg.batch_size = 32
    input_cfg.mixup_p = input_cfg.cutmix_p = 0.0
    input_cfg.balanced_sampling = False


@register_preset
def preset_demo() -> Config:
    """The embedded sample, small enough to train in minutes on a 2-core laptop.

    python -m keras_art.train --task artist
    """
    cfg = Config(preset="demo")
    cfg.model.weights = "imagenet"  # falls back to random init offline, and says so
    cfg.augment.image_size = 64
    cfg.augment.crop_scale = [0.6, 1.0]
    # At 64 px the demo keeps the measured recipe of its README numbers.
    cfg.augment.scale_jitter = [1.0, 1.0]
    cfg.augment.random_erasing = 0.0
    cfg.input.batch_size = 32
    cfg.input.cache = True
    cfg.model.proj_dim = 64
    cfg.model.gru_units = 32
    cfg.model.gru_layers = 1
    cfg.train.epochs = 16
    cfg.train.unfreeze_epoch = 3
    cfg.train.cosine_t_max_epochs = 16
    cfg.train.lr_head = 2e-3
    cfg.train.lr_backbone = 5e-4
    # From random init, val dips for a few epochs after the unfreeze while BN
    # statistics settle: early stopping would end the demo there.
    cfg.train.early_stopping_patience = 0
    return cfg


@register_preset
def preset_smoke() -> Config:
    """The smallest run that exercises every stage; for CI and quick checks.

    python -m keras_art.train --task artist --preset smoke --weights none
    """
    cfg = preset_demo()
    cfg.preset = "smoke"
    cfg.model.weights = "none"
    cfg.data.sample_images = 96
    cfg.data.validate = True
    cfg.augment.image_size = 32
    cfg.input.batch_size = 8
    cfg.input.shuffle_buffer = 64
    cfg.model.proj_dim = 16
    cfg.model.gru_units = 8
    cfg.model.dense_units = [16, 8]
    cfg.train.epochs = 2
    cfg.train.unfreeze_epoch = 1
    cfg.train.cosine_t_max_epochs = 2
    cfg.train.steps_per_epoch = 3
    return cfg


def resolve_task_defaults(cfg: Config, explicit: set[str]) -> Config:
    """Seed 000's per-task freezing: for style every layer learns after the unfreeze.

    ``explicit`` holds the dotted keys the user set; those are never touched.
    """
    if (
        cfg.task == "style"
        and "train.unfreeze_from" not in explicit
        and (cfg.preset in ("default", "seed000"))
    ):
        cfg.train.unfreeze_from = "conv1"
    return cfg


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise UserError(
            f"Unknown preset {name!r}. Choose one of: {', '.join(sorted(PRESETS))}."
        )
    return PRESETS[name]()


# ------------------------------------------------------------------ loading/overrides
def load_config_file(path: str | os.PathLike, base: Config | None = None) -> Config:
    """Merge a JSON or YAML file into ``base`` (default: a fresh `Config`)."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(
            f"{{config_file}} {path}: no such file. Pass a .json or .yaml config."
        )
    raw = read_json_or_yaml(p, "config_file")
    if not isinstance(raw, dict):
        raise ParameterError(
            f"{{config_file}} {path}: the top level must be a mapping."
        )
    return merge_dict(base or Config(), raw, source=str(path))


# ``apply_overrides``' source in messages: its parameter, which commands show as a flag.
OVERRIDES = "{overrides}"


def _source_error(message: str) -> UserError:
    """A merge error: `ParameterError` when it names ``overrides`` (the slot), a
    plain `UserError` when it names a file (whose path may hold braces)."""
    if message.startswith(OVERRIDES):
        return ParameterError(message)
    return UserError(message)


def merge_dict(cfg: Any, raw: dict[str, Any], source: str, prefix: str = "") -> Any:
    """Recursively set dataclass fields from a nested dict, type-checked."""
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise _source_error(
                f"{source}: unknown config key {dotted!r}. Known keys at this level: "
                f"{', '.join(sorted(names))}."
            )
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise _source_error(f"{source}: {dotted} must be a mapping.")
            merge_dict(current, value, source, prefix=f"{dotted}.")
        elif isinstance(value, dict) and _is_dataclass_list(hints[key]):
            _merge_items(current, value, source, dotted)
        else:
            setattr(cfg, key, _coerce(value, hints[key], dotted, source))
    return cfg


def _is_dataclass_list(hint: Any) -> bool:
    args = typing.get_args(hint)
    return typing.get_origin(hint) is list and dataclasses.is_dataclass(args[0])


def _merge_items(items: list, raw: dict[str, Any], source: str, dotted: str) -> None:
    """``{index or name: {key: value}}`` merged into items of a list of dataclasses
    (``--set train.stages.1.epochs=2``, ``--set train.stages.frozen.epochs=2``)."""
    for ref, value in raw.items():
        item = _list_item(items, str(ref), source, dotted)
        if not isinstance(value, dict):
            raise _source_error(
                f"{source}: {dotted}.{ref} is a mapping; set its keys, e.g. "
                f"{dotted}.{ref}.epochs=2."
            )
        merge_dict(item, value, source, prefix=f"{dotted}.{ref}.")


def _list_item(items: list, ref: str, source: str, dotted: str) -> Any:
    if not items:
        raise _source_error(
            f"{source}: {dotted} is empty, so {dotted}.{ref} names nothing. Set the "
            f"whole list first (e.g. {dotted}=[...] in a config file)."
        )
    if ref.isdigit() and int(ref) < len(items):
        return items[int(ref)]
    for item in items:
        if getattr(item, "name", None) == ref:
            return item
    names = [n for n in (getattr(item, "name", "") for item in items) if n]
    raise _source_error(
        f"{source}: {dotted} has no item {ref!r}. Name one by index (0 to "
        f"{len(items) - 1})" + (f" or by name ({', '.join(names)})." if names else ".")
    )


def apply_overrides(cfg: Config, overrides: list[str]) -> set[str]:
    """Apply ``section.key=value`` strings (values parsed as YAML).

    Returns the dotted keys that were set.
    """
    import yaml

    done = set()
    for item in overrides:
        if "=" not in item:
            raise ParameterError(
                f"{{overrides}} {item!r}: expected section.key=value, e.g. "
                f"train.epochs=3."
            )
        key, text = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        *parents, leaf = key.split(".")
        nested: dict[str, Any] = {leaf: value}
        for parent in reversed(parents):
            nested = {parent: nested}
        merge_dict(cfg, nested, source=OVERRIDES)
        done.add(key)
    return done


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _source_error(f"{source}: {key} must be a mapping.")
        return merge_dict(hint(), value, source, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    bad = _source_error(
        f"{source}: {key} expects {_hint_name(hint)}. Received: {value!r}"
    )
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-6" as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if origin is list:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise bad
        if dataclasses.is_dataclass(args[0]):
            items = enumerate(value)
            return [_coerce(v, args[0], f"{key}.{i}", source) for i, v in items]
        return [_coerce(v, args[0], key, source) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return {str(k): _coerce(v, args[1], key, source) for k, v in value.items()}
    return value


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


# Augmentation keys a stage cannot change: evaluation reads them.
STAGE_FIXED_AUGMENT = ("eval_resize",)


def augment_with(
    augment: AugmentConfig, overrides: Mapping[str, Any], key: str = "augment"
) -> AugmentConfig:
    """A copy of ``augment`` with ``overrides`` (`AugmentConfig` keys -> values, a
    stage's ``augment``) set and type-checked; errors name ``<key>.<name>``."""
    for name in STAGE_FIXED_AUGMENT:
        if name in overrides:
            raise UserError(
                f"{key}.{name}: evaluation uses augment.{name}, so a stage cannot "
                f"change it. Set augment.{name} instead."
            )
    return merge_dict(copy.deepcopy(augment), dict(overrides), "config", f"{key}.")


def config_from_dict(raw: dict[str, Any], source: str = "the config") -> Config:
    """Rebuild a `Config` from a dict of `Config.to_json` (e.g. a run directory's
    config file); errors name ``source``, the file it came from."""
    return merge_dict(Config(), raw, source=source)


def check_data_service_address(address) -> str:
    """``address`` if it is ``grpc://HOST:PORT`` (``input.data_service``)."""
    scheme, _, host_port = str(address).partition("://")
    if scheme != "grpc" or parse_host_port(host_port) is None:
        raise UserError(
            f"input.data_service={address!r} is not a tf.data service address. Pass "
            "grpc://HOST:PORT, the dispatcher's (python -m keras_art.data_service "
            "dispatcher --port PORT)."
        )
    return str(address)


def build_config(
    preset: str = "default",
    config_file: str | None = None,
    overrides: list[str] | None = None,
) -> tuple[Config, set[str]]:
    """preset -> file -> overrides; returns the config and the keys set explicitly."""
    cfg = get_preset(preset)
    if config_file:
        cfg = load_config_file(config_file, cfg)
    explicit = apply_overrides(cfg, overrides or [])
    return cfg, explicit
