"""``bench gpu`` sections that check rather than time: (a) devices, (b) whether the
GRUs run cuDNN, (e) a SavedModel exported here loads and serves on a CPU.

No TensorFlow at import (the bench registry imports this package's modules).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from keras_art.benchmarks import progress

NO_GPU = "no GPU"
NVIDIA_SMI_QUERY = "--query-gpu=name,driver_version,memory.total"
# Seconds the CPU-only subprocess of (e) may take to load and serve the model.
CPU_SERVE_TIMEOUT_S = 300
# Probabilities served on the CPU may differ from this device's by float rounding
# (cuDNN/XLA kernels vs oneDNN); more than this is a real difference.
SERVE_TOLERANCE = 2e-3


def error_text(e: Exception) -> str:
    """``Type: message``, cut to the message's last line (TensorFlow's errors
    carry a traceback of the traced code before it)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"


# ----------------------------------------------------------------- (a) devices
def device_info() -> dict[str, Any]:
    """Physical devices, TensorFlow's CUDA/cuDNN build versions, each GPU's
    details and ``nvidia-smi``'s view (when installed)."""
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    gpus = tf.config.list_physical_devices("GPU")
    out: dict[str, Any] = {
        "devices": [
            f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()
        ],
        "is_cuda_build": bool(build.get("is_cuda_build", False)),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "gpus": [{"name": gpu.name, **_gpu_details(gpu)} for gpu in gpus],
        "nvidia_smi": _nvidia_smi(),
    }
    if not gpus:
        out["note"] = NO_GPU
    return out


def _gpu_details(gpu) -> dict[str, Any]:
    import tensorflow as tf

    details = tf.config.experimental.get_device_details(gpu)
    capability = details.get("compute_capability")
    return {
        "device_name": details.get("device_name"),
        "compute_capability": ".".join(map(str, capability)) if capability else None,
    }


def _nvidia_smi() -> list[str] | str:
    """One CSV line per GPU (name, driver, memory), or why there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "not installed"
    try:
        done = subprocess.run(
            [exe, NVIDIA_SMI_QUERY, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"failed: {e}"
    if done.returncode != 0:
        return f"failed (exit {done.returncode}): {done.stderr.strip()[:200]}"
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


# ------------------------------------------------------------------- (b) cuDNN
def cudnn_check(
    *, image_size: int, batch_size: int, steps: int, gpus: int, model_cfg=None
) -> dict[str, Any]:
    """Trace the cnn_rnn head's training step, scan the graph (and its function
    library) for ``Cudnn*`` ops, and time the step with cuDNN allowed vs forced
    off (`keras_art.export.saved_model.disable_cudnn`)."""
    import dataclasses

    from keras_art.config import ModelConfig
    from keras_art.export.saved_model import disable_cudnn
    from keras_art.models.heads import build_head
    from keras_art.registry import backbone_info

    cfg = dataclasses.replace(model_cfg or ModelConfig(), head="cnn_rnn")
    channels = backbone_info(cfg.backbone).channels
    head = build_head(cfg, channels, {"artist": 27})
    # The backbone's feature map: 1/32 of the image per side.
    side = max(2, image_size // 32)
    x, y = _head_batch(batch_size, side, channels, 27)
    step = head_train_step(head)
    ops = scan_traced_step(step, x, y)
    step_ms = _time_step(step, x, y, steps)
    if not gpus:
        return {
            "cudnn": f"not applicable: {NO_GPU}",
            "cudnn_ops_found": sorted(ops),
            "generic_step_ms": step_ms,
            "feature_map": [batch_size, side, side, channels],
        }
    disable_cudnn(head)
    generic = head_train_step(head)
    generic_ops = scan_traced_step(generic, x, y)
    generic_ms = _time_step(generic, x, y, steps)
    return {
        "cudnn": "used" if ops else "NOT used (generic GRU kernel)",
        "cudnn_ops_found": sorted(ops),
        "cudnn_ops_after_disable": sorted(generic_ops),
        "cudnn_step_ms": step_ms,
        "generic_step_ms": generic_ms,
        "cudnn_over_generic_step_time": round(step_ms / generic_ms, 3),
        "feature_map": [batch_size, side, side, channels],
    }


def head_train_step(head):
    """A fresh ``tf.function`` SGD step of ``head`` on ``(features, one-hot)``
    (fresh, so it traces again after ``use_cudnn`` changes)."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.SGD(0.01)
    optimizer.build(head.trainable_variables)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            probs = head(x, training=True)["artist"]
            loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, probs))
        grads = tape.gradient(loss, head.trainable_variables)
        optimizer.apply_gradients(zip(grads, head.trainable_variables, strict=True))
        return loss

    return step


