"""``bench gpu`` sections that time training: (c) mixed precision vs float32 per
head and size, (d) whether the step waits for its input pipeline.

No TensorFlow at import (the bench registry imports this package's modules).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from keras_art.benchmarks import progress
from keras_art.benchmarks.gpu_checks import error_text

# Keras dtype policies timed by (c) -> the train.mixed_precision of each: the
# inverse of keras_art.training.precision.POLICIES (a test holds them equal), not
# imported from it: keras_art.training's package imports TensorFlow.
PRECISIONS = {
    "float32": "off",
    "mixed_float16": "float16",
    "mixed_bfloat16": "bfloat16",
}
# real-pipeline step time over cached-batch step time above this: input-bound.
INPUT_BOUND_RATIO = 1.1
TASK = "artist"  # the one task the benchmarked models predict


# --------------------------------------------------------------- (c) precision
def precision_times(
    *,
    heads,
    sizes,
    precisions,
    batch_size: int,
    steps: int,
    num_classes: int,
    train_cfg,
    build_fn: Callable | None,
) -> dict[str, Any]:
    """Unfrozen train-step ms and images/s per ``head/size/policy``
    (`keras_art.benchmarks.train_step.bench_train_step`), and each policy's step
    time over float32's. One failing combination is reported, not raised."""
    import keras

    from keras_art.benchmarks.train_step import TrainStepBenchConfig, bench_train_step

    step_ms, images_per_s, errors = {}, {}, {}
    for head in heads:
        for size in sizes:
            for policy in precisions:
                key = f"{head}/{size}/{policy}"
                progress(f"gpu: precision {key}")
                config = TrainStepBenchConfig(
                    heads=(head,),
                    modes=("unfrozen",),
                    image_size=size,
                    batch_size=batch_size,
                    steps=steps,
                    num_classes=num_classes,
                )
                cfg = dataclasses.replace(train_cfg, mixed_precision=PRECISIONS[policy])
                keras.mixed_precision.set_global_policy(policy)
                try:
                    result = bench_train_step(config, train_cfg=cfg, build_fn=build_fn)
                    seconds = result["step_time_s"][f"{head}/unfrozen"]
                    step_ms[key] = round(seconds * 1000, 3)
                    images_per_s[key] = round(batch_size / seconds, 2)
                except Exception as e:  # one combination; the others still run
                    errors[key] = error_text(e)
                finally:
                    keras.mixed_precision.set_global_policy("float32")
    return {
        "step_ms": step_ms,
        "images_per_s": images_per_s,
        "step_time_over_float32": _over_float32(step_ms),
        **({"errors": errors} if errors else {}),
    }


def _over_float32(step_ms: dict[str, float]) -> dict[str, float]:
    """``head/size/policy`` -> its step time over ``head/size/float32``'s."""
    out = {}
    for key, ms in step_ms.items():
        base = step_ms.get(key.rsplit("/", 1)[0] + "/float32")
        if base and not key.endswith("/float32"):
            out[key] = round(ms / base, 3)
    return out


# ------------------------------------------------------------ (d) input-bound
def input_bound(
    *,
    files,
    labels,
    num_classes: int,
    head: str,
    sizes,
    batch_size: int,
    steps: int,
    train_cfg,
    build_fn: Callable,
) -> dict[str, Any]:
    """Per size and ``augment.on_device`` off/on: the step time fed by keras_art's
    training pipeline on ``files`` vs by one cached batch repeated."""
    out = {}
    for size in sizes:
        for on_device in (False, True):
            key = f"{size}/on_device_{'on' if on_device else 'off'}"
            progress(f"gpu: input-bound {key}")
            out[key] = _real_vs_cached(
                files, labels, num_classes, head, size, batch_size, steps,
                on_device, train_cfg, build_fn,
            )  # fmt: skip
    return out


def _real_vs_cached(
    files, labels, num_classes, head, size, batch, steps, on_device, train_cfg, build
) -> dict[str, Any]:
    from keras_art.config import Config
    from keras_art.data.pipeline.batch_augment import make_batch_augment
    from keras_art.data.pipeline.dataset import build_dataset

    cfg = Config()
    cfg.augment.image_size, cfg.input.batch_size = size, batch
    cfg.augment.on_device = on_device
    real = build_dataset(
        files,
        {TASK: labels},
        {TASK: num_classes},
        cfg.augment,
        cfg.input,
        training=True,
        seed=0,
    ).repeat()
    trainer = _unfrozen_trainer(
        build, head, num_classes, size, steps, train_cfg,
        make_batch_augment(cfg.augment, cfg.input),
    )  # fmt: skip
    # One batch held in memory: the same step with no input work at all.
    cached = real.take(1).cache().repeat()
    trainer.train_epoch(real.take(2))  # trace and warm up (both feeds share it)
    trainer.train_epoch(cached.take(1))
    real_s = _seconds_per_step(trainer, real, steps)
    cached_s = _seconds_per_step(trainer, cached, steps)
    return {
        "real_step_ms": round(real_s * 1000, 3),
        "cached_step_ms": round(cached_s * 1000, 3),
        "real_over_cached": round(real_s / cached_s, 3),
        "input_bound": real_s / cached_s > INPUT_BOUND_RATIO,
    }


def _unfrozen_trainer(build, head, num_classes, size, steps, train_cfg, batch_aug):
    from keras_art.training.trainer import Trainer

    model, set_trainable, stages = build(head, num_classes, size)
    set_trainable(model.get_layer("backbone"), train_cfg.unfreeze_from)
    return Trainer(
        model,
        (TASK,),
        train_cfg,
        steps_per_epoch=steps,
        verbose=0,
        stages=stages,
        batch_augment=batch_aug,
    )


def _seconds_per_step(trainer, ds, steps: int) -> float:
    start = time.perf_counter()
    trainer.train_epoch(ds.take(steps))
    return (time.perf_counter() - start) / steps
