"""The exported files' shared format: what `keras_art.export` writes and the readers
(`keras_art.inference`, ``bench serve``) read, so that neither imports the other.

- SavedModel: the metadata JSON at ``<version>/assets.extra/export_metadata.json``
  (`METADATA_DIR`, `METADATA_FILE`; its own schema, not the run's ``model.json``).
- TFLite: the ``serving_default`` signature on ``pixels`` (float32 ``[1, S, S, 3]``,
  RGB 0-255, already eval-resized), the sidecar JSON beside the file
  (`sidecar_path`, `read_sidecar`), and `tflite_classifier`, which runs a file one
  image at a time (export checks its conversion with it, predict and the serve
  bench serve with it) on the interpreter `tflite_runtime` picks: LiteRT where
  ``ai-edge-litert`` is installed, else `tf.lite`. See `keras_art.export.tflite`
  for why the file looks so.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_art.errors import UserError

METADATA_DIR = "assets.extra"
METADATA_FILE = "export_metadata.json"
# The name before 0.1.0's #20 (it clashed with the run's model.json): exports made
# then still load.
LEGACY_METADATA_FILE = "model.json"

SIGNATURE = "serving_default"
INPUT_NAME = "pixels"
# The message of an interpreter built without the Flex delegate (tensorflow-cpu's).
NO_FLEX = "Select TensorFlow op"
CALIBRATION_KEY = "calibration"
CALIBRATION_METHOD = "temperature_scaling"


def calibration_metadata(
    temperature: dict[str, float] | None, applied: bool, note: str = ""
) -> dict[str, Any]:
    """The metadata's ``calibration`` entry: the run's ``temperature`` (task -> T,
    None when the run has none) and whether the exported graph ``applied`` it to
    its outputs (probabilities and top-k scores)."""
    return {
        "method": CALIBRATION_METHOD if temperature else "none",
        "temperature": dict(temperature) if temperature else None,
        "applied": bool(applied and temperature),
        "fitted_on": "val split, by negative log-likelihood" if temperature else None,
        "definition": (
            "p_calibrated = softmax(log(p_raw) / T) per task; raw again: "
            "softmax(log(p_calibrated) * T)"
        ),
        "note": note,
    }


def recorded_temperature(meta: dict) -> dict[str, float] | None:
    """The temperatures an export's metadata records (None: none; exports made
    before calibration have no entry)."""
    return (meta.get(CALIBRATION_KEY) or {}).get("temperature") or None


def baked_temperature(meta: dict) -> dict[str, float] | None:
    """The temperatures the exported graph applies to its outputs, or None."""
    entry = meta.get(CALIBRATION_KEY) or {}
    return recorded_temperature(meta) if entry.get("applied") else None


def sidecar_path(tflite_path: str | os.PathLike) -> Path:
    """The JSON beside a ``.tflite``: the same stem, ``.json``."""
    return Path(tflite_path).with_suffix(".json")


def tflite_runtime() -> tuple[Callable[..., Any], str]:
    """The TFLite interpreter class to run files with, and its name for users.

    LiteRT's (``ai_edge_litert.interpreter.Interpreter``, the ``ai-edge-litert``
    package) where it is installed: TF 2.21 deprecates `tf.lite.Interpreter` in
    its favour. Otherwise TensorFlow's own, which still runs these models.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return _tf_lite_interpreter, f"tf.lite (TensorFlow {tf.__version__})"
    return Interpreter, f"LiteRT (ai-edge-litert {_version('ai-edge-litert')})"


def tflite_interpreter(**kwargs):
    """An interpreter from `tflite_runtime` (LiteRT where installed, else tf.lite)."""
    factory, _ = tflite_runtime()
    return factory(**kwargs)


def _tf_lite_interpreter(**kwargs):
    with warnings.catch_warnings():
        # The fallback when ai-edge-litert is not installed (see tflite_runtime).
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return tf.lite.Interpreter(**kwargs)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # imported from a source tree
        return "unknown version"


class TFLiteClassifier:
    """A converted keras_art model as a function: ``pixels [N, S, S, 3]`` ->
    ``{output name: numpy [N, ...]}``, one image at a time (the file's batch is 1).

    ``pixels`` are RGB 0-255 already eval-resized to ``image_size`` (see the
    module docstring). String outputs come back as numpy object arrays of bytes,
    as from the SavedModel. ``runtime`` names the interpreter that runs it
    (`tflite_runtime`).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{path}: no such TFLite file.")
        factory, self.runtime = tflite_runtime()
        try:
            interpreter = factory(model_path=str(self.path), num_threads=num_threads)
        except ValueError as exc:  # the interpreters' word for an unreadable file
            raise UserError(
                f"{path}: not a TFLite model ({exc}). Export it again with "
                f"python -m keras_art.export --format tflite."
            ) from None
        try:
            self._runner = interpreter.get_signature_runner(SIGNATURE)
        except ValueError:
            raise UserError(
                f"{path}: no {SIGNATURE} signature; export it with "
                f"python -m keras_art.export --format tflite."
            ) from None
        self.image_size = int(self._runner.get_input_details()[INPUT_NAME]["shape"][1])
        self._outputs = self._runner.get_output_details()
        self.output_names = sorted(self._outputs)

    def predict_one(self, pixels) -> dict[str, np.ndarray]:
        """One image, ``[S, S, 3]`` or ``[1, S, S, 3]`` -> outputs of batch 1."""
        x = np.asarray(pixels, np.float32).reshape(self._input_shape(pixels))
        try:
            return self._runner(**{INPUT_NAME: x})
        except RuntimeError as exc:
            if NO_FLEX in str(exc):
                raise UserError(
                    f"{self.path}: the model needs Flex (Select TF) ops, which this "
                    f"TensorFlow's interpreter lacks; use a runtime with the Flex "
                    f"delegate, or the SavedModel."
                ) from None
            raise

    def __call__(self, pixels) -> dict[str, np.ndarray]:
        pixels = np.asarray(pixels, np.float32)
        if pixels.ndim != 4:
            raise UserError(
                f"pixels of shape {list(pixels.shape)}: pass [N, {self.image_size}, "
                f"{self.image_size}, 3]."
            )
        if len(pixels) == 0:
            return {
                name: np.zeros([0, *d["shape"][1:]], d["dtype"])
                for name, d in self._outputs.items()
            }
        rows = [self.predict_one(image) for image in pixels]
        return {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}

    def _input_shape(self, pixels) -> list[int]:
        want = [self.image_size, self.image_size, 3]
        shape = list(np.shape(pixels))
        if shape not in (want, [1, *want]):
            raise UserError(
                f"pixels of shape {shape}: the model takes [1, {self.image_size}, "
                f"{self.image_size}, 3] (eval-resize them first: "
                f"keras_art.data.pipeline.decode.resize_for_eval)."
            )
        return [1, *want]


def tflite_classifier(
    path: str | os.PathLike, num_threads: int | None = None
) -> TFLiteClassifier:
    """The callable `TFLiteClassifier` of an exported ``.tflite`` file."""
    return TFLiteClassifier(path, num_threads=num_threads)


def read_sidecar(tflite_path: str | os.PathLike) -> dict[str, Any]:
    """The ``.json`` beside an exported ``.tflite``; `UserError` if missing."""
    path = sidecar_path(tflite_path)
    if not path.is_file():
        raise UserError(
            f"{tflite_path}: no {path.name} beside it (tasks, class names, image "
            f"size). Export with python -m keras_art.export --format tflite, which "
            f"writes both."
        )
    return json.loads(path.read_text(encoding="utf-8"))
