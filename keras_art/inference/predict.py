"""`predict`: classify image files with any trained model, the library function
behind ``python -m keras_art.predict``.

    from keras_art.inference import predict
    result = predict("serving/painters", ["painting.jpg", "folder/"], top_k=3)
    print(format_predictions(result))

The model is a SavedModel (or TF Serving's ``BASE/NAME``), a ``.tflite`` file or a
finished run directory (`keras_art.inference.backends.load_model`). Folders are
walked recursively for image files; every file is read, decoded and classified in
batches, and a file that cannot be read or decoded is skipped with its reason (a
warning per file and a count at the end) while the others are predicted. Grad-CAM
overlays need the run directory's Keras model. Probabilities are calibrated
(temperature scaling) when the model records temperatures, unless
``calibration=False`` (`keras_art.inference.backends`).
"""

from __future__ import annotations

import csv as csv_module
import io
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_art.atomic_files import atomic_write_text
from keras_art.data.pipeline.decode import decode_and_resize_for_eval
from keras_art.errors import ParameterError, UserError
from keras_art.inference.backends import (
    MODEL_KINDS,
    LoadedModel,
    detect_model,
    load_model,
)
from keras_art.models.gradcam import (
    attention_of,
    attention_weights,
    gradcam,
    save_gradcam_figure,
)
from keras_art.registry import DEFAULT_TOP_K, IMAGE_SUFFIXES
from keras_art.user_input import check_positive_int

logger = logging.getLogger(__name__)

# Long format: one row per image, task and rank (k rows per image and task).
CSV_COLUMNS = ("path", "task", "rank", "class", "probability", "gradcam")
PROGRESS_EVERY = 10  # batches between "predict: 320/5000 images" lines
_TF_ERROR_FRAMING = ("Graph execution error", "Detected at node", "<stack", "[[")


@dataclass
class PredictResult:
    """What `predict` found, in input order.

    Attributes:
        model: the model's path and kind, e.g. ``"serving/painters/2 (saved_model)"``.
        tasks: the model's tasks.
        class_names: task -> class names, in output order.
        files: the predicted files (skipped ones left out).
        probabilities: task -> float32 ``[len(files), classes]``.
        top_k: how many classes each listing shows (at most a task's classes).
        skipped: ``(path, reason)`` of each file that could not be read or decoded.
        gradcam: one overlay PNG per predicted file (empty without ``gradcam=``).
        csv: the CSV written, or ``None``.
        calibrated: the probabilities are temperature-scaled.
        runtime: what ran the model (`LoadedModel.runtime`), e.g. ``"LiteRT
            (ai-edge-litert 2.3.0)"`` or ``"tf.lite (TensorFlow 2.21.0)"``.
    """

    model: str
    tasks: list[str]
    class_names: dict[str, list[str]]
    files: list[str]
    probabilities: dict[str, np.ndarray]
    top_k: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    gradcam: list[str] = field(default_factory=list)
    csv: Path | None = None
    calibrated: bool = False
    runtime: str = ""

    def top(self, index: int, task: str) -> list[tuple[str, float]]:
        """The ``top_k`` ``(class, probability)`` of file ``index`` for ``task``."""
        probs = self.probabilities[task][index]
        order = np.argsort(-probs, kind="stable")[: self.top_k]
        return [(self.class_names[task][c], float(probs[c])) for c in order]

    def rows(self) -> Iterator[dict]:
        """The CSV rows (`CSV_COLUMNS`): per file, per task, per rank."""
        for i, path in enumerate(self.files):
            overlay = self.gradcam[i] if self.gradcam else ""
            for task in self.tasks:
                for rank, (name, prob) in enumerate(self.top(i, task), start=1):
                    yield {
                        "path": path,
                        "task": task,
                        "rank": rank,
                        "class": name,
                        "probability": f"{prob:.6f}",
                        "gradcam": overlay,
                    }


