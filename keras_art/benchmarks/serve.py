"""Serving latency and throughput: the exported artifacts against plain Keras + PIL.

    python -m keras_art.bench serve --run runs/style-cnn_rnn-20261124-101500 \
        --json /tmp/serve.json

Exports the finished run ``--run`` to a temporary folder as a SavedModel
(`keras_art.export.export_saved_model`) and a float32 TFLite file
(`keras_art.export.tflite.export_tflite`), then, in this one process, on the same
encoded images (``--images DIR``, default the run's test split, read into memory
first so disk reads count nowhere):

- ``savedmodel_bytes``: the ``serving_default`` signature on encoded bytes (decode
  and eval resize run inside the graph, so they are timed);
- ``savedmodel_pixels``: the ``serve_pixels`` signature on pre-resized pixels
  (model only);
- ``keras_pil``: the run's Keras model (``model.predict_on_batch``) on images that
  PIL decoded and resized (timed too), the way a script without keras_art's
  graph would serve;
- ``tflite_with_decode``: TensorFlow decode + eval resize
  (`decode_and_resize_for_eval` in a ``tf.function``) on the caller's side, then
  the TFLite interpreter; ``tflite_model_only``: the interpreter on pre-resized
  pixels.

The exported paths carry the run's temperature (`keras_art.models.calibration`)
inside their graphs, as served; ``keras_pil`` is the raw model. The difference in
work is one LOG and one SOFTMAX over the class scores, nothing next to ResNet50.

Single-image latency (p50/p95 ms over ``--repeats`` calls) for every path and
batch-``--batch`` throughput (images/s over ``--batches`` batches) for the two that
take batches of bytes. Each path is warmed up first, and the timed calls take turns
(path A, B, C, A, B, C, ...) so a slow spell of a shared machine hits all alike.

Then ``savedmodel_bytes``'s throughput at batch sizes 1, 2, 4, ... up to ``--batch``
(the curve TF Serving's batching trades on) and, from it, suggested TF Serving
batching parameters (`keras_art.export.batching`). With ``--export-dir BASE`` the
SavedModel under test is kept as ``BASE/<name>/<version>/`` and the suggestion is
written beside it as ``BASE/<name>/batching_parameters.txt``, ready for
``tensorflow_model_server --enable_batching --batching_parameters_file=...``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.benchmarks import PeakRSS, progress, usable_cores
from keras_art.errors import UserError
from keras_art.registry import IMAGE_SUFFIXES
from keras_art.run_dir import CHECKPOINTS, RunDir

NAME = "serve"
HELP = "serving latency/throughput: SavedModel bytes signature vs Keras+PIL vs TFLite"
LATENCY_PATHS = (
    "savedmodel_bytes",
    "savedmodel_pixels",
    "keras_pil",
    "tflite_with_decode",
    "tflite_model_only",
)
THROUGHPUT_PATHS = ("savedmodel_bytes", "keras_pil")
WARMUP_CALLS = 3
TARGETS = {
    "bytes_over_keras_pil_throughput": ">= 1.0",
    "tflite_over_savedmodel_p50": "< 1.0",
}
NOTES = (
    "savedmodel_bytes and tflite_with_decode include TensorFlow's decode + eval "
    "resize; keras_pil includes PIL's decode + resize; savedmodel_pixels and "
    "tflite_model_only start from pixels already resized by TensorFlow.",
    "PIL vs TensorFlow resize: both bilinear with antialiasing on downscale, but the "
    "filters differ slightly, and PIL decodes a whole JPEG where TensorFlow's "
    "center_crop decodes only the central square (letterbox copies "
    "tf.image.resize_with_pad's bar geometry). pil_vs_tf_pixels measures the gap.",
    "tflite_over_savedmodel_p50 = tflite_with_decode p50 / savedmodel_bytes p50 "
    "(both decode in TensorFlow); tflite_model_only_over_savedmodel_pixels_p50 "
    "compares the models alone.",
)


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, metavar="DIR", help="a finished run")
    p.add_argument(
        "--images",
        metavar="DIR",
        help="images to send, searched recursively (default: the run's test split)",
    )
    p.add_argument("--batch", type=int, default=32, help="batch size for throughput")
    p.add_argument(
        "--repeats", type=int, default=50, help="timed single-image calls per path"
    )
    p.add_argument(
        "--batches", type=int, default=5, help="timed batches per throughput path"
    )
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best")
    p.add_argument(
        "--export-dir",
        metavar="BASE",
        help="keep the SavedModel as BASE/NAME/VERSION and write the suggested "
        "batching_parameters.txt beside it (default: a temporary export)",
    )


def run(args) -> dict[str, Any]:
    # keras_art.bench writes --json.
    return bench_serve(
        args.run,
        images=args.images,
        batch=args.batch,
        repeats=args.repeats,
        batches=args.batches,
        checkpoint=args.checkpoint,
        export_dir=args.export_dir,
    )


def bench_serve(
    run_dir: str,
    *,
    images: str | None = None,
    batch: int = 32,
    repeats: int = 50,
    batches: int = 5,
    checkpoint: str = "best",
    export_dir: str | None = None,
) -> dict[str, Any]:
    """Time the serving paths of the module docstring on one finished run.

    Returns ``{"latency_ms": {path: {"p50", "p95", "mean"}},
    "throughput_images_per_s": {path: ...}, "ratios": {...}, "targets": {...},
    "batch_curve": {batch size: images/s}, "batching": {"parameters", "file"},
    "sizes_mb": {...}, "pil_vs_tf_pixels": {...}, "images": N, ...}``.
    """
    from keras_art.models.run_reader import open_run
    from keras_art.runtime_info import peak_rss_mb, versions

    _check_counts(batch=batch, repeats=repeats, batches=batches)
    run, record = open_run(run_dir, checkpoint)
    files = _image_files(run, record, images)
    data = [Path(f).read_bytes() for f in files]
    progress(
        f"{len(data)} images from {images or 'the run test split'}; "
        f"{record.image_size}px {record.eval_resize}; {repeats} single-image calls "
        f"and {batches} batches of {batch} per path"
    )
    with (
        tempfile.TemporaryDirectory(prefix="keras_art_serve_") as tmp,
        PeakRSS() as mem,
    ):
        paths, facts = _build_paths(
            run, record, data, Path(tmp), checkpoint, export_dir
        )
        latency = _time_latency(paths, data, repeats)
        throughput = _time_throughput(paths, data, batch, batches)
        curve = _time_batch_curve(paths["savedmodel_bytes"], data, batch, batches)
    batching = _batching(curve, latency, facts.pop("saved_model"), export_dir)
    return {
        "latency_ms": latency,
        "throughput_images_per_s": throughput,
        "batch_curve": {str(b): v for b, v in curve.items()},
        "batching": batching,
        "ratios": _ratios(latency, throughput),
        "targets": TARGETS,
        **facts,
        **_settings(run, record, images, len(data), batch, repeats, batches),
        "peak_rss_mb": round(max(peak_rss_mb(), mem.peak_mb), 1),
        "notes": list(NOTES),
        **versions(),
    }


def _settings(run, record, images, n_images, batch, repeats, batches) -> dict:
    """What was timed, for the JSON."""
    return {
        "run": str(run),
        "image_source": images or "test split",
        "images": n_images,
        "image_size": record.image_size,
        "eval_resize": record.eval_resize,
        "backbone": record.backbone,
        "head": record.head,
        "batch": batch,
        "repeats": repeats,
        "batches": batches,
        "keras_call": "model.predict_on_batch",
        "cpu_count": usable_cores(),
        "tflite_threads": usable_cores(),
    }


def _check_counts(**counts: int) -> None:
    """A `UserError` naming the flag of the first count below 1."""
    for name, value in counts.items():
        if value < 1:
            raise UserError(f"--{name} {value}: pass a positive integer.")


# ------------------------------------------------------------------- inputs
def _image_files(run: RunDir, record, images: str | None) -> list[str]:
    if images is None:
        from keras_art.models.run_reader import read_split

        return read_split(run, record, "test").files
    root = Path(images).expanduser()
    if not root.is_dir():
        raise UserError(f"--images {images}: no such folder; pass a folder of images.")
    files = sorted(
        str(p)
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise UserError(
            f"--images {images}: no {'/'.join(IMAGE_SUFFIXES)} files under it."
        )
    return files


def pil_pixels(data: bytes, size: int, mode: str) -> np.ndarray:
    """PIL's take on the run's eval resize: float32 RGB ``[size, size, 3]``, 0-255.

    A second implementation of `keras_art.data.pipeline.decode.resize_for_eval`'s
    modes, on purpose: it is the baseline a PIL-based server would run, so it must not
    call TensorFlow. Same geometry (crop, bars), different resampling; a test keeps it
    within a tolerance of ``resize_for_eval``."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    if mode == "letterbox":
        return _pil_letterbox(image, size)
    if mode == "center_crop":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.BILINEAR), np.float32)


