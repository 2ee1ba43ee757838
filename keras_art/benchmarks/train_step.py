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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keras_art.errors import UserError
from keras_art.registry import HEADS, MIXED_PRECISION, STRATEGIES

NAME = "train-step"
HELP = "training-step images/s per head: frozen, unfrozen, frozen with feature cache"
MODES = ("frozen", "unfrozen", "frozen_cached")
# multi_worker needs a TF_CONFIG cluster: not something a one-process bench sets up.
BENCH_STRATEGIES = tuple(s for s in STRATEGIES if s != "multi_worker")


@dataclass(frozen=True)
class TrainStepBenchConfig:
    """What `bench_train_step` times: ``steps`` synthetic batches of ``batch_size``
    ``image_size``² images (``num_classes`` artist classes) per head and mode."""

    heads: tuple[str, ...] = HEADS
    modes: tuple[str, ...] = MODES
    image_size: int = 224
    batch_size: int = 16
    steps: int = 10
    num_classes: int = 27

    def validate(self) -> None:
        """Sizes a ResNet-style backbone can run (the CLI's check; tiny test
        models passed as ``build_fn`` may go lower)."""
        if self.image_size < 32 or self.batch_size < 1 or self.steps < 1:
            raise UserError(
                "--image-size must be >= 32, --batch-size and --steps >= 1. "
                f"Received: {self.image_size}, {self.batch_size}, {self.steps}"
            )


@dataclass
class _HeadRun:
    """One head's model under test, and how to freeze its backbone."""

    trainer: Any  # keras_art.training.trainer.Trainer
    backbone: Any  # keras.Model
    set_trainable: Callable  # (backbone, from_stage | None) -> None


def bench_train_step(
    config: TrainStepBenchConfig = TrainStepBenchConfig(),
    *,
    train_cfg=None,
    model_cfg=None,
    strategy=None,
    build_fn: Callable | None = None,
) -> dict:
    """Images/s of a training step for each ``head/mode``; see the module docstring.

    ``build_fn(head, num_classes, image_size) -> (model, set_trainable, stages)``,
    with ``set_trainable(backbone, from_stage)`` and ``stages`` the backbone's
    stage -> layers (what `Trainer` groups the optimizer by), defaults to
    `keras_art.models.classifier.build_classifier` (random init, ``model_cfg``'s
    backbone) with `set_backbone_trainable` and `backbone_stages`. Returns
    ``{"images_per_s": {"<head>/<mode>": ...}, "step_time_s": {...},
    "cnn_rnn_over_gap_step_time": ...,
    "frozen_cache_speedup": ..., "cache_build_s": {...}, "peak_rss_mb": ...,
    "image_size": S, "batch_size": B, ...}``.
    """
    import tensorflow as tf

    from keras_art.config import TrainConfig

    train_cfg = train_cfg or TrainConfig()
    strategy = strategy or tf.distribute.get_strategy()
    build = build_fn or (lambda h, c, s: _default_build(h, c, s, model_cfg))
    data = _synthetic(config)
    step_s, cache_s = {}, {}
    for head in config.heads:
        run = _prepare_head(head, config, build, train_cfg, strategy)
        for mode in config.modes:
            step_s[f"{head}/{mode}"], built_s = _time_mode(
                run, mode, data, config, train_cfg.unfreeze_from
            )
            if built_s is not None:
                cache_s[head] = built_s
        run.trainer._feature_ds = None
    return _report(step_s, cache_s, config, train_cfg, strategy)


# ------------------------------------------------------------------------- steps
def _default_build(head: str, num_classes: int, image_size: int, model_cfg=None):
    from keras_art.config import ModelConfig
    from keras_art.models.backbones import backbone_stages, set_backbone_trainable
    from keras_art.models.classifier import build_classifier

    cfg = dataclasses.replace(model_cfg or ModelConfig(), head=head, weights="none")
    model, _ = build_classifier(cfg, {"artist": num_classes}, image_size=image_size)

    def set_trainable(backbone, from_stage):
        set_backbone_trainable(backbone, cfg.backbone, from_stage)

    stages = backbone_stages(model.get_layer("backbone"), cfg.backbone)
    return model, set_trainable, stages


