"""Benchmark: training-step throughput per head, frozen vs unfrozen vs cached features.

python -m keras_art.bench train-step --image-size 224 --batch-size 32 --json out.json

For each head (cnn_rnn, gap, spp) it times `Trainer` epochs of synthetic batches with
the backbone frozen (stage 1), unfrozen from ``train.unfreeze_from`` (stage 2), and
frozen with the feature cache (the head alone on precomputed feature maps). The first
epoch of each mode traces the step and is not timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from collections.abc import Callable

NAME = "train-step"
HELP = "training-step images/s per head: frozen, unfrozen, frozen with feature cache"
HEADS = ("cnn_rnn", "gap", "spp")
MODES = ("frozen", "unfrozen", "frozen_cached")


def _default_build(head: str, num_classes: int, image_size: int, model_cfg=None):
    from keras_art.config import ModelConfig
    from keras_art.models.backbones import set_backbone_trainable
    from keras_art.models.classifier import build_classifier

    cfg = dataclasses.replace(model_cfg or ModelConfig(), head=head, weights="none")
    model, _ = build_classifier(cfg, {"artist": num_classes}, image_size=image_size)
    return model, set_backbone_trainable


def _synthetic(image_size: int, batch: int, steps: int, classes: int):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, image_size, image_size, 3)).astype("float32")
    labels = np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]
    one = tf.data.Dataset.from_tensors(
        (images, {"artist": labels}, {"artist": np.ones(batch, "float32")})
    )
    return one.repeat(steps)


def bench_train_step(
    heads=HEADS,
    *,
    image_size: int = 224,
    batch_size: int = 16,
    steps: int = 10,
    num_classes: int = 27,
    modes=MODES,
    train_cfg=None,
    model_cfg=None,
    strategy=None,
    build_fn: Callable | None = None,
) -> dict:
    """Images/s of a training step for each ``head/mode``; see the module docstring.

    ``build_fn(head, num_classes, image_size) -> (model, set_trainable)`` defaults
    to `keras_art.models.classifier.build_classifier` (random init) with
    `set_backbone_trainable`. Returns ``{"images_per_s": {"<head>/<mode>": ...},
    "step_time_s": {...}, "cnn_rnn_over_gap_step_time": ..., "frozen_cache_speedup":
    ..., "cache_build_s": {...}, "peak_rss_mb": ..., "image_size": S,
    "batch_size": B, ...}``.
    """
    import keras
    import tensorflow as tf

    from keras_art.config import TrainConfig
    from keras_art.training.feature_cache import build_feature_cache
    from keras_art.training.trainer import Trainer

    train_cfg = train_cfg or TrainConfig()
    strategy = strategy or tf.distribute.get_strategy()
    build = build_fn or (lambda h, c, s: _default_build(h, c, s, model_cfg))
    data = _synthetic(image_size, batch_size, steps, num_classes)
    per_s, step_s, cache_s = {}, {}, {}
    for head in heads:
        with strategy.scope():
            model, set_trainable = build(head, num_classes, image_size)
            backbone = model.get_layer("backbone")
            set_trainable(backbone, None)
            trainer = Trainer(
                model,
                ("artist",),
                train_cfg,
                strategy,
                steps_per_epoch=steps,
                verbose=0,
            )
        for mode in modes:
            source = data
            trainer._feature_ds = None
            if mode == "unfrozen":
                set_trainable(backbone, train_cfg.unfreeze_from)
            else:
                set_trainable(backbone, None)
            if mode == "frozen_cached":
                start = time.perf_counter()
                source = build_feature_cache(backbone, data, batch_size=batch_size)
                cache_s[head] = round(time.perf_counter() - start, 3)
                trainer._feature_ds = source
            trainer.invalidate_step()
            trainer.train_epoch(source.take(2))  # trace + warm up
            start = time.perf_counter()
            trainer.train_epoch(source)
            elapsed = time.perf_counter() - start
            key = f"{head}/{mode}"
            step_s[key] = elapsed / steps
            per_s[key] = round(steps * batch_size / elapsed, 2)
        trainer._feature_ds = None
    result = {
        "images_per_s": per_s,
        "step_time_s": {k: round(v, 5) for k, v in step_s.items()},
        "cache_build_s": cache_s,
        "image_size": image_size,
        "batch_size": batch_size,
        "steps": steps,
        "num_classes": num_classes,
        "unfreeze_from": train_cfg.unfreeze_from,
        "dtype_policy": keras.config.dtype_policy().name,
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "replicas": strategy.num_replicas_in_sync,
    }
    for mode in ("frozen", "unfrozen"):
        a, b = step_s.get(f"cnn_rnn/{mode}"), step_s.get(f"gap/{mode}")
        if a and b:
            result.setdefault("cnn_rnn_over_gap_step_time_by_mode", {})[mode] = round(
                a / b, 3
            )
    by_mode = result.get("cnn_rnn_over_gap_step_time_by_mode", {})
    # The target compares full fine-tuning steps, where the head's share is
    # smallest: report the unfrozen ratio when it was measured.
    result["cnn_rnn_over_gap_step_time"] = by_mode.get(
        "unfrozen", by_mode.get("frozen")
    )
    speedups = {
        head: round(per_s[f"{head}/frozen_cached"] / per_s[f"{head}/frozen"], 3)
        for head in heads
        if f"{head}/frozen_cached" in per_s and f"{head}/frozen" in per_s
    }
    result["frozen_cache_speedup_by_head"] = speedups
    result["frozen_cache_speedup"] = speedups.get(
        "cnn_rnn", next(iter(speedups.values()), None)
    )
    result["peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``python -m keras_art.bench train-step``."""
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--num-classes", type=int, default=27)
    parser.add_argument(
        "--mixed-precision", choices=("off", "float16", "bfloat16"), default="off"
    )
    parser.add_argument(
        "--strategy", default="auto", choices=("auto", "default", "mirrored")
    )


def run(args: argparse.Namespace) -> dict:
    """Entry point (``keras_art.bench`` registry): set the policy and strategy,
    benchmark, return the result dict."""
    import keras

    from keras_art.config import TrainConfig
    from keras_art.training.strategies import make_strategy

    if args.image_size < 32 or args.batch_size < 1 or args.steps < 1:
        from keras_art.errors import UserError

        raise UserError(
            "--image-size must be >= 32, --batch-size and --steps >= 1. Received: "
            f"{args.image_size}, {args.batch_size}, {args.steps}"
        )
    policy = {
        "off": "float32",
        "float16": "mixed_float16",
        "bfloat16": "mixed_bfloat16",
    }
    keras.config.set_dtype_policy(policy[args.mixed_precision])
    try:
        return bench_train_step(
            args.heads,
            image_size=args.image_size,
            batch_size=args.batch_size,
            steps=args.steps,
            num_classes=args.num_classes,
            modes=args.modes,
            train_cfg=TrainConfig(mixed_precision=args.mixed_precision),
            strategy=make_strategy(args.strategy),
        )
    finally:
        keras.config.set_dtype_policy("float32")


def main(argv=None) -> int:
    """Standalone: ``python -m keras_art.benchmarks.train_step [--json OUT]``."""
    from keras_art.io_utils import atomic_write_json

    parser = argparse.ArgumentParser(prog="python -m keras_art.benchmarks.train_step")
    add_arguments(parser)
    parser.add_argument("--json", default=None, help="write the result here")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.json:
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