def _pil_letterbox(image, size: int) -> np.ndarray:
    """`tf.image.resize_with_pad`'s geometry (floor of the scaled side, floor of
    the float padding) with PIL's resize, so the black bars fall on the same rows."""
    from PIL import Image

    w, h = image.size
    ratio = max(w / size, h / size)
    new_w, new_h = int(w / ratio), int(h / ratio)
    left, top = int((size - w / ratio) / 2), int((size - h / ratio) / 2)
    out = np.zeros((size, size, 3), np.float32)
    resized = image.resize((new_w, new_h), Image.BILINEAR)
    out[top : top + new_h, left : left + new_w] = np.asarray(resized, np.float32)
    return out


# -------------------------------------------------------------------- paths
def _build_paths(
    run: RunDir,
    record,
    data: list[bytes],
    tmp: Path,
    checkpoint: str,
    export_dir: str | None = None,
) -> tuple[dict[str, Callable[[list[bytes]], Any]], dict[str, Any]]:
    """Export both artifacts (the SavedModel under ``export_dir`` when given);
    return ``{path: call(list of encoded images)}`` and ``{"sizes_mb": ...,
    "pil_vs_tf_pixels": ..., "saved_model": its version folder}`` (how far PIL's
    eval resize is from TensorFlow's on these images)."""
    import tensorflow as tf

    from keras_art.data.pipeline.decode import decode_and_resize_for_eval
    from keras_art.models.exported import tflite_classifier
    from keras_art.models.run_reader import load_run_model

    size, mode = int(record.image_size), record.eval_resize
    saved, tflite_path = _export_both(run, tmp, checkpoint, export_dir)
    loaded = tf.saved_model.load(str(saved))
    by_bytes = loaded.signatures["serving_default"]
    by_pixels = loaded.signatures["serve_pixels"]
    model = load_run_model(run, checkpoint)
    interpreter = tflite_classifier(tflite_path, num_threads=usable_cores())
    decode = tf.function(
        lambda b: decode_and_resize_for_eval(b, size, mode),
        input_signature=[tf.TensorSpec([], tf.string)],
    )
    # Model-only paths start from pixels resized beforehand, out of the timing.
    resized = {b: decode(tf.constant(b)).numpy()[None] for b in data}

    paths = {
        "savedmodel_bytes": lambda bs: by_bytes(image_bytes=tf.constant(bs)),
        "savedmodel_pixels": lambda bs: by_pixels(
            pixels=tf.constant(np.concatenate([resized[b] for b in bs]))
        ),
        "keras_pil": lambda bs: model.predict_on_batch(
            np.stack([pil_pixels(b, size, mode) for b in bs])
        ),
        "tflite_with_decode": lambda bs: interpreter.predict_one(
            decode(tf.constant(bs[0])).numpy()
        ),
        "tflite_model_only": lambda bs: interpreter.predict_one(resized[bs[0]]),
    }
    sizes = {
        "savedmodel": round(_folder_bytes(saved) / 1e6, 2),
        "tflite": round(tflite_path.stat().st_size / 1e6, 2),
    }
    pil_diff = [np.abs(pil_pixels(b, size, mode) - resized[b][0]).mean() for b in data]
    return paths, {
        "sizes_mb": sizes,
        "pil_vs_tf_pixels": _diff_summary(pil_diff),
        "saved_model": saved,
    }


