"""Grad-CAM over the backbone's last feature map, and the cnn_rnn head's attention.

Works on any `keras_art.models.classifier.build_classifier` model: nested
``"backbone"`` and ``"head"`` models, images in as RGB pixels in [0, 255].

- `gradcam`: Selvaraju et al. (2017) on the backbone's output map, scoring the
  class's logit (the head's ``head_<task>_logits`` layer, before the softmax, as
  in the paper: a saturated softmax would flatten the gradients).
- `attention_weights`: where the cnn_rnn head's row and column attention pooling
  looks, one weight per feature-map row and column.
- `overlay` / `save_gradcam_figure`: the heatmap on the image, as an array or a
  titled PNG with the attention weights drawn along the image's edges.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_art.atomic_files import atomic_write_bytes
from keras_art.errors import UserError
from keras_art.models.classifier import split_model

ATTENTION_LAYERS = {"rows": "head_rows_attention", "cols": "head_cols_attention"}


def gradcam(
    model: keras.Model, images, task: str, *, class_index=None
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heatmaps of ``task`` for a batch of images.

    The score is the logit of ``class_index`` (the input of the task's softmax,
    layer ``head_<task>_logits``; a head without that layer is scored on the
    probability). Each feature-map channel is weighted by the spatial mean of
    the score's gradient; the weighted sum goes through a ReLU and is divided by
    its per-image maximum (an all-zero map stays zero).

    Args:
        model: a `build_classifier` model.
        images: ``(N, H, W, 3)`` RGB pixels in [0, 255] (uint8 or float).
        task: one of the model's tasks (output names).
        class_index: the class to explain: an int for every image, one int per
            image, or ``None`` for each image's predicted class.

    Returns:
        ``(heatmaps, probs)``: float32 ``(N, h, w)`` in [0, 1] on the backbone's
        ``h x w`` map, and the task's float32 ``(N, classes)`` probabilities.
    """
    images = _as_batch(images)
    backbone, head = split_model(model)
    probs_out = _task_output(head, task)
    score_out = probs_out
    if f"head_{task}_logits" in {layer.name for layer in head.layers}:
        score_out = head.get_layer(f"head_{task}_logits").output
    scorer = keras.Model(head.input, [probs_out, score_out])
    with tf.GradientTape() as tape:
        features = backbone(images, training=False)
        # Watched by hand: with a frozen backbone nothing before it is watched.
        tape.watch(features)
        probs, scores = scorer(features, training=False)
        probs = tf.cast(probs, "float32")
        classes = _class_indices(class_index, probs, task)
        score = tf.gather(tf.cast(scores, "float32"), classes, axis=1, batch_dims=1)
    grads = tf.cast(tape.gradient(score, features), "float32")
    features = tf.cast(features, "float32")
    channel_weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(channel_weights * features, axis=-1)).numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    heatmaps = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    return heatmaps.astype("float32"), probs.numpy()


def attention_weights(model: keras.Model, images) -> dict[str, np.ndarray] | None:
    """The cnn_rnn head's attention over feature-map rows and columns.

    Runs the backbone, the head up to the inputs of its ``head_rows_attention``
    and ``head_cols_attention`` layers (the BiGRU sequences), and each layer's
    `AttentionPooling.attention_weights`, all in inference mode.

    Returns:
        ``{"rows": (N, h), "cols": (N, w)}`` float32 weights (each row sums to
        1) for the backbone's ``h x w`` map, or ``None`` for a head without
        attention (gap, spp).
    """
    backbone, head = split_model(model)
    names = {layer.name for layer in head.layers}
    if not set(ATTENTION_LAYERS.values()) <= names:
        return None
    layers = {key: head.get_layer(name) for key, name in ATTENTION_LAYERS.items()}
    sequences_model = keras.Model(
        head.input, {key: layer.input for key, layer in layers.items()}
    )
    features = backbone(_as_batch(images), training=False)
    sequences = sequences_model(features, training=False)
    return {
        key: keras.ops.convert_to_numpy(layer.attention_weights(sequences[key])).astype(
            "float32"
        )
        for key, layer in layers.items()
    }


