"""Input-pipeline throughput: keras_art's training pipeline against two references.

(a) ``pipeline``: `build_dataset` with seed 000's recipe (fused decode +
    RandomResizedCrop, flip, colour jitter, random erasing, class-balanced sampling,
    MixUp/CutMix).
(b) ``decode_ceiling``: the same files through read -> full decode -> resize ->
    batch only: what a pipeline that decodes every pixel cannot beat.
(c) ``keras_baseline``: ``keras.utils.image_dataset_from_directory`` + Keras
    preprocessing layers doing the same augmentation (RandomZoom stands in for
    RandomResizedCrop; Keras has no balanced sampler, so none is applied).
(d) ``pipeline_prepared`` (with ``--prepared-short-side S``): (a) reading prepared
    TFRecord shards of the same images, each re-encoded once with short side S
    (`keras_art.data.pipeline.reencode`), as ``input.tfrecords`` training reads
    them (shard stream, repeat-factor balancing, shuffle buffer). The shards
    are written to a temporary folder first; the conversion is timed too
    (``prepared`` in the result).

``--generate-large N`` makes N painting-like JPEGs: ``--kind noise`` (default)
has fine grain everywhere, ~550 KB at 1600x1200, so Huffman decoding dominates;
``--kind smooth`` is like a clean scan, ~250 KB at 1600x1200 and cheap to decode.

Every variant yields RGB float32 in [0, 255]: the model normalises for its backbone
in its first layer (``input_normalization``), so no variant does that work.

Same files, same process. Each variant is timed ``--rounds`` times, the variants
taking turns (a, b, c, a, b, c, ...), so a slow spell of a shared machine hits all
of them alike; the headline numbers are medians over the rounds and the ratios are
medians of the per-round ratios. images/s counts images leaving the pipeline after
a short warm-up; CPU ms/image counts every thread of the process.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from keras_art.benchmarks import PeakRSS, progress, usable_cores
from keras_art.cli import add_set_flag
from keras_art.data.sources.build_once import build_dir_once, is_complete
from keras_art.errors import UserError

NAME = "pipeline"
HELP = "images/s of the training input pipeline vs decode+resize and a Keras baseline"
VARIANTS = ("pipeline", "decode_ceiling", "keras_baseline")  # the default set
PREPARED = "pipeline_prepared"  # added by --prepared-short-side
SERVICE = "pipeline_service"  # added by --data-service N
# --kind: real paintings from --data upscaled to --large-size (upscaled_real.py).
UPSCALED_REAL = "upscaled-real"
ALL_VARIANTS = (*VARIANTS, PREPARED, SERVICE)
# Octaves (cells across the short side, amplitude) and grain of generated images.
GENERATED_KINDS = {
    "noise": (((3, 110.0), (12, 50.0), (48, 30.0), (200, 18.0)), 7.0),
    "smooth": (((3, 110.0), (12, 50.0), (48, 30.0), (200, 10.0)), 1.0),
}
# Each timed window spans at least this many batches: shorter ones (20 batches,
# ~2.5 s here) moved the pipeline/ceiling ratio by +-5 % from run to run.
MIN_TIMED_BATCHES = 60
# Class shares of the generated set: imbalanced, so the sampler has work to do.
GENERATED_SHARES = (0.4, 0.25, 0.15, 0.12, 0.08)
NO_NORMALISATION_NOTE = (
    "no backbone normalisation in any variant (the model's input_normalization layer "
    "does it), so keras_baseline no longer calls resnet50.preprocess_input"
)


@dataclass(frozen=True)
class PipelineBenchConfig:
    """What `bench_pipeline` measures; one field per CLI flag (see `add_arguments`).

    ``data_dir`` is a ``DIR/<class>/*.jpg`` tree; ``generate_large`` N > 0 times N
    generated ``large_size`` (W, H) JPEGs of ``kind`` instead, cached under
    ``cache_dir``. ``min_images`` 0 times one pass over the files (at least
    `MIN_TIMED_BATCHES` batches) per variant and round; ``threads`` 0 gives tf.data
    every usable core. ``prepared_short_side`` S > 0 adds `PREPARED`: shards of
    the images re-encoded with short side S and JPEG ``prepared_quality``.
    """

    data_dir: str | None = None
    generate_large: int = 0
    large_size: tuple[int, int] = (1600, 1200)
    kind: str = "noise"
    image_size: int = 384
    batch_size: int = 32
    min_images: int = 0
    rounds: int = 3
    threads: int = 0
    seed: int = 0
    variants: tuple[str, ...] = VARIANTS
    cache_dir: str | None = None
    # ``augment.*`` / ``input.*`` overrides of the recipe, as `train --set` takes.
    overrides: tuple[str, ...] = ()
    prepared_short_side: int = 0
    prepared_quality: int = 90
    # N > 0 adds `SERVICE`: (a) with its images prepared by N local tf.data service
    # workers (subprocesses: their CPU is not this process's).
    data_service: int = 0
    service_address: str | None = None  # set while the local cluster runs

    def recipe(self):
        """``(AugmentConfig, InputConfig)`` variant (a) runs: seed 000's defaults,
        the bench's size and batch, then ``overrides``."""
        from keras_art.config import Config, apply_overrides

        cfg = Config()
        cfg.augment.image_size = self.image_size
        cfg.input.batch_size = self.batch_size
        bad = [o for o in self.overrides if not o.startswith(("augment.", "input."))]
        if bad:
            raise UserError(
                f"--set {bad[0]}: bench pipeline takes augment.* and input.* keys."
            )
        apply_overrides(cfg, list(self.overrides))
        return cfg.augment, cfg.input

    @property
    def timed_variants(self) -> tuple[str, ...]:
        """``variants``, plus `PREPARED` when prepared shards are asked for."""
        variants = self.variants
        if self.prepared_short_side and PREPARED not in variants:
            variants = (*variants, PREPARED)
        if self.data_service and SERVICE not in variants:
            variants = (*variants, SERVICE)
        return variants

    def encoding(self):
        """The prepared shards' `ImageEncoding`."""
        from keras_art.data.pipeline.reencode import ImageEncoding

        return ImageEncoding(
            "short_side", self.prepared_short_side, self.prepared_quality
        ).validate()

    def validate(self) -> None:
        bad = [v for v in self.variants if v not in ALL_VARIANTS]
        if bad or not self.variants:
            raise UserError(
                f"--variants {','.join(self.variants)}: choose from "
                f"{', '.join(ALL_VARIANTS)}."
            )
        if PREPARED in self.variants and not self.prepared_short_side:
            raise UserError(
                f"--variants {PREPARED} times prepared shards: add "
                f"--prepared-short-side S (e.g. 1.5x --image-size)."
            )
        if self.prepared_short_side:
            self.encoding()
        if self.kind not in (*GENERATED_KINDS, UPSCALED_REAL):
            raise UserError(
                f"--kind {self.kind}: choose from "
                f"{', '.join((*GENERATED_KINDS, UPSCALED_REAL))}."
            )
        if self.kind == UPSCALED_REAL and not (self.data_dir and self.generate_large):
            raise UserError(
                f"--kind {UPSCALED_REAL} upscales real paintings: pass --data DIR and "
                "--generate-large N."
            )
        if SERVICE in self.variants and not self.data_service:
            raise UserError(
                f"--variants {SERVICE} times a local tf.data service: add "
                "--data-service N (N workers)."
            )
        if self.data_service < 0:
            raise UserError(f"--data-service {self.data_service}: a number of workers.")
        if self.rounds < 1:
            raise UserError(f"--rounds {self.rounds}: time each variant at least once.")
        if not (self.data_dir or self.generate_large):
            raise UserError("bench pipeline needs --data DIR or --generate-large N.")


@dataclass(frozen=True)
class ClassFolders:
    """The images of a ``root/<class>/*`` tree, in sorted order."""

    root: str
    files: list[str]
    labels: np.ndarray  # int64 index into ``classes``, one per file
    classes: list[str]
    shards: str | None = None  # prepared TFRecord shards of ``files``, if made


class Timing(NamedTuple):
    """One timed window of one variant."""

    images_per_s: float
    seconds: float
    cpu_ms_per_image: float


def add_arguments(p) -> None:
    p.add_argument("--data", metavar="DIR", help="class-folder tree: DIR/<class>/*.jpg")
    p.add_argument(
        "--generate-large",
        type=int,
        default=0,
        metavar="N",
        help="benchmark N generated large JPEGs (cached) instead of / as --data",
    )
    p.add_argument(
        "--large-size", default="1600x1200", metavar="WxH", help="generated size"
    )
    p.add_argument(
        "--kind",
        default="noise",
        choices=(*GENERATED_KINDS, UPSCALED_REAL),
        help="generated images: noise (grainy, Huffman-heavy), smooth (clean scans) "
        "or upscaled-real (--data's paintings upscaled, LANCZOS, JPEG 92)",
    )
    p.add_argument("--image-size", type=int, default=384)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--min-images",
        type=int,
        default=0,
        help="timed images per variant and round (default: one pass, at least "
        f"{MIN_TIMED_BATCHES} batches)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="times each variant is timed, in turns; medians are reported",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="tf.data threads (default: all cores)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma list of " + "/".join(VARIANTS),
    )
    p.add_argument("--cache-dir", help="where --generate-large writes its images")
    _add_extra_variant_arguments(p)
    add_set_flag(p, "change variant (a)'s recipe, e.g. augment.scale_jitter=[1,1]")


def _add_extra_variant_arguments(p) -> None:
    """The flags that add `PREPARED` and `SERVICE` to the timed variants."""
    p.add_argument(
        "--prepared-short-side",
        type=int,
        default=0,
        metavar="S",
        help=f"also time {PREPARED}: shards re-encoded with short side S",
    )
    p.add_argument(
        "--prepared-quality",
        type=int,
        default=90,
        metavar="Q",
        help="JPEG quality of the prepared shards",
    )
    p.add_argument(
        "--data-service",
        type=int,
        default=0,
        metavar="N",
        help=f"also time {SERVICE}: (a) with N local tf.data service workers "
        "preparing its images (this process's CPU per image is the trainer's)",
    )


def run(args) -> dict[str, Any]:
    # keras_art.bench writes --json.
    return bench_pipeline(config_from_args(args))


def config_from_args(args) -> PipelineBenchConfig:
    """The `PipelineBenchConfig` of parsed ``bench pipeline`` flags."""
    try:
        w, h = (int(v) for v in args.large_size.lower().split("x"))
    except ValueError:
        raise UserError(
            f"--large-size {args.large_size!r}: expected WxH, e.g. 1600x1200."
        ) from None
    return PipelineBenchConfig(
        data_dir=args.data,
        generate_large=args.generate_large,
        large_size=(w, h),
        kind=args.kind,
        image_size=args.image_size,
        batch_size=args.batch_size,
        min_images=args.min_images,
        rounds=args.rounds,
        threads=args.threads,
        seed=args.seed,
        variants=tuple(v.strip() for v in args.variants.split(",") if v.strip()),
        cache_dir=args.cache_dir,
        overrides=tuple(args.overrides),
        prepared_short_side=args.prepared_short_side,
        prepared_quality=args.prepared_quality,
        data_service=args.data_service,
    )


def bench_pipeline(
    config: PipelineBenchConfig, json_out: str | None = None
) -> dict[str, Any]:
    """Measure images/s of the variants on one folder; see the module doc.

    Returns (and writes to ``json_out`` when given) ``{"images_per_s": {...},
    "ratios": {...}, "cpu_ms_per_image": {...}, "cpu_ratios": {...},
    "per_round": {...}, "peak_rss_mb": ..., "images": N, "image_size": S,
    "threads": T, ...}``, with ``"prepared": {...}`` (the conversion) when
    prepared shards were timed.
    """
    import tempfile

    from keras_art.runtime_info import peak_rss_mb, versions

    config.validate()
    images = load_images(config)
    threads = config.threads or usable_cores()
    timed = _timed_images(config, len(images.files))
    progress(
        f"{len(images.files)} images in {len(images.classes)} classes from "
        f"{images.root}; {timed} timed images per variant and round, "
        f"{config.rounds} rounds, at {config.image_size}px, batch "
        f"{config.batch_size}, {threads} threads"
    )
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-prepared-") as tmp:
        if PREPARED in config.timed_variants:
            images, extra["prepared"] = prepare_shards(images, config, tmp, threads)
        with _local_service(config) as config:
            timings, peaks = _time_in_turns(config, images, threads, timed)
        on_device = _time_on_device_ops(images, config)
    summary = _summarise(timings)
    if config.data_service:
        extra["data_service"] = _service_summary(config, summary["cpu_ms_per_image"])
    if on_device:
        extra["on_device"] = on_device
    result = {
        **summary,
        **extra,
        "peak_rss_mb": round(max([peak_rss_mb(), *peaks.values()]), 1),
        "peak_rss_mb_by_variant": peaks,
        **_setup(config, images, threads, timed),
        **versions(),
    }
    if json_out:
        from keras_art.atomic_files import atomic_write_json

        atomic_write_json(json_out, result)
        progress(f"wrote {json_out}")
    return result


# ------------------------------------------------------------------------- steps
def load_images(config: PipelineBenchConfig) -> ClassFolders:
    """The benchmarked images: the generated set or ``config.data_dir``."""
    data_dir = config.data_dir
    if config.kind == UPSCALED_REAL:
        from keras_art.benchmarks.upscaled_real import upscaled_real_jpegs

        source = list_class_folders(data_dir)
        data_dir = str(
            upscaled_real_jpegs(
                data_dir,
                config.generate_large,
                config.large_size,
                config.cache_dir,
                files=source.files,
            )
        )
    elif config.generate_large:
        data_dir = str(
            generate_large_jpegs(
                config.generate_large,
                config.large_size,
                config.cache_dir,
                config.seed,
                kind=config.kind,
            )
        )
    images = list_class_folders(data_dir)
    if len(images.files) < config.batch_size:
        raise UserError(
            f"{data_dir}: {len(images.files)} images but --batch-size "
            f"{config.batch_size}; lower the batch size or add images."
        )
    return images


def prepare_shards(
    images: ClassFolders, config: PipelineBenchConfig, out: str, threads: int
) -> tuple[ClassFolders, dict[str, Any]]:
    """Write ``images`` as prepared shards in ``out`` (about 8 shards, as a large
    split would have); return them with the shards and the conversion's figures."""
    from keras_art.data.pipeline.tfrecord import read_manifest, write_shards

    encoding = config.encoding()
    progress(f"writing prepared shards ({encoding.flags()}) to {out}")
    cpu, start = time.process_time(), time.perf_counter()
    write_shards(
        images.files,
        {"style": images.labels},
        out,
        "train",
        shard_size=max(1, math.ceil(len(images.files) / 8)),
        class_names={"style": images.classes},
        encoding=encoding,
        threads=threads,
    )
    seconds = time.perf_counter() - start
    n = len(images.files)
    split = read_manifest(out)["splits"]["train"]
    figures = {
        **encoding.to_manifest(),
        "conversion_images_per_s": round(n / seconds, 2),
        "conversion_cpu_ms_per_image": round((time.process_time() - cpu) * 1000 / n, 2),
        "conversion_threads": threads,
        "reencoded": split["reencoded"],
        "shard_bytes": split["bytes"],
        "original_bytes": split["source_bytes"],
        "bytes_ratio": round(split["bytes"] / split["source_bytes"], 4),
    }
    progress(
        f"prepared {n} images in {seconds:.1f} s ({n / seconds:.1f} images/s, "
        f"{figures['conversion_cpu_ms_per_image']} CPU ms/image); shards are "
        f"{figures['bytes_ratio']:.3f}x the originals' bytes"
    )
    return replace(images, shards=out), figures


def _timed_images(config: PipelineBenchConfig, n_files: int) -> int:
    """Images per timed window: whole batches, at least `MIN_TIMED_BATCHES`."""
    timed = max(config.min_images or n_files, MIN_TIMED_BATCHES * config.batch_size)
    return math.ceil(timed / config.batch_size) * config.batch_size


def _time_in_turns(
    config: PipelineBenchConfig, images: ClassFolders, threads: int, timed: int
) -> tuple[dict[str, list[Timing]], dict[str, float]]:
    """Time each variant ``config.rounds`` times, the variants taking turns.

    Returns the timings per variant and each variant's peak RSS (MiB) while it ran.
    """
    variants = config.timed_variants
    timings: dict[str, list[Timing]] = {name: [] for name in variants}
    peaks = dict.fromkeys(variants, 0.0)
    for r in range(config.rounds):
        for name in variants:
            tag = f"{name} [round {r + 1}/{config.rounds}]"
            with PeakRSS() as mem:
                ds = _with_threads(VARIANT_BUILDERS[name](images, config), threads)
                timings[name].append(_time(tag, ds, timed, config.batch_size))
            peaks[name] = round(max(peaks[name], mem.peak_mb), 1)
    return timings, peaks


def _summarise(timings: dict[str, list[Timing]]) -> dict[str, Any]:
    """Headline medians, ratios and the per-round numbers behind them."""
    rates = {k: [t.images_per_s for t in v] for k, v in timings.items()}
    cpu = {k: [t.cpu_ms_per_image for t in v] for k, v in timings.items()}
    # Images per CPU second, so that cpu_ratios read like the images/s ratios.
    cpu_speed = {k: [1.0 / c if c else 0.0 for c in v] for k, v in cpu.items()}
    per_round = {
        "images_per_s": {k: [round(r, 2) for r in v] for k, v in rates.items()},
        "cpu_ms_per_image": cpu,
        "ratios": _ratios_by_round(rates),
        "cpu_ratios": _ratios_by_round(cpu_speed),
    }
    return {
        "images_per_s": {k: round(_median(v), 2) for k, v in rates.items()},
        "ratios": _median_ratios(per_round["ratios"]),
        # CPU time per image over all threads: steadier than wall-clock when other
        # jobs share the cores; its ratios are the work ratios.
        "cpu_ms_per_image": {k: round(_median(v), 3) for k, v in cpu.items()},
        "cpu_ratios": _median_ratios(per_round["cpu_ratios"]),
        "rounds": len(next(iter(timings.values()))),
        "per_round": per_round,
        "seconds": {k: round(sum(t.seconds for t in v), 2) for k, v in timings.items()},
    }


def _setup(
    config: PipelineBenchConfig, images: ClassFolders, threads: int, timed: int
) -> dict[str, Any]:
    """What was measured, for the JSON."""
    sizes = [Path(f).stat().st_size for f in images.files]
    return {
        "images": len(images.files),
        "images_timed": timed,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "threads": threads,
        "classes": len(images.classes),
        "data": images.root,
        "generated_kind": config.kind if config.generate_large else None,
        "source": config.data_dir if config.kind == UPSCALED_REAL else None,
        "mean_file_kb": round(float(np.mean(sizes)) / 1024, 1),
        "recipe": _recipe(config),
        "note": "wall-clock throughput on a machine shared with other jobs: noisy",
    }


def _recipe(config: PipelineBenchConfig) -> str:
    """Variant (a)'s recipe, read from the configs it runs with."""
    a, i = config.recipe()
    sampling = "balanced sampling" if i.balanced_sampling else "shuffled"
    changed = f" with {', '.join(config.overrides)}" if config.overrides else ""
    where = (
        " (colour, erasing and mixing in the train step: augment.on_device)"
        if a.on_device
        else ""
    )
    return (
        f"seed000 defaults{changed}: "
        f"RandomResizedCrop({a.crop_scale[0]}-{a.crop_scale[1]}) + "
        f"scale jitter {a.scale_jitter[0]}-{a.scale_jitter[1]} + hflip + colour "
        f"jitter {a.color_jitter}/hue {a.hue_jitter} + random erasing "
        f"{a.random_erasing} + {sampling} + MixUp {i.mixup_p}/CutMix "
        f"{i.cutmix_p}{where}; {NO_NORMALISATION_NOTE}"
    )


# ------------------------------------------------------------------------ variants
def _keras_art_pipeline(
    images: ClassFolders, config: PipelineBenchConfig, *, from_shards: bool = False
):
    """(a) keras_art's training pipeline on the files, or with ``from_shards`` on
    the prepared shards, as ``input.tfrecords`` training reads them."""
    from keras_art.data.pipeline.dataset import build_dataset

    augment, input_cfg = config.recipe()
    if from_shards:
        input_cfg = replace(input_cfg, tfrecords=images.shards)
    ds = build_dataset(
        images.files,
        {"style": images.labels},
        {"style": len(images.classes)},
        augment,
        input_cfg,
        training=True,
        seed=config.seed,
        split="train" if from_shards else None,
    )
    return ds.repeat()


@contextlib.contextmanager
def _local_service(config: PipelineBenchConfig):
    """``config`` with the address of a local cluster of ``config.data_service``
    workers, running while the block runs (``config`` as is without one)."""
    if not config.data_service:
        yield config
        return
    from keras_art.benchmarks.service_cluster import LocalCluster

    progress(
        f"starting a local tf.data service: 1 dispatcher, {config.data_service} workers"
    )
    with LocalCluster(config.data_service) as cluster:
        yield replace(config, service_address=cluster.address)


def _service_summary(config: PipelineBenchConfig, cpu: dict) -> dict[str, Any]:
    """The trainer process's CPU per image with the service against in-process,
    from the variants' median CPU ms per image (``cpu``)."""
    out: dict[str, Any] = {"workers": config.data_service}
    out["trainer_cpu_ms_per_image"] = cpu[SERVICE]
    if "pipeline" in cpu:
        out["in_process_cpu_ms_per_image"] = cpu["pipeline"]
        out["trainer_cpu_share"] = round(cpu[SERVICE] / cpu["pipeline"], 3)
    return out


def _service_pipeline(images: ClassFolders, config: PipelineBenchConfig):
    """(a) with its images read, decoded and augmented on the local service.

    Each pass over the files is one service job, and starting a job costs about
    two seconds of heartbeats (workers and trainer learn of it on their next one):
    nothing next to a real epoch, most of a pass over a small folder. So the files
    are listed as many times as one timed window needs, one job for all of it."""
    passes = math.ceil(
        _timed_images(config, len(images.files)) * 1.5 / len(images.files)
    )
    many = replace(
        images,
        files=list(images.files) * passes,
        labels=np.tile(images.labels, passes),
    )
    address = f"input.data_service={config.service_address}"
    return _keras_art_pipeline(
        many, replace(config, overrides=(*config.overrides, address))
    )


def _prepared_pipeline(images: ClassFolders, config: PipelineBenchConfig):
    return _keras_art_pipeline(images, config, from_shards=True)


def _decode_ceiling(images: ClassFolders, config: PipelineBenchConfig):
    import tensorflow as tf

    size = [config.image_size, config.image_size]

    def load(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False
        )
        return tf.image.resize(image, size)

    return (
        tf.data.Dataset.from_tensor_slices(images.files)
        .repeat()
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _keras_baseline(images: ClassFolders, config: PipelineBenchConfig):
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        images.root,
        label_mode="categorical",
        image_size=(config.image_size, config.image_size),
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        verbose=False,
    )
    augment = _keras_augmentation(config.seed)
    mix = _keras_mixup_or_cutmix(config.seed)

    # No resnet50.preprocess_input: like (a), the batches stay RGB in [0, 255].
    def batch_ops(x, y):
        return mix(augment(x, training=True), y)

    return (
        ds.repeat()
        .map(batch_ops, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _keras_augmentation(seed: int):
    """Keras layers standing in for seed 000's per-image augmentation."""
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomZoom((-0.4, 0.0), seed=seed),  # ~ crop scale 0.36-1
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomColorJitter(
                value_range=(0, 255),
                brightness_factor=0.2,
                contrast_factor=0.2,
                saturation_factor=(0.4, 0.6),
                hue_factor=0.02,
                seed=seed,
            ),
            keras.layers.RandomErasing(factor=0.25, value_range=(0, 255), seed=seed),
        ]
    )


def _keras_mixup_or_cutmix(seed: int) -> Callable:
    """``(images, labels) -> (images, labels)``: MixUp with p 0.35, else CutMix
    with p 0.35 (of all batches), else unchanged, as seed 000 mixes."""
    import keras
    import tensorflow as tf

    mixup = keras.layers.MixUp(alpha=0.3, seed=seed)
    cutmix = keras.layers.CutMix(factor=1.0, seed=seed)

    def mix(images, labels):
        data = {"images": images, "labels": labels}
        u = tf.random.uniform([])
        data = tf.cond(
            u < 0.35,
            lambda: mixup(data, training=True),
            lambda: tf.cond(u < 0.7, lambda: cutmix(data, training=True), lambda: data),
        )
        return data["images"], data["labels"]

    return mix


# Builds one variant's infinite dataset of batches.
VARIANT_BUILDERS: dict[str, Callable[[ClassFolders, PipelineBenchConfig], Any]] = {
    SERVICE: _service_pipeline,
    "pipeline": _keras_art_pipeline,
    "decode_ceiling": _decode_ceiling,
    "keras_baseline": _keras_baseline,
    PREPARED: _prepared_pipeline,
}


# ------------------------------------------------------------------------- helpers
def _with_threads(ds, threads: int):
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    return ds.with_options(options)


def _time(name: str, ds, timed: int, batch_size: int) -> Timing:
    """Time ``timed`` images out of ``ds`` after a warm-up (wall-clock and CPU)."""
    iterator = iter(ds)
    # Skip enough batches that the prefetch/parallel-map buffers filled while the
    # iterator started do not count as throughput.
    warmup = max(3, timed // batch_size // 10)
    progress(f"{name}: warming up ({warmup} batches)")
    for _ in range(warmup):
        next(iterator)
    cpu = time.process_time()  # all threads of this process
    seen, start, last = 0, time.perf_counter(), time.perf_counter()
    while seen < timed:
        element = next(iterator)
        images = element[0] if isinstance(element, tuple) else element
        seen += int(images.shape[0])
        now = time.perf_counter()
        if now - last > 5:
            progress(f"{name}: {seen}/{timed} images, {seen / (now - start):.1f}/s")
            last = now
    elapsed = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu) * 1000 / seen
    progress(
        f"{name}: {seen / elapsed:.1f} images/s ({seen} in {elapsed:.1f} s), "
        f"{cpu_ms:.2f} CPU ms/image"
    )
    return Timing(seen / elapsed, round(elapsed, 2), round(cpu_ms, 3))


def _time_on_device_ops(
    images: ClassFolders, config: PipelineBenchConfig, batches: int = 20
) -> dict[str, Any] | None:
    """With ``--set augment.on_device=true``: what the ops moved out of the pipeline
    cost in the train step (`make_batch_augment` as a tf.function on this
    process's default device, on batches of variant (a)); None otherwise."""
    import tensorflow as tf

    from keras_art.data.pipeline.batch_augment import make_batch_augment

    fn = make_batch_augment(*config.recipe())
    if fn is None:
        return None
    data = list(_keras_art_pipeline(images, config).take(4))
    step = tf.function(fn)
    for i, (x, y, w) in enumerate(data):  # trace and warm up
        step(x, y, w, tf.constant([config.seed, i], tf.int64))
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(batches):
        x, y, w = data[i % len(data)]
        out = step(x, y, w, tf.constant([config.seed, i], tf.int64))
    float(tf.reduce_sum(out[0][0, 0]))  # wait for the device
    n = batches * config.batch_size
    spec = tf.DeviceSpec.from_string(out[0].device)
    device = f"{spec.device_type or 'CPU'}:{spec.device_index or 0}"
    return {
        "ops": fn.ops,
        "device": device,
        "ms_per_image": round((time.perf_counter() - start) * 1000 / n, 3),
        "cpu_ms_per_image": round((time.process_time() - cpu) * 1000 / n, 3),
        "note": "the ops augment.on_device runs in the train step instead of in "
        "tf.data, timed here on this device; on a GPU they leave the CPU",
    }


def _ratios(rates: dict[str, float]) -> dict[str, float]:
    """``pipeline`` (and `PREPARED`) over each reference measured alongside it."""
    out = {}
    pairs = [("pipeline", "decode_ceiling"), ("pipeline", "keras_baseline")]
    pairs += [(PREPARED, "decode_ceiling"), (PREPARED, "pipeline")]
    for name, ref in pairs:
        if rates.get(name) and rates.get(ref):
            out[f"{name}_vs_{ref}"] = round(rates[name] / rates[ref], 3)
    return out


def _ratios_by_round(values: dict[str, list[float]]) -> list[dict[str, float]]:
    rounds = len(next(iter(values.values())))
    return [_ratios({k: v[r] for k, v in values.items()}) for r in range(rounds)]


def _median(values) -> float:
    return float(np.median(values))


def _median_ratios(per_round: list[dict]) -> dict:
    """Each ratio's median over the rounds (a round's ratio pairs runs made
    back to back, so it is steadier than a ratio of medians)."""
    keys = {k for r in per_round for k in r}
    return {k: round(_median([r[k] for r in per_round if k in r]), 3) for k in keys}


# ------------------------------------------------------------------------- data
def list_class_folders(data_dir: str) -> ClassFolders:
    """Images of a ``DIR/<class>/*`` tree, listed by the folder reader a run uses
    (`keras_art.data.sources.folder`), so the bench sees the files training sees."""
    from keras_art.data.sources.folder import read_folder_dir

    # The reader labels one task; which one does not matter to a bench.
    catalog = read_folder_dir(Path(data_dir).expanduser(), task="style")
    return ClassFolders(
        str(Path(data_dir).expanduser()),
        list(catalog.files),
        np.asarray(catalog.labels["style"], np.int64),
        list(catalog.class_names["style"]),
    )


def generate_large_jpegs(
    n: int,
    size: tuple[int, int] = (1600, 1200),
    cache_dir: str | None = None,
    seed: int = 0,
    kind: str = "noise",
) -> Path:
    """Write ``n`` painting-like JPEGs of ``size`` (W, H) and ``kind`` (see
    `GENERATED_KINDS`) into an imbalanced class-folder tree under the cache;
    reused when already complete."""
    from PIL import Image

    from keras_art.config import default_cache_dir

    if n < 1:
        raise UserError(f"--generate-large {n}: pass a positive number of images.")
    if kind not in GENERATED_KINDS:
        raise UserError(f"--kind {kind}: choose from {', '.join(GENERATED_KINDS)}.")
    w, h = size
    tag = "" if kind == "noise" else f"{kind}-"  # noise keeps the older cache name
    root = (
        Path(cache_dir or default_cache_dir()) / f"bench-large-{tag}{n}-{w}x{h}-s{seed}"
    )
    if is_complete(root):
        progress(f"reusing {n} generated {w}x{h} JPEGs in {root}")
        return root
    progress(f"generating {n} {w}x{h} JPEGs in {root}")

    def build(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        bounds = np.cumsum(GENERATED_SHARES)
        for i in range(n):
            k = int(np.searchsorted(bounds, (i + 0.5) / n))
            folder = tmp / f"class_{k}"
            folder.mkdir(parents=True, exist_ok=True)
            image = _painting(rng, h, w, kind)
            Image.fromarray(image).save(folder / f"{i:05d}.jpg", quality=90)
            if (i + 1) % 50 == 0:
                progress(f"generated {i + 1}/{n}")

    # Built beside its place and renamed into it: a stopped run leaves no
    # half-filled folder that a later one would take for complete.
    return build_dir_once(root, build)


def _painting(rng, h: int, w: int, kind: str = "noise") -> np.ndarray:
    """Multi-octave colour noise plus grain: JPEG sizes like photographed canvases
    (``noise``) or clean scans (``smooth``)."""
    from PIL import Image

    octaves, grain = GENERATED_KINDS[kind]
    canvas = np.zeros((h, w, 3), np.float32)
    for cells, amp in octaves:
        small = rng.random((cells, max(1, cells * w // h), 3)) * 255
        layer = Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.BICUBIC)
        canvas += (np.asarray(layer, np.float32) - 127.5) * (amp / 127.5)
    canvas += 127.5 + rng.normal(0.0, grain, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)