def predict(
    model: str | os.PathLike | LoadedModel,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    top_k: int = DEFAULT_TOP_K,
    csv: str | os.PathLike | None = None,
    gradcam: str | os.PathLike | None = None,
    batch_size: int = 32,
    progress_every: int = PROGRESS_EVERY,
    calibration: bool = True,
) -> PredictResult:
    """Classify every image in ``inputs`` with ``model``.

    Args:
        model: a SavedModel folder, TF Serving ``BASE/NAME`` folder, ``.tflite``
            file or finished run directory, or a loaded `LoadedModel`.
        inputs: image files and folders (walked recursively for
            `IMAGE_SUFFIXES`, sorted). A file named directly is tried whatever its
            suffix.
        top_k: classes listed per image and task.
        csv: write the `CSV_COLUMNS` rows here (atomically).
        gradcam: write one Grad-CAM overlay PNG per image into this folder, for
            the first task (run directories only).
        batch_size: images per model call.
        progress_every: log progress every this many batches (and at the end).
        calibration: temperature-scaled probabilities when the model records
            temperatures (also for a `LoadedModel` passed in); False: raw ones.

    Returns:
        A `PredictResult`. Raises `UserError` for a missing input, no images at
        all, a path that is not a model, Grad-CAM without a run directory, or when
        no file could be decoded.
    """
    top_k = check_positive_int(top_k, "top_k")
    batch_size = check_positive_int(batch_size, "batch_size")
    progress_every = check_positive_int(progress_every, "progress_every")
    files = find_images(inputs)
    loaded = _loaded_model(model, gradcam, calibration)
    logger.info("predict: the model runs on %s", loaded.runtime)
    kept, probs, skipped, overlays = _predict_files(
        loaded, files, batch_size, gradcam, progress_every
    )
    _report_skipped(skipped, len(files), kept)
    result = PredictResult(
        model=f"{loaded.path} ({loaded.kind})",
        tasks=list(loaded.tasks),
        class_names=loaded.class_names,
        files=kept,
        probabilities={t: np.concatenate(p) for t, p in probs.items()},
        top_k=top_k,
        skipped=skipped,
        gradcam=overlays,
        calibrated=loaded.calibrated,
        runtime=loaded.runtime,
    )
    if csv is not None:
        result.csv = write_csv(result, csv)
        logger.info("predict: wrote %s (%d images)", result.csv, len(kept))
    return result


def _log_calibration(loaded: LoadedModel) -> None:
    if loaded.calibrated:
        temps = ", ".join(f"{t} T={v:.3f}" for t, v in loaded.temperature.items())
        logger.info(
            "predict: calibrated probabilities (temperature scaling: %s)", temps
        )
    elif loaded.temperature:
        logger.info("predict: raw probabilities (calibration off)")
    else:
        logger.info("predict: raw probabilities (the model records no temperature)")


def _loaded_model(
    model: str | os.PathLike | LoadedModel,
    gradcam: str | os.PathLike | None,
    calibration: bool,
) -> LoadedModel:
    """``model`` loaded (unless it already is) with ``calibration`` on or off,
    refusing Grad-CAM for a model kind without it before the (slow) load."""
    if isinstance(model, LoadedModel):
        loaded = model
    else:
        kind, found = detect_model(model)
        _check_gradcam(gradcam, kind, model)  # before the (slow) load
        loaded = load_model(found)
    _check_gradcam(gradcam, loaded.kind, loaded.path)
    loaded = loaded.with_calibration(calibration)
    _log_calibration(loaded)
    return loaded


def _predict_files(
    loaded: LoadedModel,
    files: list[str],
    batch_size: int,
    gradcam: str | os.PathLike | None,
    progress_every: int,
):
    """Run ``loaded`` over ``files`` in batches; the files read, their
    probabilities per task (a list of batch arrays), the skipped files and the
    Grad-CAM overlays written."""
    kept, probs, skipped, overlays = [], {t: [] for t in loaded.tasks}, [], []
    used_names: set[str] = set()
    batches = [files[i : i + batch_size] for i in range(0, len(files), batch_size)]
    for number, batch in enumerate(batches, start=1):
        items = _read_files(batch, skipped)
        items, batch_probs = _predict_batch(loaded, items, skipped)
        if items:
            kept += [file for file, _ in items]
            for t in loaded.tasks:
                probs[t].append(batch_probs[t])
            if gradcam is not None:
                overlays += _write_gradcams(
                    loaded, items, batch_probs, Path(gradcam), used_names
                )
        if number % progress_every == 0 or number == len(batches):
            done = min(number * batch_size, len(files))
            logger.info("predict: %d/%d images", done, len(files))
    return kept, probs, skipped, overlays


def find_images(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Files named in ``inputs``, and the image files under its folders (sorted).

    Raises `UserError` for a path that does not exist, or when there is no file
    at all."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            files += sorted(
                str(p)
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
        elif path.exists():
            files.append(str(path))
        else:
            raise UserError(
                f"{item}: no such file or folder. Pass image files or folders of "
                f"images."
            )
    if not files:
        shown = ", ".join(str(i) for i in inputs) or "(no inputs)"
        raise UserError(
            f"no images in {shown} (looked for {', '.join(IMAGE_SUFFIXES)}). Pass "
            f"image files or folders that hold some."
        )
    return files


def format_predictions(result: PredictResult) -> str:
    """Per image: the path, then ``"  Claude_Monet  87.3%"`` lines (under a task
    heading when the model has several tasks) and the Grad-CAM overlay's path."""
    lines = []
    multi = len(result.tasks) > 1
    for i, path in enumerate(result.files):
        lines.append(path)
        for task in result.tasks:
            top = result.top(i, task)
            indent = "    " if multi else "  "
            if multi:
                lines.append(f"  {task}")
            width = max(len(name) for name, _ in top)
            lines += [f"{indent}{name:<{width}}  {p:6.1%}" for name, p in top]
        if result.gradcam:
            lines.append(f"  gradcam: {result.gradcam[i]}")
    return "\n".join(lines)


def write_csv(result: PredictResult, path: str | os.PathLike) -> Path:
    """``result.rows()`` as CSV with a header, written atomically."""

    text = io.StringIO()
    writer = csv_module.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows())
    return atomic_write_text(path, text.getvalue())


