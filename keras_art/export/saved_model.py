"""`export_saved_model`: a finished run as a SavedModel that TF Serving serves as is.

    python -m keras_art.export --run runs/artist-cnn_rnn-20261122-101500 --out models

writes ``models/<name>/<version>/`` (TF Serving's layout) with four signatures:

- ``serving_default``: ``image_bytes`` (string ``[N]``: JPEG, PNG, BMP, GIF (first
  frame) or WebP files as bytes) -> ``probabilities`` (float32 ``[N, C]``),
  ``top_k_classes`` (string ``[N, k]``), ``top_k_scores`` (float32 ``[N, k]``).
  Each image is decoded and resized inside the graph by
  `keras_art.data.pipeline.decode.decode_and_resize_for_eval`, the function
  evaluation uses, with the run's size and resize mode. Multi-task runs name the
  outputs ``<task>_probabilities``, ``<task>_top_k_classes``, ``<task>_top_k_scores``.
- ``serve_pixels``: ``pixels`` (float32 ``[N, H, W, 3]``, RGB 0-255, any H and W)
  -> the same outputs; the pixels get the run's eval resize
  (`keras_art.data.pipeline.decode.resize_for_eval`).
- ``embedding``: ``image_bytes`` -> ``embedding`` (float32 ``[N, D]``), the head's
  pre-classifier features (retrieval, clustering, the label audit).
- ``metadata``: no inputs -> ``model_json`` (the JSON below), ``tasks`` and
  ``<task>_class_names`` as string tensors.

``<version>/assets.extra/`` (TF Serving's place for files the graph does not read)
holds ``export_metadata.json`` (tasks, class names, input size, resize mode,
backbone, head, the run's metrics, the signatures; not the run's ``model.json``),
``labels_<task>.txt`` (one class per line, in output order) and
``tf_serving_warmup_requests`` (`keras_art.export.warmup`: requests TF Serving
replays before a version takes traffic). The graph needs none of them: class names
are constants inside it.

Calibration: with the run's temperatures (``model.json``) and ``calibration=True``
(the default) every probability and top-k score output is temperature-scaled inside
the graph (`keras_art.models.calibration.apply_temperature_tf`, one T per task);
``export_metadata.json``'s ``calibration`` says so and records T, from which a
reader recovers the raw probabilities exactly (``softmax(log(p) * T)``).
``calibration=False`` exports the raw probabilities (T still recorded, not applied).

The SavedModel loads with TensorFlow alone (no keras_art, no custom objects: the
layers are traced into the graph) and runs on CPU: GRUs are traced without cuDNN,
and an export whose graph still holds a GPU-only op is refused.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from keras_art.atomic_files import atomic_dir, atomic_write_json, atomic_write_text
from keras_art.data.pipeline.decode import decode_and_resize_for_eval, resize_for_eval
from keras_art.errors import ParameterError, UserError
from keras_art.export.graph_scan import describe_signatures, find_gpu_only_ops
from keras_art.export.warmup import plan_warmup, write_warmup_requests
from keras_art.models.calibration import apply_temperature_tf
from keras_art.models.classifier import feature_and_output_model
from keras_art.models.exported import (
    CALIBRATION_KEY,
    METADATA_DIR,
    METADATA_FILE,
    baked_temperature,
    calibration_metadata,
)
from keras_art.models.model_record import ModelRecord
from keras_art.models.run_reader import load_run_model, open_run, read_split
from keras_art.models.walk import all_sublayers
from keras_art.registry import DEFAULT_TOP_K
from keras_art.run_dir import BEST_MODEL_FILE, RunDir
from keras_art.user_input import check_output_folder, check_positive_int

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SIGNATURES = ("serving_default", "serve_pixels", "embedding", "metadata")


def export_saved_model(
    run_dir: str | os.PathLike,
    out_base: str | os.PathLike,
    *,
    name: str | None = None,
    version: int | None = None,
    top_k: int = DEFAULT_TOP_K,
    checkpoint: str = "best",
    calibration: bool = True,
) -> Path:
    """Export the finished run ``run_dir`` to ``out_base/name/version/``.

    Args:
        run_dir: a finished run directory (``best.keras``, ``model.json``,
            ``summary.json``).
        out_base: TF Serving's model base path; created if missing.
        name: the model's name (a folder under ``out_base``). Defaults to the run
            directory's name.
        version: a positive integer. Defaults to one more than the highest
            version already under ``out_base/name`` (1 for the first). An existing
            version is never overwritten.
        top_k: how many classes ``top_k_classes`` / ``top_k_scores`` hold (fewer
            if a task has fewer classes).
        checkpoint: ``"best"`` (``best.keras``) or ``"last"`` (the last epoch).
        calibration: False exports raw probabilities (see the module docstring).

    Returns:
        The version directory written. It appears complete or not at all: it is
        written to a hidden folder beside it (which TF Serving ignores) and renamed.
    """
    start = time.time()
    out_base = check_output_folder(out_base, "out_base")
    run, record = open_run(run_dir, checkpoint)
    check_positive_int(top_k, "top_k")
    name = check_name(name if name is not None else run.path.resolve().name)
    final, version = _version_dir(out_base / name, version)

    model = load_run_model(run, checkpoint)
    disable_cudnn(model)
    metadata = export_metadata(
        run, record, name, version, top_k, checkpoint, calibration=calibration
    )
    warmup, metadata["warmup_requests"] = plan_warmup(_split_files(run, record))
    archive = build_export_archive(model, record, top_k=top_k, metadata=metadata)

    # A hidden staging folder (TF Serving ignores it) renamed into place: the
    # version appears complete or not at all, and an existing one is never replaced.
    with atomic_dir(final, replace=False) as staging:
        archive.write_out(str(staging), verbose=False)
        _refuse_gpu_only_ops(staging)
        if warmup:
            write_warmup_requests(staging, warmup, name)
        _write_metadata_files(staging, metadata, record)
        if final.exists():
            raise UserError(f"{final} appeared while exporting; not overwritten.")
    logger.info("export: %s (version %d of %s, %.0f s)", final, version, name,
                time.time() - start)  # fmt: skip
    return final


def _split_files(run: RunDir, record: ModelRecord) -> list[str]:
    """The run's test images (then validation's) for the warm-up requests; none
    when the run's split file cannot be read."""
    for split in ("test", "val"):
        try:
            files = read_split(run, record, split).files
        except UserError:
            continue
        if files:
            return files
    return []


