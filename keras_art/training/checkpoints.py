"""Per-epoch training checkpoints that survive ``kill -9``, and resume from them.

``checkpoints/epoch_0003/`` holds everything needed to continue after epoch 3 exactly
as if never stopped: ``model.npz`` (every model variable, the dropout seed states
included), ``optimizer.npz`` (`Trainer.state_variables`: the shared step = the
schedule position, each group's moments, step count and plateau-reduced LR, the
loss scale), and ``state.json`` (completed epochs, stage, history so far, callback
states keyed by each callback's ``state_key`` or class name, so reordering the
callbacks does not mix their states up). The folder's format is the run
directory's (`keras_art.run_dir.write_checkpoint`): written to a hidden staging
folder, fsynced, then renamed, so a crash leaves either the whole folder or none of
it (leftover staging folders are ignored and cleaned up). Only the chief writes;
this module gathers the state from the trainer and puts it back.

What it does not restore: a dataset's position inside an epoch (a resumed run restarts
the interrupted epoch) and ``EarlyStopping(restore_best_weights=True)``'s weights.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.atomic_files import to_builtin
from keras_art.run_dir import (
    completed_checkpoints,
    read_checkpoint_state,
    restore_checkpoint_arrays,
    write_checkpoint,
)
from keras_art.training.strategies import is_chief

_SIMPLE_ATTRS = ("wait", "best", "stopped_epoch", "best_epoch", "cooldown_counter")


class EpochCheckpointer:
    """Writes and restores per-epoch checkpoints under ``directory``.

    Args:
        directory: e.g. ``<run>/checkpoints``.
        keep: how many completed-epoch checkpoints to keep (>= 1).
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be >= 1. Received: {keep}")
        self.directory = Path(directory)
        self.keep = keep

    # ----------------------------------------------------------------- query
    def completed(self) -> list[tuple[int, Path]]:
        """``(completed_epochs, folder)`` of every complete checkpoint, oldest first."""
        return completed_checkpoints(self.directory)

    def latest(self) -> Path | None:
        done = self.completed()
        return done[-1][1] if done else None

    # ----------------------------------------------------------------- save
    def save(self, trainer, completed_epochs: int, callbacks=()) -> Path | None:
        """Checkpoint the state after ``completed_epochs`` epochs (chief only)."""
        model_arrays = [np.asarray(v.numpy()) for v in trainer.model.variables]
        opt_arrays = [np.asarray(v.numpy()) for v in trainer.state_variables]
        if not is_chief(trainer.strategy):
            return None
        state = {
            "epoch": int(completed_epochs),
            "stage": int(trainer.stage),
            "iterations": int(np.asarray(trainer.optimizer.iterations.numpy())),
            "history": trainer.history_records,
            "model_paths": [v.path for v in trainer.model.variables],
            "optimizer_paths": [v.path for v in trainer.state_variables],
            "callbacks": _callback_states(callbacks),
        }
        final = write_checkpoint(
            self.directory, completed_epochs, model_arrays, opt_arrays, state
        )
        self._prune()
        return final

    def _prune(self) -> None:
        done = self.completed()
        for _, path in done[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)
        # Only the chief writes here, and its save has finished: every hidden
        # folder is what a stopped save left (staging or a replaced epoch).
        for p in self.directory.iterdir():
            if p.name.startswith(".") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    # ----------------------------------------------------------------- restore
    def restore(self, trainer, callbacks=()) -> dict[str, Any] | None:
        """Load the latest checkpoint into ``trainer``; None when there is none.

        Restores model and optimizer variables, ``trainer.stage``,
        ``trainer.history_records`` and trainer-aware callbacks' state
        (``set_state``), and re-applies the stage through them BEFORE any step.
        Returns the state dict (``state["epoch"]`` = epochs completed).
        """
        path = self.latest()
        if path is None:
            return None
        state = read_checkpoint_state(path)
        restore_checkpoint_arrays(trainer.model.variables, path, "model")
        restore_checkpoint_arrays(trainer.state_variables, path, "optimizer")
        trainer.stage = int(state["stage"])
        trainer.history_records = list(state["history"])
        saved = state.get("callbacks", {})
        for key, cb in _keyed(callbacks):
            if hasattr(cb, "set_state") and key in saved:
                cb.set_state(saved[key])
        trainer.invalidate_step()
        return state

    @staticmethod
    def restore_callback_attributes(callbacks, state: dict[str, Any]) -> None:
        """Put back plain Keras callbacks' counters (after their ``on_train_begin``)."""
        saved = state.get("callbacks", {})
        for key, cb in _keyed(callbacks):
            if hasattr(cb, "set_state") or key not in saved:
                continue
            for name, value in saved[key].items():
                setattr(cb, name, value)


def _keyed(callbacks) -> list[tuple[str, Any]]:
    """``(key, callback)``: the key is the callback's ``state_key`` or class name,
    with ``#2``, ``#3`` ... for repeats (those alone depend on the order)."""
    out, seen = [], {}
    for cb in callbacks:
        base = getattr(cb, "state_key", None) or type(cb).__name__
        seen[base] = seen.get(base, 0) + 1
        out.append((base if seen[base] == 1 else f"{base}#{seen[base]}", cb))
    return out


def _callback_states(callbacks) -> dict[str, dict[str, Any]]:
    out = {}
    for key, cb in _keyed(callbacks):
        if hasattr(cb, "get_state"):
            out[key] = {k: to_builtin(v) for k, v in cb.get_state().items()}
            continue
        attrs = {}
        for name in _SIMPLE_ATTRS:
            value = getattr(cb, name, None)
            if isinstance(value, (int, float, np.number)) and not isinstance(
                value, bool
            ):
                attrs[name] = to_builtin(value)
        if attrs:
            out[key] = attrs
    return out