def _export_both(
    run: RunDir, tmp: Path, checkpoint: str, export_dir: str | None
) -> tuple[Path, Path]:
    """The SavedModel (kept under ``export_dir`` when given) and the TFLite file."""
    from keras_art.export import export_saved_model
    from keras_art.export.tflite import export_tflite

    progress("exporting the SavedModel")
    if export_dir is None:
        saved = export_saved_model(run, tmp, name="saved", checkpoint=checkpoint)
    else:
        saved = export_saved_model(run, export_dir, checkpoint=checkpoint)
    progress("exporting the TFLite file")
    tflite_path = export_tflite(run, tmp, name="tflite", checkpoint=checkpoint)
    return saved, tflite_path


def _diff_summary(diffs: list[float]) -> dict[str, float]:
    """Mean |PIL - TensorFlow| pixel difference (0-255 scale) per image."""
    return {
        "mean_abs_diff": round(float(np.mean(diffs)), 3),
        "max_image_mean_abs_diff": round(float(np.max(diffs)), 3),
    }


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------- timing
def _time_latency(paths: dict, data: list[bytes], repeats: int) -> dict[str, dict]:
    """p50/p95/mean ms of one-image calls, the paths taking turns."""
    for name in LATENCY_PATHS:
        for i in range(WARMUP_CALLS):
            paths[name]([data[i % len(data)]])
    progress(f"timing single-image latency ({repeats} calls per path)")
    ms = {name: [] for name in LATENCY_PATHS}
    for i in range(repeats):
        one = [data[i % len(data)]]
        for name in LATENCY_PATHS:
            start = time.perf_counter()
            paths[name](one)
            ms[name].append((time.perf_counter() - start) * 1e3)
    return {name: _percentiles(values) for name, values in ms.items()}


