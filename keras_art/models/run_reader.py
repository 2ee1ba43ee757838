"""A finished run's model and model record, for evaluate, export and predict.

The files themselves belong to `keras_art.run_dir`; this module adds what needs the
model's types: `open_run` checks the run is finished and reads its `ModelRecord`,
`load_run_model` gives the Keras model (``best.keras``, or the last epoch
checkpoint's weights), `read_split` a split's files and labels (evaluate, export's
``--compare``, the serve bench). Errors name the parameters (``{run_dir}``,
``{checkpoint}``), which each command renders as its flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras
import numpy as np

from keras_art.errors import ParameterError
from keras_art.models.model_record import ModelRecord, read_model_record
from keras_art.run_dir import (
    BEST_MODEL_FILE,
    CHECKPOINTS,
    HISTORY_FILE,
    RunDir,
    open_finished,
    restore_checkpoint_arrays,
)

__all__ = [
    "CHECKPOINTS",
    "SPLITS",
    "SplitRows",
    "load_run_model",
    "open_run",
    "read_split",
]

SPLITS = ("val", "test", "train")


@dataclass
class SplitRows:
    """One split of the run's ``splits.csv``: its files and their labels (indices
    into the model's classes, -1 for a class the model lacks)."""

    name: str  # "test", or another collection's name (evaluation)
    files: list[str]
    labels: dict[str, np.ndarray]
    note: str


def open_run(
    run_dir: str | os.PathLike, checkpoint: str = "best"
) -> tuple[RunDir, ModelRecord]:
    """A finished run and its model record; one clear `ParameterError` otherwise."""
    if checkpoint not in CHECKPOINTS:
        raise ParameterError(
            f"{{checkpoint}} {checkpoint}: choose one of {', '.join(CHECKPOINTS)}."
        )
    run = open_finished(run_dir)
    return run, read_model_record(run)


def load_run_model(run: str | os.PathLike, checkpoint: str = "best"):
    """The run's model: ``best.keras``, or the last epoch checkpoint's weights."""

    run = RunDir(run)
    if not run.best_model.is_file():
        raise ParameterError(
            f"{{run_dir}} {run}: no {BEST_MODEL_FILE} (no epoch had a finite "
            f"validation score). Retrain, or check the run's {HISTORY_FILE}."
        )
    model = keras.saving.load_model(run.best_model, compile=False)
    if checkpoint == "last":
        folder = run.latest_checkpoint()
        if folder is None:
            raise ParameterError(
                f"{{run_dir}} {run}: no epoch checkpoint; use {{checkpoint}} best."
            )
        restore_checkpoint_arrays(model.variables, folder, "model")
    return model


def read_split(run: str | os.PathLike, record: ModelRecord, split: str) -> SplitRows:
    """The rows of ``split`` from the run's own splits file."""
    if split not in SPLITS:
        raise ParameterError(f"{{split}} {split}: choose one of {', '.join(SPLITS)}.")
    run = RunDir(run)
    rows = [r for r in run.read_splits() if r["split"] == split]
    if not rows:
        raise ParameterError(
            f"{{run_dir}} {run}: the {split} split is empty. Pass {{split}} val (or "
            "train)."
        )
    labels = {}
    for task in record.tasks:
        index = {name: i for i, name in enumerate(record.class_names[task])}
        labels[task] = np.array([index.get(r[task], -1) for r in rows], np.int64)
    note = run.read_summary().get("metrics_split_note", "")
    if split == "val":
        note = f"val was used for model selection (best epoch): optimistic. {note}"
    return SplitRows(split, [r["file"] for r in rows], labels, note.strip())