def _read_files(paths: list[str], skipped: list) -> list[tuple[str, bytes]]:
    items = []
    for path in paths:
        try:
            items.append((path, Path(path).read_bytes()))
        except OSError as exc:
            _skip(skipped, path, exc.strerror or str(exc))
    return items


def _predict_batch(
    loaded: LoadedModel, items: list[tuple[str, bytes]], skipped: list
) -> tuple[list[tuple[str, bytes]], dict[str, np.ndarray]]:
    """Predict ``items`` in one call; if an image fails to decode, again one by one,
    skipping (with its reason) each that fails alone."""

    if len(items) > 1:
        try:
            return items, loaded.predict_bytes([data for _, data in items])
        except tf.errors.InvalidArgumentError:
            pass  # some image is bad: find which, one at a time
    kept, probs = [], {t: [] for t in loaded.tasks}
    for path, data in items:
        try:
            one = loaded.predict_bytes([data])
        except tf.errors.InvalidArgumentError as exc:
            _skip(skipped, path, error_reason(exc.message))
            continue
        kept.append((path, data))
        for t in loaded.tasks:
            probs[t].append(one[t])
    if not kept:
        return [], {}
    return kept, {t: np.concatenate(p) for t, p in probs.items()}


def _write_gradcams(
    loaded: LoadedModel,
    items: list[tuple[str, bytes]],
    probs: dict[str, np.ndarray],
    out_dir: Path,
    used_names: set[str],
) -> list[str]:
    """One overlay PNG per image, for the model's first task (titled with its top
    class), named after the image (``-2``, ``-3`` ... when names repeat)."""

    size, mode, model = loaded.image_size, loaded.eval_resize, loaded.keras_model
    task = loaded.tasks[0]
    pixels = tf.stack([decode_and_resize_for_eval(d, size, mode) for _, d in items])
    heatmaps, _ = gradcam(model, pixels, task)
    attention = attention_weights(model, pixels)
    written = []
    for j, (path, _) in enumerate(items):
        best = int(probs[task][j].argmax())
        name = loaded.class_names[task][best]
        target = out_dir / _unique_png(Path(path).stem, used_names)
        save_gradcam_figure(
            np.asarray(pixels[j]).astype(np.uint8),
            heatmaps[j],
            target,
            title=f"{task}: {name} ({probs[task][j, best]:.1%})",
            attention=attention_of(attention, j),
        )
        written.append(str(target))
    return written


def _unique_png(stem: str, used: set[str]) -> str:
    name, n = f"{stem}.png", 2
    while name in used:
        name, n = f"{stem}-{n}.png", n + 1
    used.add(name)
    return name


def _check_gradcam(gradcam, kind: str, model) -> None:
    if gradcam is not None and kind != "run":
        raise ParameterError(
            f"{{gradcam}} needs a run directory's Keras model; {{model}} {model} is a "
            f"{MODEL_KINDS[kind]}. Pass the run directory the model was exported from."
        )


def _skip(skipped: list, path: str, reason: str) -> None:
    logger.warning("predict: skipped %s: %s", path, reason)
    skipped.append((path, reason))


def _report_skipped(skipped: list, total: int, kept: list) -> None:
    """Log the skipped files; `UserError` when no file was ``kept``."""
    if skipped:
        logger.warning(
            "skipped %d of %d files: %s",
            len(skipped),
            total,
            ", ".join(path for path, _ in skipped),
        )
    if not kept:
        raise UserError(
            f"none of the {total} files could be read as an image (see the "
            f"reasons above). Pass JPEG, PNG, BMP, GIF or WebP files."
        )


def error_reason(message: str) -> str:
    """The reason in a TensorFlow error, without what surrounds it in eager
    (``{{function_node ...}}``, ``[Op:...]``) and graph (``Graph execution error``,
    ``Detected at node``, ``[[{{node ...}}]]``) messages."""
    for line in message.splitlines():
        line = re.sub(r"^\{\{[^}]*\}\}\s*", "", line.strip())
        if line and not line.startswith(_TF_ERROR_FRAMING):
            return line.split(" [[")[0].split(" [Op:")[0].strip()
    return "cannot be decoded"
