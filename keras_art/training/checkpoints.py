"""Per-epoch training checkpoints that survive ``kill -9``, and resume from them.

``checkpoints/epoch_0003/`` holds everything needed to continue after epoch 3 exactly
as if never stopped: ``model.npz`` (every model variable, the dropout seed states
included), ``optimizer.npz`` (`Trainer.state_variables`: the shared step = the
schedule position, each group's moments, step count and plateau-reduced LR, the
loss scale), and ``state.json`` (completed epochs, stage, history so far, callback
states keyed by each callback's ``state_key`` or class name, so reordering the
callbacks does not mix their states up). It is written to a hidden temp
folder, fsynced, then renamed: a crash leaves either the whole folder or none of it
(leftover temp folders are ignored and cleaned up). Only the chief writes.

What it does not restore: a dataset's position inside an epoch (a resumed run restarts
the interrupted epoch) and ``EarlyStopping(restore_best_weights=True)``'s weights.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.errors import UserError
from keras_art.io_utils import to_builtin
from keras_art.training.strategies import is_chief

_EPOCH_DIR = re.compile(r"^epoch_(\d{4,})$")
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
        if not self.directory.is_dir():
            return []
        out = []
        for p in self.directory.iterdir():
            m = _EPOCH_DIR.match(p.name)
            if m and (p / "state.json").is_file():
                out.append((int(m.group(1)), p))
        return sorted(out)

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
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(
            tempfile.mkdtemp(
                prefix=f".tmp-epoch_{completed_epochs:04d}-", dir=self.directory
            )
        )
        try:
            _write_npz(tmp / "model.npz", model_arrays)
            _write_npz(tmp / "optimizer.npz", opt_arrays)
            _write_bytes(tmp / "state.json", json.dumps(state, indent=1).encode())
            _fsync_dir(tmp)
            final = self.directory / f"epoch_{completed_epochs:04d}"
            if final.exists():  # re-running an epoch after a resume
                trash = self.directory / f".old-{final.name}-{os.getpid()}"
                os.replace(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune()
        return final

    def _prune(self) -> None:
        done = self.completed()
        for _, path in done[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)
        for p in self.directory.iterdir():
            if p.name.startswith((".tmp-epoch_", ".old-")) and p.is_dir():
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
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        _assign_all(trainer.model.variables, path / "model.npz", "model", path)
        _assign_all(trainer.state_variables, path / "optimizer.npz", "optimizer", path)
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


def load_model_weights(model, folder: str | os.PathLike) -> None:
    """Put the model weights of checkpoint ``folder`` (an ``epoch_NNNN`` folder)
    into ``model``, built like the run's (e.g. loaded from its ``best.keras``)."""
    folder = Path(folder)
    _assign_all(model.variables, folder / "model.npz", "model", folder)


def _assign_all(variables, npz_path: Path, what: str, folder: Path) -> None:
    with np.load(npz_path) as data:
        arrays = [data[f"a{i}"] for i in range(len(data.files))]
    if len(arrays) != len(variables) or any(
        tuple(a.shape) != tuple(v.shape)
        for a, v in zip(arrays, variables, strict=False)
    ):
        raise UserError(
            f"Checkpoint {folder} does not match this {what} ({len(arrays)} saved "
            f"variables vs {len(variables)}). Resume with the run's own config.json, "
            f"or start a new run."
        )
    for v, a in zip(variables, arrays, strict=True):
        v.assign(a)


def _write_npz(path: Path, arrays) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **{f"a{i}": a for i, a in enumerate(arrays)})
        fh.flush()
        os.fsync(fh.fileno())


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
