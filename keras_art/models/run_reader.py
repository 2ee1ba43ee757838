"""The one reader of a finished run directory, for evaluate, export and predict.

A finished run has ``config.json``, ``model.json`` (`ModelRecord`), ``best.keras``,
its epoch checkpoints and ``summary.json`` (written last). `open_run` checks all
that and says in one line what is wrong; `load_run_model` gives the Keras model,
`read_split` a split's files and labels (evaluate, export's ``--compare``, the serve
bench).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_art.errors import UserError
from keras_art.models.model_record import ModelRecord, read_model_record

CHECKPOINTS = ("best", "last")
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
) -> tuple[Path, ModelRecord]:
    """A finished run and its model record; one clear `UserError` otherwise."""
    if checkpoint not in CHECKPOINTS:
        raise UserError(
            f"--checkpoint {checkpoint}: choose one of {', '.join(CHECKPOINTS)}."
        )
    run = open_finished_run(run_dir)
    return run, read_model_record(run)


def open_finished_run(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a Path, or one clear `UserError` when it is not a finished run."""
    run = Path(run_dir).expanduser()
    if not run.is_dir():
        raise UserError(
            f"--run {run_dir}: no such folder. Pass a run directory that "
            f"python -m keras_art.train printed."
        )
    if not (run / "config.json").is_file():
        raise UserError(f"--run {run_dir}: not a run directory (no config.json).")
    if not (run / "summary.json").is_file():
        raise UserError(
            f"--run {run_dir}: the run is unfinished (no summary.json). Finish it "
            f"with python -m keras_art.train --resume {run_dir}, or pass a finished "
            f"run."
        )
    return run


def load_run_model(run: Path, checkpoint: str = "best"):
    """The run's model: ``best.keras``, or the last epoch checkpoint's weights."""

    best = run / "best.keras"
    if not best.is_file():
        raise UserError(
            f"{run}: no best.keras (no epoch had a finite validation score). "
            f"Retrain, or check the run's history.csv."
        )
    model = keras.saving.load_model(best, compile=False)
    if checkpoint == "last":
        # The epoch checkpoints' format belongs to training (the one import from
        # models into training, lazy and only for --checkpoint last).
        from keras_art.training.checkpoints import EpochCheckpointer, load_model_weights

        folder = EpochCheckpointer(run / "checkpoints").latest()
        if folder is None:
            raise UserError(f"{run}: no epoch checkpoint; use --checkpoint best.")
        load_model_weights(model, folder)
    return model


def read_split(run: Path, record: ModelRecord, split: str) -> SplitRows:
    """The rows of ``split`` from the run's own ``splits.csv``."""
    if split not in SPLITS:
        raise UserError(f"--split {split}: choose one of {', '.join(SPLITS)}.")
    text = (run / "splits.csv").read_bytes().decode("utf-8", "surrogateescape")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["split"] == split]
    if not rows:
        raise UserError(
            f"--run {run}: the {split} split is empty. Pass --split val (or train)."
        )
    labels = {}
    for task in record.tasks:
        index = {name: i for i, name in enumerate(record.class_names[task])}
        labels[task] = np.array([index.get(r[task], -1) for r in rows], np.int64)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    note = summary.get("metrics_split_note", "")
    if split == "val":
        note = f"val was used for model selection (best epoch): optimistic. {note}"
    return SplitRows(split, [r["file"] for r in rows], labels, note.strip())
