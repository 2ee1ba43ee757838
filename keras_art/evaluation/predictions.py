"""One forward pass over a set of images: probabilities, embeddings, TTA views.

The images are files, or their encoded bytes already in memory (records read from
TFRecord shards): both go through the same pass
(`keras_art.data.pipeline.eval_images.encoded_images` is the only place that tells
them apart).

Images are brought to the model exactly as evaluation, export and predict do
(`keras_art.data.pipeline.decode.decode_and_resize_for_eval` with the run's size and
resize mode from ``model.json``); the model normalises them itself. One pass gives
every task's probabilities and the pre-classifier embedding (label audit), so metrics,
top losses and the audit never run the model twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from keras_art.data.pipeline.eval_images import image_dataset
from keras_art.models.classifier import feature_and_output_model

logger = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Per image: probabilities per task, embedding; TTA results when asked.

    ``tta_mean`` averages the probabilities of every view; ``tta_votes`` counts,
    per class, the views whose argmax it is (ties broken by ``tta_mean``).
    """

    probs: dict[str, np.ndarray]
    embeddings: np.ndarray
    tta_mean: dict[str, np.ndarray] | None = None
    tta_votes: dict[str, np.ndarray] | None = None


def forward_pass(
    model,
    files: Sequence[str],
    *,
    image_size: int,
    resize_mode: str,
    tasks: Sequence[str],
    tta_sizes: Sequence[int] = (),
    tta_flip: bool = False,
    batch_size: int = 32,
    encoded: Sequence[bytes] | None = None,
) -> Predictions:
    """Run ``model`` over ``files`` once (plus the TTA views when asked); the images
    come from ``encoded`` bytes (aligned with ``files``) when given, e.g. TFRecord
    shard records, else from the files."""

    net = feature_and_output_model(model)  # one pass: embedding and probabilities
    probs = {t: [] for t in tasks}
    embeddings = []
    views = _views(image_size, tta_sizes, tta_flip)
    view_probs = {t: [[] for _ in views] for t in tasks}
    for batch in image_dataset(
        files, image_size, resize_mode, batch_size, encoded=encoded
    ):
        _, embedding, outputs = net(batch, training=False)
        embeddings.append(np.asarray(embedding))
        for t in tasks:
            probs[t].append(np.asarray(outputs[t]))
    _log_progress("plain", len(files))
    for v, (size, flip) in enumerate(views):
        for batch in image_dataset(
            files, size, resize_mode, batch_size, encoded=encoded
        ):
            images = tf.image.flip_left_right(batch) if flip else batch
            outputs = model(images, training=False)
            for t in tasks:
                view_probs[t][v].append(np.asarray(outputs[t]))
        _log_progress(f"TTA view {size} px{' flipped' if flip else ''}", len(files))
    result = Predictions(
        probs={t: np.concatenate(p) for t, p in probs.items()},
        embeddings=np.concatenate(embeddings),
    )
    if views:
        stacked = {
            t: np.stack([np.concatenate(p) for p in vp]) for t, vp in view_probs.items()
        }
        result.tta_mean = {t: s.mean(axis=0) for t, s in stacked.items()}
        result.tta_votes = {
            t: _votes(s, result.tta_mean[t]) for t, s in stacked.items()
        }
    return result


def tta_sizes_for(image_size: int, multi_size: Sequence[int] = ()) -> list[int]:
    """Seed 002's scales (224 / 260 / 296 at 224 px), relative to ``image_size``;
    the run's own ``augment.multi_size`` when it trained on several sizes."""
    if multi_size:
        return sorted({int(s) for s in multi_size})
    return [image_size, round(image_size * 260 / 224), round(image_size * 296 / 224)]


def _views(image_size: int, sizes: Sequence[int], flip: bool) -> list[tuple[int, bool]]:
    """Every TTA view: each size, plain and (with ``flip``) mirrored."""
    if not sizes and not flip:
        return []
    sizes = list(sizes) or [image_size]
    return [(s, f) for s in sizes for f in ((False, True) if flip else (False,))]


def _votes(stacked: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Vote counts per class (views x images x classes -> images x classes), ties
    broken by the mean probability (added below one vote)."""
    views, _, classes = stacked.shape
    winners = stacked.argmax(axis=-1)  # (views, N)
    counts = np.stack([(winners == c).sum(axis=0) for c in range(classes)], axis=-1)
    return counts + mean * 0.5 / max(views, 1)


def _log_progress(what: str, n: int) -> None:
    logger.info("evaluate: %s pass over %d images done", what, n)