def scan_traced_step(step, *args) -> dict[str, list[str]]:
    """``Cudnn*`` op types in ``step``'s traced graph and its function library,
    as `keras_art.export.graph_scan.find_gpu_only_ops` reports them."""
    from keras_art.export.graph_scan import find_gpu_only_ops

    graph_def = step.get_concrete_function(*args).graph.as_graph_def()
    return find_gpu_only_ops(graph_def)


def _head_batch(batch: int, side: int, channels: int, classes: int):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, side, side, channels)).astype("float32")
    y = np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]
    return tf.constant(x), tf.constant(y)


def _time_step(step, x, y, steps: int) -> float:
    """Milliseconds per call of ``step`` after one untimed (tracing) call."""
    float(step(x, y))
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(x, y)
    float(loss)  # wait for the device
    return round((time.perf_counter() - start) / steps * 1000, 3)


# --------------------------------------------------- (e) exported here, CPU-served
# Run in a child with CUDA_VISIBLE_DEVICES=-1: loads the SavedModel, serves one
# JPEG through serving_default, prints its devices and probabilities as JSON.
_CPU_SERVE = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
data = open(sys.argv[2], "rb").read()
out = loaded.signatures["serving_default"](image_bytes=tf.constant([data]))
print(json.dumps({
    "gpus": len(tf.config.list_physical_devices("GPU")),
    "probabilities": {k: v.numpy().tolist() for k, v in out.items()
                      if k.endswith("probabilities")},
}))
"""


def export_check(run_dir: str | None) -> dict[str, Any]:
    """Export ``run_dir`` (or a smoke run trained here) on this device, serve one
    JPEG from it in-process and in a CPU-only subprocess; compare."""
    from keras_art.export.saved_model import export_saved_model

    with tempfile.TemporaryDirectory(prefix="keras-art-bench-gpu-") as tmp:
        trained_here = run_dir is None
        if trained_here:
            progress("gpu: training a smoke run to export")
            run_dir = str(_smoke_run(Path(tmp) / "runs"))
        progress(f"gpu: exporting {run_dir}")
        version_dir = export_saved_model(run_dir, Path(tmp) / "export")
        jpeg = _write_jpeg(Path(tmp) / "probe.jpg")
        here = _serve_here(version_dir, jpeg)
        child = _serve_on_cpu(version_dir, jpeg)
    out: dict[str, Any] = {"run": str(run_dir), "trained_here": trained_here}
    if "error" in child:
        return {**out, "ok": False, **child}
    diff = _max_abs_diff(here, child["probabilities"])
    return {
        **out,
        "ok": diff <= SERVE_TOLERANCE and child["gpus"] == 0,
        "cpu_child_gpus": child["gpus"],
        "max_abs_diff": diff,
        "tolerance": SERVE_TOLERANCE,
    }


def _smoke_run(workdir: Path) -> Path:
    from keras_art.config import build_config
    from keras_art.training.train import train

    cfg, _ = build_config(
        "smoke",
        overrides=[f"workdir={workdir}", "run_name=gpu-smoke", "model.weights=none"],
    )
    return Path(train(cfg.validate()).run_dir)


def _write_jpeg(path: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


def _serve_here(version_dir: Path, jpeg: Path) -> dict[str, list]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    out = loaded.signatures["serving_default"](
        image_bytes=tf.constant([jpeg.read_bytes()])
    )
    return {
        k: v.numpy().tolist() for k, v in out.items() if k.endswith("probabilities")
    }


def _serve_on_cpu(version_dir: Path, jpeg: Path) -> dict[str, Any]:
    """The child's JSON, or ``{"error": ...}``; killed after `CPU_SERVE_TIMEOUT_S`."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CPU_SERVE, str(version_dir), str(jpeg)],
            capture_output=True,
            text=True,
            timeout=CPU_SERVE_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"CPU-only load/serve took over {CPU_SERVE_TIMEOUT_S} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": f"CPU-only load/serve failed: {' | '.join(tail)}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _max_abs_diff(a: dict[str, list], b: dict[str, list]) -> float:
    import numpy as np

    if sorted(a) != sorted(b):
        return float("inf")
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)
