"""`export_tflite`: a finished run as one TensorFlow Lite file (phones, edge CPUs).

    python -m keras_art.export --run RUN --out models --format tflite --quantize float16

writes ``models/<name>.tflite`` (``<name>.<quantize>.tflite`` when quantized:
``r.float16.tflite``, ``r.dynamic.tflite``) and beside it ``<same stem>.json``: the
SavedModel's ``export_metadata.json``
(`keras_art.export.saved_model.export_metadata`: tasks, class names, image size,
eval resize, output names, metrics) plus ``format``
(``keras_art.tflite``), ``quantize``, ``input``, ``ops`` (``builtins`` or
``builtins+select_tf_ops``), ``select_tf_ops`` and ``size_bytes``.

The contract (the predict command and ``bench serve`` rely on it): one signature,
``serving_default``, whose input ``pixels`` is float32 ``[1, S, S, 3]``, RGB 0-255,
ALREADY brought to ``S = image_size`` by the run's eval resize on the caller's side
(`keras_art.data.pipeline.decode.decode_and_resize_for_eval`, or `resize_for_eval`
for decoded pixels): a TFLite graph cannot decode images. Its outputs are the
SavedModel's: ``probabilities``, ``top_k_scores`` and ``top_k_classes`` (strings),
``<task>_``-prefixed for multi-task runs, temperature-scaled inside the graph as
in the SavedModel (the sidecar's ``calibration`` says whether; ``calibration=False``
converts the raw ones). Should a converter fail on the string
outputs they are dropped (``dropped_outputs`` in the JSON); the JSON's
``class_names`` are the labels either way.

Why the weights enter the graph as constants (``model.stateless_call``) and not as
variables: the converter freezes variables read in the main graph but leaves those
read inside a GRU's ``while`` loop as ``READ_VARIABLE`` ops that fail at run time
("variable != nullptr"). With constants the cnn_rnn head converts to builtin ops
(its GRUs become a ``WHILE`` op); every conversion is checked by running it once.

`keras_art.models.exported.tflite_classifier` runs a converted file (batch 1 at a
time; the readers share it) and `compare_with_keras` measures its top-1 agreement
with the Keras model on a split.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_art.atomic_files import atomic_write_bytes, atomic_write_json
from keras_art.data.pipeline.eval_images import image_dataset
from keras_art.errors import ParameterError, UserError
from keras_art.export.saved_model import (
    check_name,
    disable_cudnn,
    export_metadata,
    named_outputs,
)
from keras_art.models.calibration import rescale
from keras_art.models.exported import (
    INPUT_NAME,
    NO_FLEX,
    SIGNATURE,
    baked_temperature,
    read_sidecar,
    sidecar_path,
    tflite_classifier,
    tflite_interpreter,
)
from keras_art.models.model_record import ModelRecord
from keras_art.models.run_reader import load_run_model, open_run, read_split
from keras_art.registry import DEFAULT_TOP_K, QUANTIZE_MODES
from keras_art.user_input import check_output_folder, check_positive_int

logger = logging.getLogger(__name__)

FORMAT = "keras_art.tflite"
BUILTINS = "builtins"
SELECT_TF_OPS = "builtins+select_tf_ops"
# (ops, keep string outputs), tried in order until one converts and runs.
CONVERSION_ATTEMPTS = ((BUILTINS, True), (SELECT_TF_OPS, True), (SELECT_TF_OPS, False))
_FLEX_OP = re.compile(r"Op#\d+ Flex(\w+)\(")


@dataclass
class TFLiteConversion:
    """A converted model and how it was converted."""

    content: bytes
    ops: str  # BUILTINS or SELECT_TF_OPS
    select_tf_ops: list[str] = field(default_factory=list)  # TF op names run by Flex
    dropped_outputs: list[str] = field(default_factory=list)


def export_tflite(
    run_dir: str | os.PathLike,
    out_base: str | os.PathLike,
    *,
    name: str | None = None,
    quantize: str = "none",
    checkpoint: str = "best",
    top_k: int = DEFAULT_TOP_K,
    calibration: bool = True,
) -> Path:
    """Convert the finished run ``run_dir`` to ``out_base/<name>[.<quantize>].tflite``.

    Args:
        run_dir: a finished run directory.
        out_base: the folder to write to; created if missing.
        name: the file's stem. Defaults to the run directory's name.
        quantize: one of `QUANTIZE_MODES`: ``none`` (float32), ``float16`` (float16
            weights, float32 compute) or ``dynamic`` (int8 weights, dynamic-range).
        checkpoint: ``"best"`` or ``"last"``.
        top_k: how many classes the top-k outputs hold.
        calibration: apply the run's temperature scaling inside the graph;
            False converts the raw probabilities.

    Returns:
        The ``.tflite`` path. It and its ``.json`` sidecar are each written to a
        temporary file and renamed over any earlier export of the same name.
    """

    start = time.time()
    out_base = check_output_folder(out_base, "out_base")
    run, record = open_run(run_dir, checkpoint)
    quantize = check_quantize(quantize)
    check_positive_int(top_k, "top_k")
    name = check_name(name if name is not None else run.path.resolve().name)
    path = out_base / tflite_file_name(name, quantize)

    model = load_run_model(run, checkpoint)
    # version None: TF Serving's version folders do not apply to one file.
    base = export_metadata(
        run, record, name, None, top_k, checkpoint, calibration=calibration
    )
    converted = convert_to_tflite(
        model,
        record,
        quantize=quantize,
        top_k=top_k,
        temperature=baked_temperature(base),
    )
    metadata = tflite_metadata(base, record, converted, quantize)
    atomic_write_bytes(path, converted.content)
    atomic_write_json(sidecar_path(path), metadata)
    logger.info(
        "export: %s (%.2f MB, quantize %s, %.0f s)",
        path,
        len(converted.content) / 1e6,
        quantize,
        time.time() - start,
    )
    return path


def tflite_file_name(name: str, quantize: str) -> str:
    """``<name>.tflite``, or ``<name>.<quantize>.tflite`` when quantized."""
    return f"{name}.tflite" if quantize == "none" else f"{name}.{quantize}.tflite"


def check_quantize(mode: str) -> str:
    """``mode`` or a `ParameterError` naming ``quantize`` and `QUANTIZE_MODES`."""
    if mode not in QUANTIZE_MODES:
        raise ParameterError(
            f"{{quantize}} {mode}: choose one of {', '.join(QUANTIZE_MODES)}."
        )
    return mode


# ------------------------------------------------------------------ conversion
def convert_to_tflite(
    model,
    record: ModelRecord,
    *,
    quantize: str = "none",
    top_k: int = DEFAULT_TOP_K,
    temperature: dict[str, float] | None = None,
) -> TFLiteConversion:
    """Convert a `build_classifier` model to the TFLite contract of this module
    (outputs scaled by ``temperature``, task -> T, when given).

    TFLite builtin ops first; only if that conversion (or its test run) fails,
    again with TensorFlow ops as a Flex fallback, and as a last resort without the
    string outputs. Raises `UserError` when nothing converts.
    """
    check_quantize(quantize)
    disable_cudnn(model)
    functions = {}
    errors = []
    for ops, with_classes in CONVERSION_ATTEMPTS:
        if with_classes not in functions:
            functions[with_classes] = serving_function(
                model,
                record,
                top_k=top_k,
                with_classes=with_classes,
                temperature=temperature,
            )
        fn = functions[with_classes]
        try:
            content = _converter(fn, quantize, ops).convert()
            _test_run(content, int(record.image_size))
        # The converter raises ConverterError, the interpreter RuntimeError or
        # ValueError; any failure means: try the next way.
        except Exception as exc:  # noqa: BLE001
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            errors.append(f"{ops}: {first_line}")
            logger.info("tflite: %s did not convert (%s)", ops, first_line[:200])
            continue
        dropped = [] if with_classes else _string_outputs(functions[True])
        converted = TFLiteConversion(content, ops, flex_ops(content), dropped)
        logger.info(
            "tflite: converted with %s%s%s",
            ops,
            f", Flex ops {', '.join(converted.select_tf_ops)}"
            if converted.select_tf_ops
            else "",
            f", without {', '.join(dropped)}" if dropped else "",
        )
        return converted
    raise UserError(
        "the model does not convert to TFLite ("
        + "; ".join(errors)
        + "). Export a SavedModel (export_saved_model) instead."
    )


def serving_function(
    model,
    record: ModelRecord,
    *,
    top_k: int = DEFAULT_TOP_K,
    with_classes: bool = True,
    temperature: dict[str, float] | None = None,
):
    """The concrete ``serving_default``: ``pixels`` float32 ``[1, S, S, 3]`` ->
    `named_outputs` (without the string ones unless ``with_classes``; scaled by
    ``temperature`` when given).

    The weights are graph constants (see the module docstring for why)."""

    trainable = [v.numpy() for v in model.trainable_variables]
    non_trainable = [v.numpy() for v in model.non_trainable_variables]

    def serve(pixels):
        probabilities, _ = model.stateless_call(
            [tf.constant(w) for w in trainable],
            [tf.constant(w) for w in non_trainable],
            pixels,
            training=False,
        )
        out = named_outputs(probabilities, record, top_k, temperature)
        return {k: v for k, v in out.items() if with_classes or v.dtype != tf.string}

    size = int(record.image_size)
    spec = tf.TensorSpec([1, size, size, 3], tf.float32, name=INPUT_NAME)
    return tf.function(
        serve, input_signature=[spec], autograph=False
    ).get_concrete_function()


def _converter(fn, quantize: str, ops: str):

    # A trackable object makes the converter go through a SavedModel, which keeps
    # the signature's name and input/output names (the frozen-graph path drops
    # them). The function holds no variables, so an empty module does.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if ops == SELECT_TF_OPS:
        converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def _test_run(content: bytes, image_size: int) -> None:
    """Run the converted model once on black pixels; raise if it fails.

    A model with Flex ops passes when the only failure is that this interpreter
    lacks the Flex delegate (tensorflow-cpu's does): a Flex-enabled runtime runs it.
    """
    try:
        runner = tflite_interpreter(model_content=content).get_signature_runner(
            SIGNATURE
        )
        runner(**{INPUT_NAME: np.zeros([1, image_size, image_size, 3], np.float32)})
    except RuntimeError as exc:
        if NO_FLEX not in str(exc):
            raise
        logger.warning(
            "tflite: this TensorFlow's interpreter cannot run Flex ops; the file "
            "needs a runtime with the Flex delegate (not tested here)."
        )


def _string_outputs(fn) -> list[str]:
    return sorted(
        k for k, spec in fn.structured_outputs.items() if spec.dtype == tf.string
    )


def flex_ops(content: bytes) -> list[str]:
    """The TensorFlow ops a converted model runs through Flex (``FlexErf`` ->
    ``Erf``), sorted; empty for a builtins-only model."""

    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        tf.lite.experimental.Analyzer.analyze(model_content=content)
    return sorted(set(_FLEX_OP.findall(report.getvalue())))


def tflite_metadata(
    saved_model_metadata: dict[str, Any],
    record: ModelRecord,
    converted: TFLiteConversion,
    quantize: str,
) -> dict[str, Any]:
    """The sidecar JSON: the SavedModel's metadata, adapted to the one signature."""
    size = int(record.image_size)
    outputs = {
        task: {
            key: name
            for key, name in names.items()
            if name not in converted.dropped_outputs
        }
        for task, names in saved_model_metadata["outputs"].items()
    }
    return {
        **saved_model_metadata,
        "format": FORMAT,
        "quantize": quantize,
        "input": {
            "name": INPUT_NAME,
            "dtype": "float32",
            "shape": [1, size, size, 3],
            "range": list(record.input_range),
            "channels": "RGB",
            "preprocessing": (
                f"the caller decodes and applies the eval resize "
                f"({record.eval_resize} to {size}x{size}: keras_art.data.pipeline"
                f".decode.decode_and_resize_for_eval); the model normalises"
            ),
        },
        "outputs": outputs,
        "signatures": {
            SIGNATURE: f"{INPUT_NAME}: float32 [1, {size}, {size}, 3], RGB 0-255, "
            f"eval-resized -> "
            + ", ".join(n for t in outputs.values() for n in t.values())
        },
        "ops": converted.ops,
        "select_tf_ops": list(converted.select_tf_ops),
        "dropped_outputs": list(converted.dropped_outputs),
        "size_bytes": len(converted.content),
    }


# ------------------------------------------------------------------ agreement
def compare_with_keras(
    run_dir: str | os.PathLike,
    tflite_path: str | os.PathLike,
    *,
    split: str = "test",
    limit: int | None = None,
    checkpoint: str = "best",
) -> dict[str, Any]:
    """Top-1 of the TFLite file against the run's Keras model on ``split``.

    Both see the same eval-resized pixels (`keras_art.data.pipeline.eval_images
    .image_dataset`). Returns ``{"split", "n", "tasks": {task: {"top1_keras",
    "top1_tflite", "agreement", "max_abs_prob_diff", "labelled"}}}`` plus the same
    four keys at the top: accuracies averaged over tasks, the lowest agreement and
    the largest difference. Top-1 counts only images whose label the model knows.
    The Keras probabilities get the temperatures the file applies (its sidecar's
    ``calibration``), so the difference measures the conversion alone.
    """

    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ParameterError(f"{{limit}} {limit}: pass a positive number of images.")
    run, record = open_run(run_dir, checkpoint)
    rows = read_split(run, record, split)
    files = rows.files[:limit] if limit else rows.files
    sidecar = read_sidecar(tflite_path)
    names, baked = sidecar["outputs"], baked_temperature(sidecar) or {}
    classifier = tflite_classifier(tflite_path)
    if classifier.image_size != record.image_size:
        raise UserError(
            f"{tflite_path}: takes {classifier.image_size} px, the run "
            f"{record.image_size} px; pass the run it was exported from."
        )
    model = load_run_model(run, checkpoint)
    keras_probs = {t: [] for t in record.tasks}
    tflite_probs = {t: [] for t in record.tasks}
    for batch in image_dataset(files, record.image_size, record.eval_resize):
        expected = model(batch, training=False)
        got = classifier(batch.numpy())
        for task in record.tasks:
            keras_probs[task].append(
                rescale(expected[task], baked=None, wanted=baked.get(task))
            )
            tflite_probs[task].append(got[names[task]["probabilities"]])
    per_task = {
        task: _agreement(
            np.concatenate(keras_probs[task]),
            np.concatenate(tflite_probs[task]),
            rows.labels[task][: len(files)],
        )
        for task in record.tasks
    }
    return {
        "split": rows.name,
        "n": len(files),
        "top1_keras": _mean(per_task, "top1_keras"),
        "top1_tflite": _mean(per_task, "top1_tflite"),
        "agreement": min(r["agreement"] for r in per_task.values()),
        "max_abs_prob_diff": max(r["max_abs_prob_diff"] for r in per_task.values()),
        "tasks": per_task,
    }


def _agreement(keras_p: np.ndarray, tflite_p: np.ndarray, labels: np.ndarray) -> dict:
    k, t = keras_p.argmax(1), tflite_p.argmax(1)
    known = labels >= 0
    return {
        "top1_keras": _rate(k[known] == labels[known]),
        "top1_tflite": _rate(t[known] == labels[known]),
        "agreement": _rate(k == t),
        "max_abs_prob_diff": float(np.abs(keras_p - tflite_p).max(initial=0.0)),
        "labelled": int(known.sum()),
    }


def _rate(hits: np.ndarray) -> float:
    return round(float(hits.mean()), 4) if hits.size else float("nan")


def _mean(per_task: dict, key: str) -> float:
    return round(float(np.mean([r[key] for r in per_task.values()])), 4)