def overlay(image, heatmap, *, alpha: float = 0.4) -> np.ndarray:
    """Blend a [0, 1] heatmap, coloured with matplotlib's "jet", onto an image.

    Args:
        image: ``(H, W, 3)`` RGB pixels in [0, 255].
        heatmap: ``(h, w)`` values in [0, 1], resized bilinearly to ``(H, W)``.
        alpha: the heatmap's share of each pixel, in [0, 1].

    Returns:
        uint8 ``(H, W, 3)``: ``(1 - alpha) * image + alpha * colour``.
    """
    from matplotlib import colormaps
    from PIL import Image

    image = np.asarray(image)
    heatmap = np.asarray(heatmap, dtype="float32")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"overlay needs an (H, W, 3) RGB image. Received: shape={image.shape}"
        )
    if heatmap.ndim != 2:
        raise ValueError(
            f"overlay needs an (h, w) heatmap. Received: shape={heatmap.shape}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha}")
    height, width = image.shape[:2]
    resized = Image.fromarray(heatmap, mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    colours = colormaps["jet"](np.clip(np.asarray(resized), 0.0, 1.0))[..., :3]
    blended = (1.0 - alpha) * image.astype("float32") + alpha * 255.0 * colours
    return np.clip(np.rint(blended), 0, 255).astype("uint8")


def attention_of(attention: dict | None, index: int) -> dict | None:
    """Image ``index``'s weights from a batch's `attention_weights` (None when
    the head has no attention): what `save_gradcam_figure` draws."""
    if attention is None:
        return None
    return {k: v[index] for k, v in attention.items()}


def save_gradcam_figure(
    image,
    heatmap,
    path: str | os.PathLike,
    *,
    title: str,
    attention: dict | None = None,
) -> Path:
    """Write the Grad-CAM overlay of one image as a titled PNG; returns ``path``.

    Args:
        image: ``(H, W, 3)`` RGB pixels in [0, 255].
        heatmap: ``(h, w)`` in [0, 1], from `gradcam`.
        path: the PNG to write (atomically; parent folders are created).
        title: e.g. ``"pred: Baroque (0.93) / true: Rococo"``.
        attention: one image's ``{"rows": (h,), "cols": (w,)}`` from
            `attention_weights`: row weights are drawn as bars along the left
            edge, column weights along the bottom edge, each bar spanning the
            image band its feature-map row or column covers.
    """
    # The Agg canvas is chosen here, per figure: no pyplot, no global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = np.asarray(image)
    blended = overlay(image, heatmap)
    height, width = image.shape[:2]
    figure = Figure(figsize=(6.0, 6.0 * height / width + 1.2), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.imshow(blended, extent=(0, width, height, 0), interpolation="bilinear")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=13)
    if attention is not None:
        _draw_attention(axes, attention, height, width)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _draw_attention(axes, attention: dict, height: int, width: int) -> None:
    # Axes appended by the divider stay aligned with the equal-aspect image.
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    divider = make_axes_locatable(axes)
    for key in ("rows", "cols"):
        weights = np.asarray(attention[key], dtype="float32").ravel()
        extent = height if key == "rows" else width
        band = extent / len(weights)
        centres = (np.arange(len(weights)) + 0.5) * band
        top = max(float(weights.max()), 1.0 / len(weights)) * 1.15
        if key == "rows":
            edge = divider.append_axes("left", size="16%", pad=0.06, sharey=axes)
            edge.barh(centres, weights, height=band * 0.85, color="tab:orange")
            # Dashed: the uniform weight 1 / h, so peaks read at a glance.
            edge.axvline(1.0 / len(weights), color="0.3", linestyle="--", lw=1)
            edge.set_xlim(top, 0)  # bars grow away from the image
            edge.set_ylabel("row attention", fontsize=10)
        else:
            edge = divider.append_axes("bottom", size="16%", pad=0.06, sharex=axes)
            edge.bar(centres, weights, width=band * 0.85, color="tab:orange")
            edge.axhline(1.0 / len(weights), color="0.3", linestyle="--", lw=1)
            edge.set_ylim(top, 0)
            edge.set_xlabel("column attention", fontsize=10)
        edge.set_xticks([])
        edge.set_yticks([])
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)


def _as_batch(images) -> tf.Tensor:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            "Expected a batch of RGB images (N, H, W, 3). "
            f"Received: shape={images.shape}"
        )
    return tf.convert_to_tensor(images.astype("float32"))


def _task_output(head: keras.Model, task: str):
    outputs = head.output
    if not isinstance(outputs, dict) or task not in outputs:
        tasks = list(outputs) if isinstance(outputs, dict) else []
        raise UserError(
            f"Task {task!r} is not one of the model's tasks: {', '.join(tasks)}."
        )
    return outputs[task]


def _class_indices(class_index, probs: tf.Tensor, task: str) -> tf.Tensor:
    batch, classes = probs.shape
    if class_index is None:
        return tf.argmax(probs, axis=-1, output_type=tf.int32)
    indices = np.asarray(class_index).astype("int32").reshape(-1)
    if indices.size == 1:
        indices = np.repeat(indices, batch)
    if indices.size != batch or indices.min() < 0 or indices.max() >= classes:
        raise UserError(
            f"class_index must be one int, or one per image ({batch}), in "
            f"[0, {classes}) for task {task!r}. "
            f"Received: class_index={class_index}"
        )
    return tf.constant(indices)