def _version_dir(model_dir: Path, version: int | None) -> tuple[Path, int]:
    """The folder of ``version`` under ``model_dir`` (None: the next free version)
    and the version; a `ParameterError` naming ``version`` if it exists."""
    version = _next_version(model_dir) if version is None else _check_version(version)
    final = model_dir / str(version)
    if final.exists():
        raise ParameterError(
            f"{final} already exists: versions are never overwritten. Pass another "
            f"{{version}}, or leave it out to write version {_next_version(model_dir)}."
        )
    return final, version


def build_export_archive(model, record: ModelRecord, *, top_k: int, metadata: dict):
    """A `keras.export.ExportArchive` with the four signatures of this module; the
    classifying ones apply the temperatures that ``metadata``'s ``calibration``
    says the export applies (`baked_temperature`)."""

    size, mode = int(record.image_size), record.eval_resize
    temperature = baked_temperature(metadata)
    with_embedding = feature_and_output_model(model)
    embedding_size = int(with_embedding.outputs[1].shape[-1])
    image_spec = tf.TensorSpec([size, size, 3], tf.float32)

    def decode_batch(image_bytes):
        return tf.map_fn(
            lambda one: decode_and_resize_for_eval(one, size, mode),
            image_bytes,
            fn_output_signature=image_spec,
        )

    def if_not_empty(images, run, empty):
        # Convolutions on an empty batch fail on CPU (oneDNN returns the input's
        # shape), so an empty request skips the model and returns empty outputs.
        return tf.cond(tf.size(images) > 0, lambda: run(images), empty)

    def classify(images):
        return if_not_empty(
            images,
            lambda x: named_outputs(
                model(x, training=False), record, top_k, temperature
            ),
            lambda: named_outputs(
                {t: tf.zeros([0, n]) for t, n in record.num_classes().items()},
                record,
                top_k,
            ),
        )

    def serve_bytes(image_bytes):
        return classify(decode_batch(image_bytes))

    def serve_pixels(pixels):
        return classify(resize_for_eval(pixels, size, mode))

    def embedding(image_bytes):
        return if_not_empty(
            decode_batch(image_bytes),
            lambda x: {
                "embedding": tf.cast(with_embedding(x, training=False)[1], tf.float32)
            },
            lambda: {"embedding": tf.zeros([0, embedding_size])},
        )

    model_metadata = _metadata_fn(metadata, record)
    return _archive(serve_bytes, serve_pixels, embedding, model_metadata)


