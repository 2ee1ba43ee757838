"""Benchmark: training-step throughput per head, frozen vs unfrozen vs cached features.

python -m keras_art.bench train-step --image-size 224 --batch-size 32 --json out.json

For each head (cnn_rnn, gap, spp) it times `Trainer` epochs of synthetic batches with
the backbone frozen (stage 1), unfrozen from ``train.unfreeze_from`` (stage 2), and
frozen with the feature cache (the head alone on precomputed feature maps), and the
eval step (whole model; the head alone on cached features). The first pass of each
mode traces (and, with ``--jit on``, XLA-compiles) the step and is not timed; then
``--rounds`` timed passes, whose median is reported (the CPU may be shared).

``--jit off on`` times both settings of ``train.jit_compile`` in one run: keys of
jit-compiled timings end in ``/jit`` (``cnn_rnn/unfrozen/jit``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keras_art.benchmarks import progress
from keras_art.errors import UserError
from keras_art.registry import HEADS, MIXED_PRECISION, STRATEGIES

NAME = "train-step"
HELP = "training-step images/s per head: frozen, unfrozen, frozen with feature cache"
MODES = ("frozen", "unfrozen", "frozen_cached")
# The eval step does not depend on what trains: timed once for the whole model
# (frozen) and once for the head on cached features.
EVAL_MODES = ("frozen", "frozen_cached")
JIT = {"off": False, "on": True}
JIT_NAME = {v: k for k, v in JIT.items()}
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
    jit: tuple[bool, ...] = (False,)  # train.jit_compile settings to time
    rounds: int = 1  # timed passes per head/mode/jit; the median is reported

    def validate(self) -> None:
        """Sizes a ResNet-style backbone can run (the CLI's check; tiny test
        models passed as ``build_fn`` may go lower)."""
        if min(self.batch_size, self.steps, self.rounds) < 1 or self.image_size < 32:
            raise UserError(
                "--image-size must be >= 32, --batch-size, --steps and --rounds "
                f">= 1. Received: {self.image_size}, {self.batch_size}, "
                f"{self.steps}, {self.rounds}"
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
    ``{"images_per_s": {"<head>/<mode>[/jit]": ...}, "step_time_s": {...},
    "eval_step_time_s": {...}, "per_round": {...}, "cnn_rnn_over_gap_step_time": ...,
    "jit_speedup": {...}, "frozen_cache_speedup": ..., "cache_build_s": {...},
    "peak_rss_mb": ..., "image_size": S, "batch_size": B, ...}``.
    """
    import tensorflow as tf

    from keras_art.config import TrainConfig

    train_cfg = train_cfg or TrainConfig()
    strategy = strategy or tf.distribute.get_strategy()
    build = build_fn or (lambda h, c, s: _default_build(h, c, s, model_cfg))
    data = _synthetic(config)
    rounds: dict[str, list[float]] = {}
    cache_s = {}
    for head in config.heads:
        run = _prepare_head(head, config, build, train_cfg, strategy)
        for jit in config.jit:
            run.trainer.cfg = dataclasses.replace(train_cfg, jit_compile=jit)
            for mode in config.modes:
                progress(f"train-step {head}/{mode} jit={JIT_NAME[jit]}")
                timed = _time_mode(run, mode, data, config, train_cfg.unfreeze_from)
                for kind, seconds in timed.items():
                    if kind == "cache_build":
                        cache_s[head] = seconds
                    else:
                        rounds[_key(kind, head, mode, jit)] = seconds
        run.trainer._feature_ds = None
    return _report(rounds, cache_s, config, train_cfg, strategy)


def _key(kind: str, head: str, mode: str, jit: bool) -> str:
    """``train:cnn_rnn/unfrozen/jit``; the report splits off the kind."""
    return f"{kind}:{head}/{mode}" + ("/jit" if jit else "")


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
) -> dict[str, Any]:
    """``{"train": [s/step per round], "eval": [...] (EVAL_MODES only),
    "cache_build": s (frozen_cached only)}`` for ``mode``."""
    from keras_art.training.feature_cache import build_feature_cache

    run.set_trainable(run.backbone, unfreeze_from if mode == "unfrozen" else None)
    source, out = data, {}
    # Trainer.fit sets this from feature_train_ds; the bench drives train_epoch.
    run.trainer._feature_ds = None
    if mode == "frozen_cached":
        start = time.perf_counter()
        source = build_feature_cache(run.backbone, data, batch_size=config.batch_size)
        out["cache_build"] = round(time.perf_counter() - start, 3)
        run.trainer._feature_ds = source
    run.trainer.invalidate_step()
    out["train"] = _rounds(run.trainer.train_epoch, source, config)
    if mode in EVAL_MODES:
        head_only = mode == "frozen_cached"
        out["eval"] = _rounds(
            lambda ds: run.trainer.evaluate(ds, head_only=head_only), source, config
        )
    return out


