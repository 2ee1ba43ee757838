"""Distribution strategies by name, and logical CPU devices for tests.

The entry point calls `make_strategy` once, early (before anything touches a device)
and builds the model and optimizer inside ``strategy.scope()``.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from keras_art.errors import ParameterError, UserError
from keras_art.registry import STRATEGIES


def make_strategy(name: str = "auto"):
    """``tf.distribute.Strategy`` for ``name``.

    - ``auto``: MirroredStrategy when more than one GPU is visible, else the default.
    - ``default``: the default (no-op) strategy: one device.
    - ``mirrored``: MirroredStrategy over all local GPUs (or the logical CPUs).
    - ``multi_worker``: MultiWorkerMirroredStrategy from ``TF_CONFIG``; raises
      `UserError` when it is missing or malformed.
    """

    if name not in STRATEGIES:
        raise UserError(
            f"Unknown strategy {name!r}. Choose one of: {', '.join(STRATEGIES)}."
        )
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return (
            tf.distribute.MirroredStrategy()
            if len(gpus) > 1
            else (tf.distribute.get_strategy())
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus)
    validate_tf_config(os.environ.get("TF_CONFIG"))
    return tf.distribute.MultiWorkerMirroredStrategy()


def validate_tf_config(raw: str | None) -> dict:
    """Parse and check ``TF_CONFIG`` for multi-worker training; return it."""
    example = (
        'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    if not raw:
        raise ParameterError(
            f"{{train.strategy}} multi_worker needs TF_CONFIG describing the "
            f"cluster, e.g. {example}"
        )
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"TF_CONFIG is not valid JSON ({exc}). Example: {example}"
        ) from None
    cluster = cfg.get("cluster") if isinstance(cfg, dict) else None
    task = cfg.get("task") if isinstance(cfg, dict) else None
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not workers:
        raise UserError(f"TF_CONFIG has no cluster.worker list. Example: {example}")
    if (
        not isinstance(task, dict)
        or task.get("type") not in ("worker", "chief")
        or not isinstance(task.get("index"), int)
    ):
        raise UserError(
            f"TF_CONFIG needs task.type 'worker' (or 'chief') and an integer "
            f"task.index. Example: {example}"
        )
    pool = cluster.get(task["type"], [])
    if not 0 <= task["index"] < len(pool):
        raise UserError(
            f"TF_CONFIG task.index {task['index']} is outside cluster."
            f"{task['type']} (size {len(pool)})."
        )
    return cfg


def is_chief(strategy=None) -> bool:
    """True on the worker that writes files (always true off multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if task_type is None:
        return True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return _is_chief_task(task_type, resolver.task_id, has_chief)


def is_chief_process(strategy_name: str) -> bool:
    """`is_chief` from ``TF_CONFIG`` alone, before any strategy exists."""
    if strategy_name != "multi_worker":
        return True
    tf_config = validate_tf_config(os.environ.get("TF_CONFIG"))
    task = tf_config["task"]
    return _is_chief_task(task["type"], task["index"], "chief" in tf_config["cluster"])


def _is_chief_task(task_type: str, task_id: int, has_chief: bool) -> bool:
    # TensorFlow's rule: the "chief" task, or worker 0 of a cluster without one.
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and not has_chief


def setup_logical_cpus(n: int = 2) -> list[str]:
    """Split the CPU into ``n`` logical devices; call before TF initialises devices.

    For tests of MirroredStrategy without GPUs (run it in a fresh process).
    """

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
    )
    return [d.name for d in tf.config.list_logical_devices("CPU")]