def _metadata_fn(metadata: dict, record: ModelRecord):
    """The ``metadata`` signature's function: the model record as JSON, the tasks
    and every task's class names."""

    def model_metadata():
        out = {
            "model_json": tf.constant(json.dumps(metadata, indent=2)),
            "tasks": tf.constant(record.tasks),
        }
        for task in record.tasks:
            out[f"{task}_class_names"] = tf.constant(record.class_names[task])
        return out

    return model_metadata


def _archive(serve_bytes, serve_pixels, embedding, model_metadata):
    """An ExportArchive with the four functions as its `SIGNATURES`."""
    bytes_spec = tf.TensorSpec([None], tf.string, name="image_bytes")
    # No archive.track(model): the endpoints track the variables they use, and
    # tracking the model as well saves every weight twice (a 2x larger SavedModel).
    archive = keras.export.ExportArchive()
    # The first endpoint is what TF Serving calls when a request names none.
    archive.add_endpoint("serving_default", serve_bytes, [bytes_spec])
    archive.add_endpoint(
        "serve_pixels",
        serve_pixels,
        [tf.TensorSpec([None, None, None, 3], tf.float32, name="pixels")],
    )
    archive.add_endpoint("embedding", embedding, [bytes_spec])
    archive.add_endpoint("metadata", model_metadata, [])
    return archive


def named_outputs(
    probabilities: dict,
    record: ModelRecord,
    top_k: int,
    temperature: dict[str, float] | None = None,
) -> dict:
    """``{task: probs}`` -> the signature's outputs (task-prefixed when multi-task),
    temperature-scaled first when ``temperature`` (task -> T) is given."""

    out = {}
    for task in record.tasks:
        names = record.class_names[task]
        probs = tf.cast(probabilities[task], tf.float32)
        if temperature:
            probs = apply_temperature_tf(probs, temperature[task])
        scores, indices = tf.math.top_k(probs, k=min(top_k, len(names)))
        prefix = "" if len(record.tasks) == 1 else f"{task}_"
        out[f"{prefix}probabilities"] = probs
        out[f"{prefix}top_k_classes"] = tf.gather(tf.constant(names), indices)
        out[f"{prefix}top_k_scores"] = scores
    return out


def disable_cudnn(model) -> int:
    """Make every GRU/LSTM in ``model`` trace its portable (CPU) kernel.

    With a GPU visible, Keras traces an eligible GRU as a ``CudnnRNNV3`` op that no
    CPU can run (keras 18504); ``use_cudnn=False`` given at construction is lost
    inside ``Bidirectional`` (keras 21533), so it is set on the live layers here,
    after loading. Returns how many layers were changed.
    """

    changed = 0
    for layer in _recurrent_layers(model):
        if layer.use_cudnn is not False:
            layer.use_cudnn = False
            changed += 1
    return changed


def _recurrent_layers(model):
    """Every GRU/LSTM in ``model``, through public attributes: nested models'
    ``.layers``, `DirectionalBiGRU.bigrus` and ``Bidirectional``'s forward and
    backward copies (which ``.layers`` does not reach)."""

    rnn = (keras.layers.GRU, keras.layers.LSTM)
    for layer in all_sublayers(model):
        wrappers = list(getattr(layer, "bigrus", ()))
        if isinstance(layer, keras.layers.Bidirectional):
            wrappers.append(layer)
        for wrapper in wrappers:
            yield wrapper.forward_layer
            yield wrapper.backward_layer
        if isinstance(layer, rnn):
            yield layer