def _time_throughput(
    paths: dict, data: list[bytes], batch: int, batches: int
) -> dict[str, float]:
    """Images/s over ``batches`` full batches per path, the paths taking turns."""
    groups = [
        [data[(b * batch + i) % len(data)] for i in range(batch)]
        for b in range(batches)
    ]
    for name in THROUGHPUT_PATHS:
        paths[name](groups[0])  # trace this batch size
    progress(f"timing throughput ({batches} batches of {batch} per path)")
    seconds = dict.fromkeys(THROUGHPUT_PATHS, 0.0)
    for group in groups:
        for name in THROUGHPUT_PATHS:
            start = time.perf_counter()
            paths[name](group)
            seconds[name] += time.perf_counter() - start
    return {name: round(batch * batches / s, 2) for name, s in seconds.items()}


def _time_batch_curve(
    call: Callable, data: list[bytes], batch: int, batches: int
) -> dict[int, float]:
    """Images/s of ``call`` at batch sizes 1, 2, 4, ... up to ``batch`` (and
    ``batch`` itself), ``batches`` batches each after one warm-up batch."""
    sizes = sorted({2**i for i in range(batch.bit_length()) if 2**i <= batch} | {batch})
    progress(f"timing the batch-size curve {sizes} ({batches} batches each)")
    curve = {}
    for size in sizes:
        groups = [
            [data[(b * size + i) % len(data)] for i in range(size)]
            for b in range(batches + 1)
        ]
        call(groups[0])  # trace this batch size
        start = time.perf_counter()
        for group in groups[1:]:
            call(group)
        curve[size] = round(size * batches / (time.perf_counter() - start), 2)
    return curve


def _batching(
    curve: dict[int, float], latency: dict, saved: Path, export_dir: str | None
) -> dict[str, Any]:
    """The suggested TF Serving batching parameters, written beside a kept export."""
    from keras_art.atomic_files import atomic_write_text
    from keras_art.export.batching import (
        BATCHING_FILE,
        batching_parameters_text,
        suggest_batching,
    )

    params = suggest_batching(curve, latency["savedmodel_bytes"]["p50"], usable_cores())
    text = batching_parameters_text(params, curve, "python -m keras_art.bench serve")
    out = {"parameters": params, "text": text, "file": None}
    if export_dir is not None:
        path = Path(saved).parent / BATCHING_FILE
        atomic_write_text(path, text)
        out["file"] = str(path)
        progress(f"wrote {path}")
    return out


def _percentiles(ms: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p95": round(float(np.percentile(ms, 95)), 3),
        "mean": round(float(np.mean(ms)), 3),
    }


def _ratios(latency: dict, throughput: dict) -> dict[str, float]:
    return {
        "bytes_over_keras_pil_throughput": round(
            throughput["savedmodel_bytes"] / throughput["keras_pil"], 3
        ),
        "tflite_over_savedmodel_p50": round(
            latency["tflite_with_decode"]["p50"] / latency["savedmodel_bytes"]["p50"], 3
        ),
        "tflite_model_only_over_savedmodel_pixels_p50": round(
            latency["tflite_model_only"]["p50"] / latency["savedmodel_pixels"]["p50"],
            3,
        ),
    }