def _synthetic(config: TrainStepBenchConfig):
    """``config.steps`` copies of one batch of RGB [0, 255] images (what the input
    pipeline yields) with one-hot artist targets."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n, size, classes = config.batch_size, config.image_size, config.num_classes
    images = rng.uniform(0, 255, size=(n, size, size, 3)).astype("float32")
    labels = np.eye(classes, dtype="float32")[rng.integers(0, classes, n)]
    one = tf.data.Dataset.from_tensors(
        (images, {"artist": labels}, {"artist": np.ones(n, "float32")})
    )
    return one.repeat(config.steps)


def _prepare_head(
    head: str, config: TrainStepBenchConfig, build: Callable, train_cfg, strategy
) -> _HeadRun:
    """Build ``head``'s model and `Trainer` in the strategy's scope, backbone frozen."""
    from keras_art.training.trainer import Trainer

    with strategy.scope():
        model, set_trainable, stages = build(
            head, config.num_classes, config.image_size
        )
        backbone = model.get_layer("backbone")
        set_trainable(backbone, None)
        trainer = Trainer(
            model,
            ("artist",),
            train_cfg,
            strategy,
            steps_per_epoch=config.steps,
            verbose=0,
            stages=stages,
        )
    return _HeadRun(trainer, backbone, set_trainable)


def _time_mode(
    run: _HeadRun, mode: str, data, config: TrainStepBenchConfig, unfreeze_from: str
) -> tuple[float, float | None]:
    """Seconds per training step in ``mode``, and the seconds building the feature
    cache took (``frozen_cached`` only, else None)."""
    from keras_art.training.feature_cache import build_feature_cache

    run.set_trainable(run.backbone, unfreeze_from if mode == "unfrozen" else None)
    source, cache_s = data, None
    # Trainer.fit sets this from feature_train_ds; the bench drives train_epoch.
    run.trainer._feature_ds = None
    if mode == "frozen_cached":
        start = time.perf_counter()
        source = build_feature_cache(run.backbone, data, batch_size=config.batch_size)
        cache_s = round(time.perf_counter() - start, 3)
        run.trainer._feature_ds = source
    run.trainer.invalidate_step()
    run.trainer.train_epoch(source.take(2))  # trace + warm up
    start = time.perf_counter()
    run.trainer.train_epoch(source)
    return (time.perf_counter() - start) / config.steps, cache_s


def _report(
    step_s: dict[str, float],
    cache_s: dict[str, float],
    config: TrainStepBenchConfig,
    train_cfg,
    strategy,
) -> dict[str, Any]:
    """The result dict: per ``head/mode`` numbers, the derived ratios, the setup."""
    import keras
    import tensorflow as tf

    from keras_art.system import peak_rss_mb

    images_per_s = {k: round(config.batch_size / s, 2) for k, s in step_s.items()}
    by_mode = _cnn_rnn_over_gap(step_s)
    speedups = _frozen_cache_speedups(images_per_s, config.heads)
    return {
        "images_per_s": images_per_s,
        "step_time_s": {k: round(v, 5) for k, v in step_s.items()},
        "cache_build_s": cache_s,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "steps": config.steps,
        "num_classes": config.num_classes,
        "unfreeze_from": train_cfg.unfreeze_from,
        "dtype_policy": keras.config.dtype_policy().name,
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "replicas": strategy.num_replicas_in_sync,
        **({"cnn_rnn_over_gap_step_time_by_mode": by_mode} if by_mode else {}),
        # The target compares full fine-tuning steps, where the head's share is
        # smallest: report the unfrozen ratio when it was measured.
        "cnn_rnn_over_gap_step_time": by_mode.get("unfrozen", by_mode.get("frozen")),
        "frozen_cache_speedup_by_head": speedups,
        "frozen_cache_speedup": speedups.get(
            "cnn_rnn", next(iter(speedups.values()), None)
        ),
        "peak_rss_mb": peak_rss_mb(),
    }


def _cnn_rnn_over_gap(step_s: dict[str, float]) -> dict[str, float]:
    """mode -> cnn_rnn's step time over gap's, where both were measured."""
    out = {}
    for mode in ("frozen", "unfrozen"):
        a, b = step_s.get(f"cnn_rnn/{mode}"), step_s.get(f"gap/{mode}")
        if a and b:
            out[mode] = round(a / b, 3)
    return out


def _frozen_cache_speedups(images_per_s: dict[str, float], heads) -> dict[str, float]:
    """head -> images/s with the feature cache over images/s without it."""
    return {
        head: round(
            images_per_s[f"{head}/frozen_cached"] / images_per_s[f"{head}/frozen"], 3
        )
        for head in heads
        if f"{head}/frozen_cached" in images_per_s and f"{head}/frozen" in images_per_s
    }


# --------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``python -m keras_art.bench train-step``."""
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--num-classes", type=int, default=27)
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="off")
    parser.add_argument("--strategy", default="auto", choices=BENCH_STRATEGIES)


def run(args: argparse.Namespace) -> dict:
    """Entry point (``keras_art.bench`` registry): set the policy and strategy,
    benchmark, return the result dict."""
    import keras

    from keras_art.config import TrainConfig
    from keras_art.training.strategies import make_strategy
    from keras_art.training.train import POLICIES

    config = TrainStepBenchConfig(
        heads=tuple(args.heads),
        modes=tuple(args.modes),
        image_size=args.image_size,
        batch_size=args.batch_size,
        steps=args.steps,
        num_classes=args.num_classes,
    )
    config.validate()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[args.mixed_precision])
    try:
        return bench_train_step(
            config,
            train_cfg=TrainConfig(mixed_precision=args.mixed_precision),
            strategy=make_strategy(args.strategy),
        )
    finally:
        keras.config.set_dtype_policy(previous)


def main(argv: list[str] | None = None) -> int:
    """Standalone: ``python -m keras_art.benchmarks.train_step [--json OUT]``, the
    same as ``python -m keras_art.bench train-step``."""
    from keras_art.bench import main as bench_main

    return bench_main(["train-step", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