def _rounds(epoch: Callable, source, config: TrainStepBenchConfig) -> list[float]:
    """Seconds per step of ``epoch(source)``, once per round, after one untimed
    pass over two batches (tracing, XLA compilation, warm-up)."""
    epoch(source.take(2))
    times = []
    for _ in range(config.rounds):
        start = time.perf_counter()
        epoch(source)
        times.append((time.perf_counter() - start) / config.steps)
    return times


def _report(
    rounds: dict[str, list[float]],
    cache_s: dict[str, float],
    config: TrainStepBenchConfig,
    train_cfg,
    strategy,
) -> dict[str, Any]:
    """The result dict: per ``head/mode[/jit]`` medians, the derived ratios, the
    setup."""
    import statistics

    import keras
    import tensorflow as tf

    from keras_art.runtime_info import peak_rss_mb

    median = {k: statistics.median(v) for k, v in rounds.items()}
    step_s = {k[6:]: v for k, v in median.items() if k.startswith("train:")}
    eval_s = {k[5:]: v for k, v in median.items() if k.startswith("eval:")}
    images_per_s = {k: round(config.batch_size / s, 2) for k, s in step_s.items()}
    by_mode = _cnn_rnn_over_gap(step_s)
    speedups = _frozen_cache_speedups(images_per_s, config.heads)
    return {
        "images_per_s": images_per_s,
        "step_time_s": {k: round(v, 5) for k, v in step_s.items()},
        "eval_step_time_s": {k: round(v, 5) for k, v in eval_s.items()},
        "eval_images_per_s": {
            k: round(config.batch_size / s, 2) for k, s in eval_s.items()
        },
        # Time without jit over time with it: > 1 means XLA is faster.
        "jit_speedup": _jit_speedups({**step_s, **_prefixed("eval:", eval_s)}),
        "per_round": {k: [round(t, 5) for t in v] for k, v in rounds.items()},
        "rounds": config.rounds,
        "jit_compile": [JIT_NAME[j] for j in config.jit],
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
    """mode[/jit] -> cnn_rnn's step time over gap's, where both were measured."""
    out = {}
    for mode in ("frozen", "unfrozen", "frozen/jit", "unfrozen/jit"):
        a, b = step_s.get(f"cnn_rnn/{mode}"), step_s.get(f"gap/{mode}")
        if a and b:
            out[mode] = round(a / b, 3)
    return out


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {prefix + k: v for k, v in values.items()}


def _jit_speedups(seconds: dict[str, float]) -> dict[str, float]:
    """key -> its time without jit over its time with jit, where both ran."""
    return {
        k: round(v / seconds[f"{k}/jit"], 3)
        for k, v in seconds.items()
        if f"{k}/jit" in seconds
    }


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
    parser.add_argument(
        "--jit",
        nargs="+",
        choices=tuple(JIT),
        default=None,
        help="train.jit_compile settings to time, e.g. --jit off on "
        "(default: the config's)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="timed passes; median")


def run(args: argparse.Namespace) -> dict:
    """Entry point (``keras_art.bench`` registry): set the policy and strategy,
    benchmark, return the result dict."""
    import keras

    from keras_art.config import TrainConfig
    from keras_art.training.precision import POLICIES, resolve_mixed_precision
    from keras_art.training.strategies import make_strategy

    jit = [JIT[j] for j in args.jit] if args.jit else [TrainConfig().jit_compile]
    config = TrainStepBenchConfig(
        heads=tuple(args.heads),
        modes=tuple(args.modes),
        image_size=args.image_size,
        batch_size=args.batch_size,
        steps=args.steps,
        num_classes=args.num_classes,
        jit=tuple(dict.fromkeys(jit)),
        rounds=args.rounds,
    )
    config.validate()
    precision = resolve_mixed_precision(args.mixed_precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        return bench_train_step(
            config,
            train_cfg=TrainConfig(mixed_precision=precision),
            strategy=make_strategy(args.strategy),
        )
    finally:
        keras.config.set_dtype_policy(previous)
