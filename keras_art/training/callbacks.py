"""Callbacks for staged fine-tuning: unfreezing, history.csv, best.keras, early stop.

All are plain ``keras.callbacks.Callback`` objects driven by `Trainer.fit`. The
trainer-aware ones take the trainer through ``set_trainer`` and keep resumable state
through ``get_state``/``set_state`` (saved in every epoch checkpoint).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_art.io_utils import atomic_write_text
from keras_art.training.schedules import make_plateau_callback, monitor_mode
from keras_art.training.strategies import is_chief


def _default_set_trainable(backbone, from_stage, *, name, train_bn=False):
    from keras_art.models.backbones import set_backbone_trainable

    set_backbone_trainable(backbone, name, from_stage, train_bn=train_bn)


class StagedUnfreeze(keras.callbacks.Callback):
    """Stage 1: backbone frozen. Stage 2 (from ``unfreeze_epoch``, 0-based, or earlier
    when ``monitor`` stops improving for ``patience`` epochs if ``on_plateau``): the
    backbone learns from stage ``unfreeze_from`` on (BatchNorm stays frozen).

    The stage is applied in ``on_train_begin`` (so a resumed run is in the right stage
    before its first step) and in ``on_epoch_begin``; the trainer retraces its step.

    Args:
        unfreeze_epoch: first stage-2 epoch; -1 = never.
        unfreeze_from: first backbone stage that learns ("conv1".."conv5").
        on_plateau: also unfreeze early when ``monitor`` plateaus in stage 1.
        patience: epochs without improvement that count as a plateau.
        monitor: a log key, e.g. ``val_macro_f1`` (mode max; ``*loss`` mode min).
        set_trainable: ``fn(backbone, from_stage | None)``; default
            `keras_art.models.backbones.set_backbone_trainable`.
        backbone_name: the nested backbone model's name.
    """

    def __init__(
        self,
        unfreeze_epoch: int,
        unfreeze_from: str,
        on_plateau: bool = False,
        patience: int = 2,
        monitor: str = "val_macro_f1",
        set_trainable: Callable | None = None,
        backbone_name: str = "backbone",
    ):
        super().__init__()
        self.unfreeze_epoch = int(unfreeze_epoch)
        self.unfreeze_from = unfreeze_from
        self.on_plateau = on_plateau
        self.patience = int(patience)
        self.monitor = monitor
        self.set_trainable = set_trainable or functools.partial(
            _default_set_trainable, name="resnet50"
        )
        self.backbone_name = backbone_name
        self.trainer = None
        self.stage = 1
        self.unfrozen_at: int | None = None
        self._best: float | None = None
        self._wait = 0

    @classmethod
    def from_config_values(
        cls, train_cfg, backbone: str = "resnet50", **kwargs
    ) -> StagedUnfreeze:
        """Build from a `TrainConfig` (unfreeze_epoch, unfreeze_from, on plateau,
        train_bn) for backbone ``backbone`` (a `keras_art.registry` name)."""
        if kwargs.get("set_trainable") is None:
            kwargs["set_trainable"] = functools.partial(
                _default_set_trainable,
                name=backbone,
                train_bn=bool(getattr(train_cfg, "train_bn", None)),
            )
        return cls(
            unfreeze_epoch=train_cfg.unfreeze_epoch,
            unfreeze_from=train_cfg.unfreeze_from,
            on_plateau=train_cfg.unfreeze_on_plateau,
            monitor=train_cfg.monitor,
            **kwargs,
        )

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    def get_state(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "unfrozen_at": self.unfrozen_at,
            "best": self._best,
            "wait": self._wait,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.stage = int(state["stage"])
        self.unfrozen_at = state.get("unfrozen_at")
        self._best = state.get("best")
        self._wait = int(state.get("wait", 0))

    def _apply(self) -> None:
        backbone = self.model.get_layer(self.backbone_name)
        self.set_trainable(backbone, None if self.stage == 1 else self.unfreeze_from)
        if self.trainer is not None:
            self.trainer.stage = self.stage
            self.trainer.invalidate_step()

    def _unfreeze(self, epoch: int) -> None:
        self.stage, self.unfrozen_at = 2, epoch
        self._apply()
        print(
            f"StagedUnfreeze: stage 2 from epoch {epoch + 1}: backbone learns from "
            f"{self.unfreeze_from}"
        )

    def on_train_begin(self, logs=None):
        self._apply()

    def on_epoch_begin(self, epoch, logs=None):
        if self.stage == 1 and 0 <= self.unfreeze_epoch <= epoch:
            self._unfreeze(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["stage"] = self.stage
        if self.stage != 1 or not self.on_plateau or self.unfreeze_epoch < 0:
            return
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        better = (
            self._best is None
            or (monitor_mode(self.monitor) == "max" and value > self._best)
            or (monitor_mode(self.monitor) == "min" and value < self._best)
        )
        if better:
            self._best, self._wait = value, 0
            return
        self._wait += 1
        if self._wait >= self.patience:
            self._unfreeze(epoch + 1)


class HistoryLogger(keras.callbacks.Callback):
    """Rewrites ``history.csv`` atomically after every epoch (all epochs so far).

    Columns: ``epoch`` (1-based), then every log key (loss, metrics, ``val_*``,
    ``learning_rate``, ``lr_<group>``, ``stage``, ``epoch_time_s``).
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self.trainer = None

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        # A resumed run keeps the earlier epochs (restored before on_train_begin).
        records = getattr(self.trainer, "history_records", None) or []
        self.rows = [{**r, "epoch": int(r["epoch"]) + 1} for r in records]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        for k, v in (logs or {}).items():
            if isinstance(v, (int, np.integer)):
                row[k] = int(v)
            elif isinstance(v, (float, np.floating)):
                row[k] = float(v)
            else:
                row[k] = v
        self.rows.append(row)
        if self.trainer is None or is_chief(self.trainer.strategy):
            atomic_write_text(self.path, rows_to_csv(self.rows))


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text with the union of the rows' keys as columns (``epoch`` first)."""
    columns: list[str] = ["epoch"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to ``path`` (``best.keras``) when ``monitor`` improves.

    Written to a temp file beside it and renamed, so ``best.keras`` is always
    complete. The optimizer is left out (it is in the epoch checkpoints); the file
    loads with ``keras.saving.load_model`` for evaluation and export.
    """

    def __init__(self, path: str | os.PathLike, monitor: str = "val_macro_f1"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = monitor_mode(monitor)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.trainer = None

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value):
            return
        value = float(value)
        if self.best is not None and (
            value <= self.best if self.mode == "max" else value >= self.best
        ):
            return
        self.best, self.best_epoch = value, epoch
        if self.trainer is None or is_chief(self.trainer.strategy):
            save_model_atomic(self.model, self.path)


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save to a temp ``.keras`` beside ``path``, then rename; no optimizer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=".keras", dir=path.parent
    )
    os.close(fd)
    optimizer = getattr(model, "optimizer", None)
    try:
        model.optimizer = None
        model.save(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        model.optimizer = optimizer
    return path


def make_early_stopping(train_cfg) -> keras.callbacks.EarlyStopping | None:
    """EarlyStopping on ``train_cfg.monitor`` (mode max for F1), or None when off."""
    if not train_cfg.early_stopping_patience:
        return None
    return keras.callbacks.EarlyStopping(
        monitor=train_cfg.monitor,
        mode=monitor_mode(train_cfg.monitor),
        patience=train_cfg.early_stopping_patience,
        verbose=1,
    )


def default_callbacks(
    train_cfg,
    run_dir: str | os.PathLike,
    *,
    tensorboard: bool = True,
    set_trainable: Callable | None = None,
    backbone_name: str = "backbone",
    backbone: str = "resnet50",
) -> list[keras.callbacks.Callback]:
    """The run's callbacks, in order: unfreeze, plateau LR, early stop, NaN stop,
    ``best.keras``, ``history.csv``, TensorBoard (``<run>/logs``)."""
    run_dir = Path(run_dir)
    cbs: list[keras.callbacks.Callback | None] = [
        StagedUnfreeze.from_config_values(
            train_cfg,
            backbone=backbone,
            set_trainable=set_trainable,
            backbone_name=backbone_name,
        ),
        make_plateau_callback(train_cfg),
        make_early_stopping(train_cfg),
        keras.callbacks.TerminateOnNaN(),
        BestModelCheckpoint(run_dir / "best.keras", monitor=train_cfg.monitor),
        HistoryLogger(run_dir / "history.csv"),
    ]
    if tensorboard:
        cbs.append(
            keras.callbacks.TensorBoard(
                log_dir=str(run_dir / "logs"), write_graph=False, profile_batch=0
            )
        )
    return [cb for cb in cbs if cb is not None]
