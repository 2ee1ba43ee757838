"""What the demo shows for each painting, computed without Gradio.

`classify_paintings` runs a `keras_art.inference.LoadedModel` on image files, one
at a time (a demo gets a handful), through ``LoadedModel.predict_bytes``, so the
probabilities are exactly what ``python -m keras_art.predict`` prints for the
same model. For a run directory it adds, for the model's first task, the
Grad-CAM overlay (`keras_art.models.gradcam.gradcam`) and, for the cnn_rnn head,
the row and column attention (`keras_art.models.gradcam.attention_weights`: a
sub-model up to the attention pooling layers, no retraining) as heatmaps on the
model's view of the painting. A file that cannot be read or decoded is skipped
with its reason; the others are still shown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_art.data.pipeline.decode import decode_and_resize_for_eval, decode_rgb
from keras_art.inference.backends import MODEL_KINDS, LoadedModel
from keras_art.inference.predict import error_reason
from keras_art.models.gradcam import attention_weights, gradcam, overlay

ORIGINAL_SIDE = 512  # the original is shown at most this large (longer side)
VIEW_SIDE = 320  # the model's square view (and its heatmaps) is shown this large


@dataclass
class PaintingView:
    """One classified painting, ready to show.

    Attributes:
        name: the file's name.
        top: task -> ``{class: probability}``, the top k, most probable first.
        original: uint8 ``(H, W, 3)``, the decoded file (longer side at most
            `ORIGINAL_SIDE`).
        gradcam: uint8 ``(VIEW_SIDE, VIEW_SIDE, 3)``: the Grad-CAM heatmap on the
            model's (eval-resized) view, or ``None`` (not a run directory).
        rows, cols: the same for the row and column attention of the cnn_rnn
            head (`_bands`: green is the uniform weight, red twice it), or
            ``None``.
        explained: what the Grad-CAM explains, e.g. ``"artist: Claude_Monet (87.3%)"``.
    """

    name: str
    top: dict[str, dict[str, float]]
    original: np.ndarray
    gradcam: np.ndarray | None = None
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    explained: str = ""


@dataclass
class Classified:
    """`classify_paintings`' answer: the paintings shown and the files skipped
    (``(name, reason)``), in input order, and a one-paragraph summary."""

    paintings: list[PaintingView] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""


def classify_paintings(
    loaded: LoadedModel, files: Sequence[str | os.PathLike], top_k: int
) -> Classified:
    """Classify each of ``files`` with ``loaded`` and build its `PaintingView`.

    Args:
        loaded: the model (`keras_art.inference.load_model`).
        files: image files; any suffix is tried.
        top_k: classes kept per task.
    """
    result = Classified()
    for file in files:
        name = Path(file).name
        try:
            data = Path(file).read_bytes()
            probs = loaded.predict_bytes([data])
        except OSError as exc:
            result.skipped.append((name, exc.strerror or str(exc)))
            continue
        except tf.errors.InvalidArgumentError as exc:
            result.skipped.append((name, error_reason(exc.message)))
            continue
        view = PaintingView(
            name=name,
            top={t: _top(loaded, t, probs[t][0], top_k) for t in loaded.tasks},
            original=_original(data),
        )
        if loaded.keras_model is not None:
            _explain(loaded, data, probs, view)
        result.paintings.append(view)
    result.summary = summary(loaded, result)
    return result


def summary(loaded: LoadedModel, result: Classified) -> str:
    """``"Classified 2 of 3 files with r (run directory, on Keras 3.15.1).
    Skipped x.jpg: Unknown image file format. ..."``"""
    total = len(result.paintings) + len(result.skipped)
    text = (
        f"Classified {len(result.paintings)} of {total} files with "
        f"{model_title(loaded)} ({MODEL_KINDS[loaded.kind]}, on {loaded.runtime})."
    )
    for name, reason in result.skipped:
        text += f" Skipped {name}: {reason}"
        text += "" if reason.endswith(".") else "."
    if result.skipped and not result.paintings:
        text += " Drop JPEG, PNG, BMP, GIF or WebP files."
    return text


def model_title(loaded: LoadedModel) -> str:
    """The model's short name: its file or folder name (``NAME/VERSION`` for a
    TF Serving version folder)."""
    path = loaded.path
    if loaded.kind == "saved_model" and path.name.isdigit():
        return f"{path.parent.name}/{path.name}"
    return path.name


def _top(loaded: LoadedModel, task: str, probs, top_k: int) -> dict[str, float]:
    order = np.argsort(-probs, kind="stable")[:top_k]
    return {loaded.class_names[task][c]: float(probs[c]) for c in order}


def _original(data: bytes) -> np.ndarray:
    image = Image.fromarray(decode_rgb(data).numpy())
    image.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _explain(loaded: LoadedModel, data: bytes, probs, view: PaintingView) -> None:
    """Grad-CAM for the first task's top class, and the head's attention, drawn
    on the model's view of the painting, enlarged to `VIEW_SIDE`."""
    task = loaded.tasks[0]
    pixels = decode_and_resize_for_eval(data, loaded.image_size, loaded.eval_resize)
    batch = tf.expand_dims(pixels, 0)
    heatmaps, _ = gradcam(loaded.keras_model, batch, task)
    seen = Image.fromarray(np.asarray(pixels).astype(np.uint8)).resize(
        (VIEW_SIDE, VIEW_SIDE), Image.Resampling.BILINEAR
    )
    seen = np.asarray(seen)
    view.gradcam = overlay(seen, heatmaps[0])
    best = int(np.argmax(probs[task][0]))
    view.explained = (
        f"{task}: {loaded.class_names[task][best]} ({probs[task][0][best]:.1%})"
    )
    attention = attention_weights(loaded.keras_model, batch)
    if attention is not None:
        rows, cols = attention["rows"][0], attention["cols"][0]
        view.rows = overlay(seen, _bands(rows[:, None], (len(rows), len(cols))))
        view.cols = overlay(seen, _bands(cols[None, :], (len(rows), len(cols))))


def _bands(weights: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A feature-map-sized heatmap of attention weights over ``n`` rows (or
    columns): each band at ``weight * n / 2``, so the uniform weight ``1 / n``
    shows mid-scale (green in "jet") and twice it or more red, whatever ``n``."""
    grid = np.broadcast_to(weights, shape).astype("float32")
    return np.clip(grid * weights.size / 2.0, 0.0, 1.0)
