"""Load a trained model of any kind behind one interface, for `predict`.

`load_model` looks at a path and picks the loader:

- a SavedModel folder (``saved_model.pb``), or TF Serving's ``BASE/NAME`` folder
  (its highest integer version is used): ``serving_default`` on raw image bytes,
  decoded inside the graph; names and sizes from
  ``assets.extra/export_metadata.json`` or the ``metadata`` signature
  (`keras_art.models.exported`).
- a ``.tflite`` file with its sidecar ``<stem>.json``: the ``serving_default``
  signature on ``pixels`` float32 ``[1, S, S, 3]``, one image at a time, on
  LiteRT where ``ai-edge-litert`` is installed, else `tf.lite`
  (`keras_art.models.exported.tflite_runtime`; ``LoadedModel.runtime`` says which).
- a finished run directory (``config.json`` + ``summary.json``): the Keras model.

Every loader returns a `LoadedModel`: what the model is (tasks, class names, input
size, eval resize) and ``predict_bytes``, a callable from a list of encoded images
to ``{task: float32 [N, classes]}``. Where decoding happens in Python (run dir,
TFLite) it is `keras_art.data.pipeline.decode.decode_and_resize_for_eval`, the
function evaluation and export use. An undecodable image raises
``tf.errors.InvalidArgumentError``; an empty list never reaches a model.

Calibration happens here, in one place for every caller (predict, the demo):
``load_model(path)`` returns temperature-scaled probabilities whenever the model
records temperatures (a run's ``model.json``, an export's metadata), and
``calibration=False`` the raw ones. A run's Keras output is scaled here; an export
that applies T inside its graph is used as is, or unscaled exactly
(``softmax(log(p) * T)``) for raw probabilities (`keras_art.models.calibration
.rescale`). `LoadedModel.with_calibration` switches a loaded model without reloading.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_art.data.pipeline.decode import check_eval_mode, decode_and_resize_for_eval
from keras_art.errors import ParameterError, UserError
from keras_art.models.calibration import rescale
from keras_art.models.exported import (
    LEGACY_METADATA_FILE,
    METADATA_DIR,
    METADATA_FILE,
    baked_temperature,
    read_sidecar,
    recorded_temperature,
    sidecar_path,
    tflite_classifier,
)
from keras_art.models.run_reader import load_run_model, open_run
from keras_art.run_dir import RunDir

logger = logging.getLogger(__name__)

# Each kind of model, as users call it in messages.
MODEL_KINDS = {
    "saved_model": "SavedModel",
    "tflite": "TFLite file",
    "run": "run directory",
}
TFLITE_SUFFIX = ".tflite"
SIDECAR_KEYS = ("tasks", "class_names", "image_size", "eval_resize", "outputs")
EXPECTED = (
    "a SavedModel folder (with saved_model.pb), a TF Serving model folder "
    "(BASE/NAME with integer versions), a .tflite file or a finished run directory"
)


@dataclass
class LoadedModel:
    """A model ready to classify encoded images, whatever its kind.

    Attributes:
        kind: one of `MODEL_KINDS`.
        path: what was loaded (the version folder for a TF Serving folder).
        tasks: the model's tasks, in output order.
        class_names: task -> class names, in output order.
        image_size: the square input side.
        eval_resize: how an image is brought to that square (see
            `keras_art.data.pipeline.decode.decode_and_resize_for_eval`).
        predict_bytes: list of encoded images -> ``{task: float32 [N, C]}``,
            calibrated when ``calibrated``.
        keras_model: the Keras model (run directories only; Grad-CAM needs it).
        temperature: task -> the model's fitted temperature (None: it has none).
        calibrated: ``predict_bytes`` returns temperature-scaled probabilities.
        model_outputs: the model's own output (as ``predict_bytes``), scaled by
            ``baked_temperature`` (an export that applies T in its graph) or raw.
        runtime: what runs it, for users: ``"Keras 3.15.1"``, ``"TensorFlow
            2.21.0"`` or the TFLite interpreter's name (`tflite_runtime`).
    """

    kind: str
    path: Path
    tasks: list[str]
    class_names: dict[str, list[str]]
    image_size: int
    eval_resize: str
    predict_bytes: Callable[[Sequence[bytes]], dict[str, np.ndarray]]
    keras_model: object | None = None
    temperature: dict[str, float] | None = None
    calibrated: bool = False
    model_outputs: Callable | None = field(default=None, repr=False)
    baked_temperature: dict[str, float] | None = None

    def with_calibration(self, calibration: bool = True) -> LoadedModel:
        """This model returning calibrated probabilities (``calibration``, when it
        has temperatures) or raw ones; the same loaded model underneath. Itself
        when it already does (so a wrapped ``predict_bytes`` stays); otherwise
        ``predict_bytes`` is rebuilt from ``model_outputs``."""
        if bool(calibration and self.temperature) == self.calibrated:
            return self
        native = self.model_outputs or self.predict_bytes
        baked = self.baked_temperature or {}
        wanted = (self.temperature or {}) if calibration else {}
        if wanted == baked:
            predict = native
        else:

            def predict(images: Sequence[bytes]) -> dict[str, np.ndarray]:
                out = native(images)
                return {
                    t: rescale(p, baked=baked.get(t), wanted=wanted.get(t))
                    for t, p in out.items()
                }

        return replace(
            self, predict_bytes=predict, calibrated=bool(wanted), model_outputs=native
        )

    runtime: str = ""


def no_images(class_names: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """The result for zero images, ``{task: float32 [0, C]}``, without calling a
    model (a Keras convolution fails on an empty batch)."""
    return {
        t: np.zeros((0, len(names)), np.float32) for t, names in class_names.items()
    }


def load_model(path: str | os.PathLike, *, calibration: bool = True) -> LoadedModel:
    """Load ``path`` as a SavedModel, TF Serving folder, ``.tflite`` or run dir;
    its probabilities are temperature-scaled when the model records temperatures,
    unless ``calibration`` is False."""
    kind, found = detect_model(path)
    return LOADERS[kind](found).with_calibration(calibration)


def detect_model(path: str | os.PathLike) -> tuple[str, Path]:
    """``(kind, path to load)`` from the files at ``path``, without loading it.

    A TF Serving ``BASE/NAME`` folder resolves to its highest version (logged)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ParameterError(
            f"{{model}} {path}: no such file or folder. Pass {EXPECTED}."
        )
    if p.is_file() and p.suffix.lower() == TFLITE_SUFFIX:
        return "tflite", p
    if p.is_dir() and (p / "saved_model.pb").is_file():
        return "saved_model", p
    if p.is_dir() and RunDir(p).is_run():
        return "run", p
    if p.is_dir() and (version := newest_serving_version(p)) is not None:
        logger.info(
            "predict: %s is a TF Serving model folder; using its highest version, %s",
            p,
            version.name,
        )
        return "saved_model", version
    raise ParameterError(f"{{model}} {path}: not a model. Pass {EXPECTED}.")


