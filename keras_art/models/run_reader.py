"""The one reader of a finished run directory, for evaluate, export and predict.

A finished run has ``config.json``, ``model.json`` (`ModelRecord`), ``best.keras``,
its epoch checkpoints and ``summary.json`` (written last). `open_run` checks all
that and says in one line what is wrong; `load_run_model` gives the Keras model.
"""

from __future__ import annotations

import os
from pathlib import Path

from keras_art.errors import UserError
from keras_art.models.model_record import ModelRecord, read_model_record

CHECKPOINTS = ("best", "last")


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
    import keras

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
