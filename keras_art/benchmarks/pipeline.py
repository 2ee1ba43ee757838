"""Input-pipeline throughput: keras_art's training pipeline against two references.

(a) ``pipeline``: `build_dataset` with seed 000's recipe (fused decode +
    RandomResizedCrop, flip, colour jitter, random erasing, class-balanced sampling,
    MixUp/CutMix, ResNet50 normalisation).
(b) ``decode_ceiling``: the same files through read -> full decode -> resize ->
    batch only: what a pipeline that decodes every pixel cannot beat.
(c) ``keras_baseline``: ``keras.utils.image_dataset_from_directory`` + Keras
    preprocessing layers doing the same augmentation (RandomZoom stands in for
    RandomResizedCrop; Keras has no balanced sampler, so none is applied).

Same files, same process. Each variant is timed ``--rounds`` times, the variants
taking turns (a, b, c, a, b, c, ...), so a slow spell of a shared machine hits all
of them alike; the headline numbers are medians over the rounds and the ratios are
medians of the per-round ratios. images/s counts images leaving the pipeline after
a short warm-up; CPU ms/image counts every thread of the process.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.benchmarks import PeakRSS, progress, usable_cores
from keras_art.errors import UserError

NAME = "pipeline"
HELP = "images/s of the training input pipeline vs decode+resize and a Keras baseline"
VARIANTS = ("pipeline", "decode_ceiling", "keras_baseline")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
# Each timed window spans at least this many batches: shorter ones (20 batches,
# ~2.5 s here) moved the pipeline/ceiling ratio by +-5 % from run to run.
MIN_TIMED_BATCHES = 60
# Class shares of the generated set: imbalanced, so the sampler has work to do.
GENERATED_SHARES = (0.4, 0.25, 0.15, 0.12, 0.08)


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


def run(args) -> dict[str, Any]:
    try:
        w, h = (int(v) for v in args.large_size.lower().split("x"))
    except ValueError:
        raise UserError(
            f"--large-size {args.large_size!r}: expected WxH, e.g. 1600x1200."
        ) from None
    return bench_pipeline(
        args.data,
        generate_large=args.generate_large,
        large_size=(w, h),
        image_size=args.image_size,
        batch_size=args.batch_size,
        min_images=args.min_images,
        rounds=args.rounds,
        threads=args.threads,
        seed=args.seed,
        variants=[v.strip() for v in args.variants.split(",") if v.strip()],
        cache_dir=args.cache_dir,
        json_out=None,  # keras_art.bench writes --json
    )


def bench_pipeline(
    data_dir: str | None = None,
    *,
    generate_large: int = 0,
    large_size: tuple[int, int] = (1600, 1200),
    image_size: int = 384,
    batch_size: int = 32,
    min_images: int = 0,
    rounds: int = 3,
    threads: int = 0,
    seed: int = 0,
    variants: list[str] | tuple[str, ...] = VARIANTS,
    cache_dir: str | None = None,
    json_out: str | None = None,
) -> dict[str, Any]:
    """Measure images/s of the three pipelines on one folder; see the module doc.

    Returns (and writes to ``json_out`` when given) ``{"images_per_s": {...},
    "ratios": {...}, "peak_rss_mb": ..., "images": N, "image_size": S,
    "threads": T, ...}``.
    """
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise UserError(
            f"--variants {','.join(variants)}: choose from {', '.join(VARIANTS)}."
        )
    if rounds < 1:
        raise UserError(f"--rounds {rounds}: time each variant at least once.")
    if generate_large:
        data_dir = str(
            generate_large_jpegs(generate_large, large_size, cache_dir, seed)
        )
    if not data_dir:
        raise UserError("bench pipeline needs --data DIR or --generate-large N.")
    files, labels, classes = list_class_folders(data_dir)
    if len(files) < batch_size:
        raise UserError(
            f"{data_dir}: {len(files)} images but --batch-size {batch_size}; "
            f"lower the batch size or add images."
        )
    threads = threads or usable_cores()
    timed = max(min_images or len(files), MIN_TIMED_BATCHES * batch_size)
    timed = math.ceil(timed / batch_size) * batch_size
    progress(
        f"{len(files)} images in {len(classes)} classes from {data_dir}; "
        f"{timed} timed images per variant and round, {rounds} rounds, at "
        f"{image_size}px, batch {batch_size}, {threads} threads"
    )
    builders = {
        "pipeline": lambda: _keras_art_pipeline(
            files, labels, classes, image_size, batch_size, seed
        ),
        "decode_ceiling": lambda: _decode_ceiling(files, image_size, batch_size),
        "keras_baseline": lambda: _keras_baseline(
            data_dir, image_size, batch_size, seed
        ),
    }
    per_round: dict[str, list] = {name: [] for name in variants}
    peaks = dict.fromkeys(variants, 0.0)
    for r in range(rounds):
        for name in variants:
            tag = f"{name} [round {r + 1}/{rounds}]"
            with PeakRSS() as mem:
                ds = _with_threads(builders[name](), threads)
                per_round[name].append(_time(tag, ds, timed, batch_size))
            peaks[name] = round(max(peaks[name], mem.peak_mb), 1)
    rates = {k: _median([t[0] for t in v]) for k, v in per_round.items()}
    cpu = {k: round(_median([t[2] for t in v]), 3) for k, v in per_round.items()}
    rounds_out = {
        "images_per_s": {k: [round(t[0], 2) for t in v] for k, v in per_round.items()},
        "cpu_ms_per_image": {k: [t[2] for t in v] for k, v in per_round.items()},
        "ratios": [
            _ratios({k: v[r][0] for k, v in per_round.items()}) for r in range(rounds)
        ],
        "cpu_ratios": [
            _ratios({k: 1.0 / v[r][2] for k, v in per_round.items() if v[r][2]})
            for r in range(rounds)
        ],
    }
    result = {
        "images_per_s": {k: round(v, 2) for k, v in rates.items()},
        "ratios": _median_ratios(rounds_out["ratios"]),
        # CPU time per image over all threads: steadier than wall-clock when other
        # jobs share the cores; its ratios are the work ratios.
        "cpu_ms_per_image": cpu,
        "cpu_ratios": _median_ratios(rounds_out["cpu_ratios"]),
        "rounds": rounds,
        "per_round": rounds_out,
        "peak_rss_mb": round(max([PeakRSS.lifetime_peak_mb(), *peaks.values()]), 1),
        "peak_rss_mb_by_variant": peaks,
        "seconds": {k: round(sum(t[1] for t in v), 2) for k, v in per_round.items()},
        "images": len(files),
        "images_timed": timed,
        "image_size": image_size,
        "batch_size": batch_size,
        "threads": threads,
        "classes": len(classes),
        "data": str(data_dir),
        "mean_file_kb": round(
            float(np.mean([Path(f).stat().st_size for f in files])) / 1024, 1
        ),
        "recipe": "seed000: RandomResizedCrop(0.35-1) + hflip + colour jitter 0.2/"
        "hue 0.02 + random erasing 0.25 + balanced sampling + MixUp 0.35/CutMix 0.35",
        "note": "wall-clock throughput on a machine shared with other jobs: noisy",
        **_versions(),
    }
    if json_out:
        from keras_art.io_utils import atomic_write_json

        atomic_write_json(json_out, result)
        progress(f"wrote {json_out}")
    return result


# ------------------------------------------------------------------------ variants
def _keras_art_pipeline(files, labels, classes, image_size, batch_size, seed):
    from keras_art.config import AugmentConfig, InputConfig
    from keras_art.data.pipeline.dataset import build_dataset

    augment = AugmentConfig(image_size=image_size)  # seed 000 defaults
    input_cfg = InputConfig(batch_size=batch_size)
    ds = build_dataset(
        files,
        {"style": labels},
        {"style": len(classes)},
        augment,
        input_cfg,
        training=True,
        seed=seed,
    )
    return ds.repeat()


def _decode_ceiling(files, image_size, batch_size):
    import tensorflow as tf

    def load(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False
        )
        return tf.image.resize(image, [image_size, image_size])

    return (
        tf.data.Dataset.from_tensor_slices(files)
        .repeat()
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _keras_baseline(data_dir, image_size, batch_size, seed):
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        data_dir,
        label_mode="categorical",
        image_size=(image_size, image_size),
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        verbose=False,
    )
    augment = keras.Sequential(
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
    mixup = keras.layers.MixUp(alpha=0.3, seed=seed)
    cutmix = keras.layers.CutMix(factor=1.0, seed=seed)

    def batch_ops(images, labels):
        images = augment(images, training=True)
        data = {"images": images, "labels": labels}
        u = tf.random.uniform([])
        data = tf.cond(
            u < 0.35,
            lambda: mixup(data, training=True),
            lambda: tf.cond(u < 0.7, lambda: cutmix(data, training=True), lambda: data),
        )
        images = keras.applications.resnet50.preprocess_input(data["images"])
        return images, data["labels"]

    return (
        ds.repeat()
        .map(batch_ops, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


# ------------------------------------------------------------------------- helpers
def _with_threads(ds, threads):
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    return ds.with_options(options)


def _time(name, ds, timed, batch_size):
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
    return seen / elapsed, round(elapsed, 2), round(cpu_ms, 3)


def _ratios(rates):
    out = {}
    a = rates.get("pipeline")
    if a and rates.get("decode_ceiling"):
        out["pipeline_vs_decode_ceiling"] = round(a / rates["decode_ceiling"], 3)
    if a and rates.get("keras_baseline"):
        out["pipeline_vs_keras_baseline"] = round(a / rates["keras_baseline"], 3)
    return out


def _median(values):
    return float(np.median(values))


def _median_ratios(per_round: list[dict]) -> dict:
    """Each ratio's median over the rounds (a round's ratio pairs runs made
    back to back, so it is steadier than a ratio of medians)."""
    keys = {k for r in per_round for k in r}
    return {k: round(_median([r[k] for r in per_round if k in r]), 3) for k in keys}


def _versions():
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def list_class_folders(data_dir: str) -> tuple[list[str], np.ndarray, list[str]]:
    """Images of a ``DIR/<class>/*`` tree: (files, int labels, class names)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"--data {data_dir}: no such folder. Pass DIR/<class>/*.jpg.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files, labels = [], []
    for k, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(str(f))
                labels.append(k)
    if not files:
        raise UserError(
            f"--data {data_dir}: no images in class folders (DIR/<class>/*.jpg)."
        )
    return files, np.asarray(labels, np.int64), classes


def generate_large_jpegs(
    n: int,
    size: tuple[int, int] = (1600, 1200),
    cache_dir: str | None = None,
    seed: int = 0,
) -> Path:
    """Write ``n`` painting-like JPEGs of ``size`` (W, H) into an imbalanced
    class-folder tree under the cache; reused when already complete."""
    from PIL import Image

    from keras_art.config import default_cache_dir

    if n < 1:
        raise UserError(f"--generate-large {n}: pass a positive number of images.")
    w, h = size
    root = Path(cache_dir or default_cache_dir()) / f"bench-large-{n}-{w}x{h}-s{seed}"
    done = root / ".complete"
    if done.exists():
        progress(f"reusing {n} generated {w}x{h} JPEGs in {root}")
        return root
    progress(f"generating {n} {w}x{h} JPEGs in {root}")
    rng = np.random.default_rng(seed)
    bounds = np.cumsum(GENERATED_SHARES)
    for i in range(n):
        k = int(np.searchsorted(bounds, (i + 0.5) / n))
        folder = root / f"class_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_painting(rng, h, w)).save(folder / f"{i:05d}.jpg", quality=90)
        if (i + 1) % 50 == 0:
            progress(f"generated {i + 1}/{n}")
    done.write_text("ok\n")
    return root


def _painting(rng, h: int, w: int) -> np.ndarray:
    """Multi-octave colour noise plus grain: JPEG sizes like photographed canvases."""
    from PIL import Image

    canvas = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((3, 110.0), (12, 50.0), (48, 30.0), (200, 18.0)):
        small = rng.random((cells, max(1, cells * w // h), 3)) * 255
        layer = Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.BICUBIC)
        canvas += (np.asarray(layer, np.float32) - 127.5) * (amp / 127.5)
    canvas += 127.5 + rng.normal(0.0, 7.0, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)