def export_metadata(
    run: str | os.PathLike,
    record: ModelRecord,
    name: str,
    version: int,
    top_k: int,
    checkpoint: str,
    *,
    calibration: bool = True,
) -> dict[str, Any]:
    """What ``assets.extra/export_metadata.json`` and the ``metadata`` signature
    hold; its ``calibration`` entry says whether the graph applies the run's
    temperatures (`baked_temperature`)."""

    import keras_art

    run = RunDir(run)
    summary = run.read_summary()
    multi = len(record.tasks) > 1
    return {
        "format": "keras_art.saved_model",
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "tasks": list(record.tasks),
        "class_names": {t: list(record.class_names[t]) for t in record.tasks},
        "num_classes": record.num_classes(),
        "top_k": {t: min(top_k, len(record.class_names[t])) for t in record.tasks},
        "image_size": record.image_size,
        "eval_resize": record.eval_resize,
        "input_range": list(record.input_range),
        "backbone": record.backbone,
        "head": record.head,
        "outputs": {
            t: {
                key: f"{t}_{key}" if multi else key
                for key in ("probabilities", "top_k_classes", "top_k_scores")
            }
            for t in record.tasks
        },
        "signatures": {
            "serving_default": "image_bytes: string [N] (JPEG/PNG/BMP/GIF/WebP)",
            "serve_pixels": "pixels: float32 [N, H, W, 3], RGB 0-255, any H, W",
            "embedding": "image_bytes: string [N] -> embedding float32 [N, D]",
            "metadata": "no inputs -> model_json, tasks, <task>_class_names",
        },
        "metrics": summary.get("metrics", {}),
        "metrics_split_note": summary.get("metrics_split_note", ""),
        "best_epoch": summary.get("best_epoch"),
        "checkpoint": checkpoint,
        CALIBRATION_KEY: _calibration_entry(record, calibration, checkpoint),
        "run": run.path.resolve().name,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {
            "keras_art": keras_art.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }


def _calibration_entry(record: ModelRecord, calibration: bool, checkpoint: str):
    """The metadata's calibration entry: the run's temperatures, applied unless
    ``calibration`` is off or they do not belong to ``checkpoint``."""
    note = ""
    applied = bool(calibration and record.temperature)
    if not record.temperature:
        note = (
            "the run has no temperature (python -m keras_art.evaluate fits one on "
            "val and records it): raw probabilities"
        )
    elif not calibration:
        note = "exported with calibration off: raw probabilities"
    elif checkpoint != "best":
        applied = False
        note = f"the temperature was fitted for {BEST_MODEL_FILE}, not the last epoch"
    if applied:
        logger.info(
            "export: probabilities temperature-scaled (%s)",
            ", ".join(f"{t} T={v:.3f}" for t, v in record.temperature.items()),
        )
    else:
        logger.info("export: not calibrated (%s)", note)
    return calibration_metadata(record.temperature, applied, note)


def _write_metadata_files(version_dir: Path, metadata: dict, record: ModelRecord):
    extra = version_dir / METADATA_DIR
    atomic_write_json(
        extra / METADATA_FILE,
        {**metadata, "signature_defs": describe_signatures(version_dir)},
    )
    for task in record.tasks:
        atomic_write_text(
            extra / f"labels_{task}.txt",
            "".join(f"{c}\n" for c in record.class_names[task]),
        )


def _refuse_gpu_only_ops(version_dir: Path) -> None:
    found = find_gpu_only_ops(version_dir)
    if found:
        where = "; ".join(f"{op} in {', '.join(fns[:3])}" for op, fns in found.items())
        raise UserError(
            f"the exported graph holds GPU-only ops ({where}): it would fail on a "
            f"CPU-only server. Export on a machine without a GPU "
            f"(CUDA_VISIBLE_DEVICES= python -m keras_art.export ...)."
        )


def _next_version(model_dir: Path) -> int:
    versions = [
        int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()
    ]
    return max(versions, default=0) + 1


def _check_version(version) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ParameterError(
            f"{{version}} {version}: pass a positive integer (TF Serving serves the "
            f"highest)."
        )
    return version


def check_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ParameterError(
            f"{{name}} {name!r}: pass a plain folder name (no '/', not starting "
            f"with '.')."
        )
    return name