def newest_serving_version(model_dir: Path) -> Path | None:
    """The highest integer version folder under ``model_dir`` holding a
    SavedModel (what TF Serving serves), or ``None``."""
    versions = [
        v
        for v in model_dir.iterdir()
        if v.name.isdigit() and (v / "saved_model.pb").is_file()
    ]
    return max(versions, key=lambda v: int(v.name), default=None)


# ------------------------------------------------------------------ SavedModel
def load_saved_model(path: Path) -> LoadedModel:
    """A `keras_art.export` SavedModel: ``serving_default`` on image bytes."""

    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ParameterError(
            f"{{model}} {path}: the SavedModel has no serving_default signature. "
            f"Export the run with python -m keras_art.export."
        )
    meta = _saved_model_metadata(path, loaded)
    outputs, class_names = meta["outputs"], _class_names(meta)

    def predict_bytes(images: Sequence[bytes]) -> dict[str, np.ndarray]:
        if not images:
            return no_images(class_names)
        # Through ``loaded`` on every call: a signature whose loaded object is
        # garbage-collected loses its variables.
        serve = loaded.signatures["serving_default"]
        out = serve(image_bytes=tf.constant(list(images), tf.string))
        return {t: out[outputs[t]["probabilities"]].numpy() for t in meta["tasks"]}

    runtime = f"TensorFlow {tf.__version__}"
    return _loaded("saved_model", path, meta, predict_bytes, runtime)


