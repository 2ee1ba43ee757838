"""``eval/<split>/predictions.npz``: the probabilities a report was computed from.

`evaluate` writes it beside ``metrics.json``; `keras_art.evaluation.compare_runs`
reads it, so comparing runs (paired tests on the same images) never runs a model
again. One NumPy archive, no pickles: ``files`` (the image paths, UTF-8 bytes with
undecodable path bytes kept as they were), and per task ``labels/<task>`` (int64,
-1 = unlabelled) and ``probs/<task>`` (float32, images x classes).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_art.atomic_files import atomic_write_bytes
from keras_art.errors import ParameterError

_FILES = "files"
_LABELS, _PROBS = "labels/", "probs/"


@dataclass
class SplitPredictions:
    """One report's images, their labels and the model's probabilities per task."""

    files: list[str]
    labels: dict[str, np.ndarray]
    probs: dict[str, np.ndarray]


def write_predictions(
    path: str | os.PathLike,
    files: Sequence[str],
    labels: Mapping[str, np.ndarray],
    probs: Mapping[str, np.ndarray],
) -> Path:
    """Write ``predictions.npz`` atomically (``labels`` and ``probs``: task ->
    array, one row per file)."""
    arrays = {
        _FILES: np.array([f.encode("utf-8", "surrogateescape") for f in files]),
    }
    for task, values in labels.items():
        arrays[_LABELS + task] = np.asarray(values, np.int64)
        arrays[_PROBS + task] = np.asarray(probs[task], np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def read_predictions(path: str | os.PathLike) -> SplitPredictions:
    """``predictions.npz`` back; a `ParameterError` naming ``run_dir`` when it is
    unreadable (a report to write again with evaluate)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            files = [f.decode("utf-8", "surrogateescape") for f in data[_FILES]]
            labels = {
                k[len(_LABELS) :]: data[k] for k in data.files if k.startswith(_LABELS)
            }
            probs = {t: data[_PROBS + t] for t in labels}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ParameterError(
            f"{{run_dir}} {path}: unreadable predictions ({exc}). Write the report "
            "again with python -m keras_art.evaluate."
        ) from None
    return SplitPredictions(files, labels, probs)
