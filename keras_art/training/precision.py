"""``train.mixed_precision``: the dtype policy of a run, ``auto`` resolved once.

``auto`` (the default, seed 000's automatic mixed precision) means mixed float16
where TensorFlow sees a GPU and float32 elsewhere: on a CPU float16 maths has no
units of its own, every op casts, and a step only gets slower. Entry points resolve
it at run start (`keras_art.training.train.set_global_policies`), before
``config.json`` is written, so a run directory records what ran ("float16" or
"off") and a resume keeps it (a float16 checkpoint holds the loss scale).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# train.mixed_precision (once resolved) -> the Keras dtype policy.
POLICIES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
AUTO = "auto"


def resolve_mixed_precision(value: str, gpus: int | None = None) -> str:
    """``value`` with ``"auto"`` replaced: ``"float16"`` when ``gpus`` (default: the
    GPUs TensorFlow lists) is at least 1, else ``"off"``; other values unchanged."""
    if value != AUTO:
        return value
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    resolved = "float16" if gpus else "off"
    logger.info(
        "train.mixed_precision auto -> %s (%s)",
        resolved,
        f"{gpus} GPU(s) visible" if gpus else "no GPU visible: float16 would only slow",
    )
    return resolved