def _saved_model_metadata(path: Path, loaded) -> dict:
    """``assets.extra/export_metadata.json``, else the ``metadata`` signature's JSON."""
    for name in (METADATA_FILE, LEGACY_METADATA_FILE):  # exports before the rename
        file = path / METADATA_DIR / name
        if file.is_file():
            return _checked_metadata(_read_json(file), file)
    if "metadata" in loaded.signatures:
        text = loaded.signatures["metadata"]()["model_json"].numpy().decode("utf-8")
        return _checked_metadata(json.loads(text), f"{path} (metadata signature)")
    raise ParameterError(
        f"{{model}} {path}: no {METADATA_DIR}/{METADATA_FILE} and no metadata "
        f"signature, so the class names are unknown. Export the run with "
        f"python -m keras_art.export."
    )


# ---------------------------------------------------------------------- TFLite
def load_tflite(path: Path) -> LoadedModel:
    """A ``.tflite`` file and its sidecar JSON (same stem), run by
    `keras_art.models.exported.tflite_classifier` (one image per interpreter call);
    each image is decoded and eval-resized here, as the exporter's contract says."""

    meta = _checked_metadata(read_sidecar(path), sidecar_path(path))
    classifier = tflite_classifier(path)
    size, mode = int(meta["image_size"]), meta["eval_resize"]
    outputs, class_names = meta["outputs"], _class_names(meta)

    def predict_bytes(images: Sequence[bytes]) -> dict[str, np.ndarray]:
        if not images:
            return no_images(class_names)
        pixels = np.stack(
            [decode_and_resize_for_eval(data, size, mode).numpy() for data in images]
        )
        out = classifier(pixels)
        return {
            t: out[outputs[t]["probabilities"]].astype(np.float32)
            for t in meta["tasks"]
        }

    return _loaded("tflite", path, meta, predict_bytes, classifier.runtime)


# --------------------------------------------------------------------- run dir
def load_run(path: Path) -> LoadedModel:
    """A finished run directory's Keras model (``best.keras``)."""

    run, record = open_run(path)
    keras_model = load_run_model(run)
    size, mode = record.image_size, record.eval_resize
    class_names = {t: list(record.class_names[t]) for t in record.tasks}

    def predict_bytes(images: Sequence[bytes]) -> dict[str, np.ndarray]:
        if not images:
            return no_images(class_names)
        batch = tf.stack([decode_and_resize_for_eval(b, size, mode) for b in images])
        out = keras_model(batch, training=False)
        return {t: np.asarray(out[t], np.float32) for t in record.tasks}

    return LoadedModel(
        kind="run",
        path=run.path,
        tasks=list(record.tasks),
        class_names=class_names,
        image_size=int(size),
        eval_resize=mode,
        predict_bytes=predict_bytes,
        keras_model=keras_model,
        temperature=record.temperature,
        runtime=f"Keras {keras.__version__}",
    )


# --------------------------------------------------------------------- helpers
def _loaded(
    kind: str, path: Path, meta: dict, predict_bytes, runtime: str
) -> LoadedModel:
    baked = baked_temperature(meta)
    return LoadedModel(
        kind=kind,
        path=path,
        tasks=list(meta["tasks"]),
        class_names=_class_names(meta),
        image_size=int(meta["image_size"]),
        eval_resize=meta["eval_resize"],
        predict_bytes=predict_bytes,
        temperature=recorded_temperature(meta),
        calibrated=bool(baked),
        baked_temperature=baked,
        runtime=runtime,
    )


def _class_names(meta: dict) -> dict[str, list[str]]:
    return {t: list(meta["class_names"][t]) for t in meta["tasks"]}


def _read_json(file: Path) -> dict:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{file}: not readable JSON ({exc}). Re-export.") from None


def _checked_metadata(meta: dict, where) -> dict:
    """``meta`` if it names every key predict reads, for every task."""

    missing = [k for k in SIDECAR_KEYS if k not in meta]
    tasks = meta.get("tasks") or []
    missing += [
        f"{key}.{t}"
        for key in ("class_names", "outputs")
        for t in tasks
        if t not in (meta.get(key) or {})
    ]
    if missing or not tasks:
        raise UserError(
            f"{where}: missing {', '.join(missing) or 'tasks'}; it needs "
            f"{', '.join(SIDECAR_KEYS)} for every task. Re-export the model."
        )
    check_eval_mode(meta["eval_resize"])
    return meta


LOADERS = {"saved_model": load_saved_model, "tflite": load_tflite, "run": load_run}
