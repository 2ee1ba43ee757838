"""Benchmark: the first thing to run on a new GPU host.

python -m keras_art.bench gpu --json gpu.json

Sections (each its own key; one that fails holds ``{"error": ...}`` and the others
still run):

- ``devices``: physical devices, TensorFlow's CUDA/cuDNN build, each GPU's name and
  compute capability, ``nvidia-smi``'s line per GPU.
- ``cudnn``: whether the GRUs in the cnn_rnn head's Bidirectional layers trace the
  cuDNN kernel (``Cudnn*`` ops found in the traced training step and its function
  library) and the step time with cuDNN over the generic kernel.
- ``precision``: unfrozen train-step ms and images/s of each head at each size in
  float32, mixed_float16 and mixed_bfloat16, and the ratios to float32.
- ``input_bound``: step time fed by the real pipeline (``--data DIR`` or generated
  1024x768 JPEGs) vs by one cached batch, with ``augment.on_device`` off and on.
- ``export``: a SavedModel exported on this device (``--run RUN``, else a smoke run
  trained here) served in a CPU-only subprocess equals the one served here.

With no GPU and none of ``--sizes/--batch-size/--steps`` given, quick CPU settings
are used (``settings.note`` says so) so that the command finishes in minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keras_art.benchmarks import gpu_checks, gpu_timing, progress
from keras_art.benchmarks.gpu_checks import NO_GPU, error_text
from keras_art.benchmarks.gpu_timing import PRECISIONS
from keras_art.registry import HEADS as REGISTRY_HEADS

NAME = "gpu"
HELP = "GPU host check: devices, cuDNN GRUs, mixed precision, input-bound, CPU serving"
GPU_SETTINGS = {"sizes": (224, 384), "batch_size": 32, "steps": 10, "images": 128}
CPU_SETTINGS = {"sizes": (64,), "batch_size": 4, "steps": 2, "images": 16}
CPU_NOTE = f"{NO_GPU}: quick CPU settings"
# The heads timed: the GRU head and the cheapest one, its baseline.
HEADS = tuple(h for h in REGISTRY_HEADS if h in ("cnn_rnn", "gap"))
GENERATED_SIZE = (1024, 768)  # (W, H) of the generated JPEGs of input_bound


@dataclass(frozen=True)
class GpuBenchConfig:
    """What `bench_gpu` runs; ``data_dir``/``run_dir`` None: generated / trained."""

    sizes: tuple[int, ...] = GPU_SETTINGS["sizes"]
    batch_size: int = GPU_SETTINGS["batch_size"]
    steps: int = GPU_SETTINGS["steps"]
    images: int = GPU_SETTINGS["images"]
    num_classes: int = 27  # classes of the precision section's synthetic batches
    heads: tuple[str, ...] = HEADS
    precisions: tuple[str, ...] = tuple(PRECISIONS)
    data_dir: str | None = None
    run_dir: str | None = None
    note: str = ""


def bench_gpu(
    config: GpuBenchConfig = GpuBenchConfig(),
    *,
    train_cfg=None,
    build_fn: Callable | None = None,
) -> dict[str, Any]:
    """Every section of the module docstring, as one dict.

    ``build_fn(head, num_classes, image_size) -> (model, set_trainable, stages)``
    as `keras_art.benchmarks.train_step.bench_train_step` takes (default: the
    configured backbone, random init). ``train_cfg``: the `TrainConfig` timed.
    """
    import tensorflow as tf

    from keras_art.config import TrainConfig

    train_cfg = train_cfg or TrainConfig()
    gpus = len(tf.config.list_physical_devices("GPU"))
    progress(f"gpu: {gpus} GPU(s)" if gpus else f"gpu: {NO_GPU} (CPU only)")
    build = build_fn or _default_build
    sections = {
        "devices": gpu_checks.device_info,
        "cudnn": lambda: gpu_checks.cudnn_check(
            image_size=config.sizes[0],
            batch_size=config.batch_size,
            steps=config.steps,
            gpus=gpus,
        ),
        "precision": lambda: gpu_timing.precision_times(
            heads=config.heads,
            sizes=config.sizes,
            precisions=config.precisions,
            batch_size=config.batch_size,
            steps=config.steps,
            num_classes=config.num_classes,
            train_cfg=train_cfg,
            build_fn=build_fn,
        ),
        "input_bound": lambda: _input_bound(config, train_cfg, build),
        "export": lambda: gpu_checks.export_check(config.run_dir),
    }
    result: dict[str, Any] = {
        "gpu": f"{gpus} GPU(s)" if gpus else NO_GPU,
        "settings": {
            **dataclasses.asdict(config),
            "unfreeze_from": train_cfg.unfreeze_from,
        },
    }
    for name, section in sections.items():
        result[name] = _guarded(name, section)
    return result


def _guarded(name: str, section: Callable[[], dict]) -> dict:
    """``section()``, or ``{"error": ...}`` when it raised (the others still run)."""
    progress(f"gpu: {name}")
    try:
        return section()
    except Exception as e:
        progress(f"gpu: {name} failed: {error_text(e)}")
        return {"error": error_text(e)}


def _default_build(head: str, num_classes: int, image_size: int):
    from keras_art.benchmarks.train_step import _default_build as build

    return build(head, num_classes, image_size)


def _input_bound(config: GpuBenchConfig, train_cfg, build: Callable) -> dict:
    from keras_art.benchmarks.pipeline import generate_large_jpegs, list_class_folders

    data_dir = config.data_dir or str(
        generate_large_jpegs(config.images, GENERATED_SIZE)
    )
    images = list_class_folders(data_dir)
    return {
        "data": data_dir,
        "head": config.heads[0],
        **gpu_timing.input_bound(
            files=images.files,
            labels=images.labels,
            num_classes=len(images.classes),
            head=config.heads[0],
            sizes=config.sizes,
            batch_size=config.batch_size,
            steps=config.steps,
            train_cfg=train_cfg,
            build_fn=build,
        ),
    }


# --------------------------------------------------------------------------- CLI
def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``python -m keras_art.bench gpu``."""
    sizes, batch, steps = (GPU_SETTINGS[k] for k in ("sizes", "batch_size", "steps"))
    parser.add_argument(
        "--sizes", nargs="+", type=_at_least(32), help=f"image sizes (GPU: {sizes})"
    )
    parser.add_argument("--batch-size", type=_at_least(1), help=f"(GPU: {batch})")
    parser.add_argument(
        "--steps", type=_at_least(1), help=f"timed steps (GPU: {steps})"
    )
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    parser.add_argument(
        "--precisions", nargs="+", choices=tuple(PRECISIONS), default=list(PRECISIONS)
    )
    parser.add_argument("--data", help="DIR/<class>/*.jpg for input_bound")
    parser.add_argument(
        "--images", type=_at_least(1), help="generated JPEGs if no --data"
    )
    parser.add_argument(
        "--run", help="finished run to export (default: train a smoke run)"
    )


def run(args: argparse.Namespace) -> dict:
    """Entry point (``keras_art.bench`` registry)."""
    import tensorflow as tf

    from keras_art.errors import UserError

    for flag, path in (("--data", args.data), ("--run", args.run)):
        if path is not None and not tf.io.gfile.isdir(path):
            raise UserError(f"{flag} {path}: no such folder; pass an existing one.")
    explicit = any(v is not None for v in (args.sizes, args.batch_size, args.steps))
    quick = not tf.config.list_physical_devices("GPU") and not explicit
    base = CPU_SETTINGS if quick else GPU_SETTINGS
    config = GpuBenchConfig(
        sizes=tuple(args.sizes or base["sizes"]),
        batch_size=args.batch_size or base["batch_size"],
        steps=args.steps or base["steps"],
        images=args.images or base["images"],
        heads=tuple(args.heads),
        precisions=tuple(args.precisions),
        data_dir=args.data,
        run_dir=args.run,
        note=CPU_NOTE if quick else "",
    )
    return bench_gpu(config)
