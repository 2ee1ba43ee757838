"""Callbacks for staged fine-tuning: unfreezing, plateau LR, history.csv, best.keras.

All are plain ``keras.callbacks.Callback`` objects driven by `Trainer.fit`. The
trainer-aware ones (`TrainerAwareCallback`) get the trainer through ``set_trainer``
and keep resumable state through ``get_state``/``set_state``, saved in every epoch
checkpoint under their ``state_key`` (default: the class name).
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_art.atomic_files import atomic_path, atomic_write_text, to_builtin
from keras_art.models.backbones import set_backbone_trainable
from keras_art.registry import MONITOR_METRIC
from keras_art.run_dir import RunDir
from keras_art.training.schedules import monitor_mode
from keras_art.training.strategies import is_chief

logger = logging.getLogger(__name__)


class TrainerAwareCallback(keras.callbacks.Callback):
    """A callback that `Trainer.fit` hands itself to before training.

    Subclasses read ``self.trainer`` (None outside `Trainer.fit`) and override
    ``get_state``/``set_state`` for what must survive a resume. Checkpoints key that
    state by ``state_key`` (the class name unless set), so the order of the
    callbacks may change between a run and its resume; give two instances of one
    class distinct ``state_key``s.
    """

    state_key: str | None = None

    def __init__(self):
        super().__init__()
        self.trainer = None

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass

    def _is_chief(self) -> bool:
        return self.trainer is None or is_chief(self.trainer.strategy)


def _set_registry_backbone_trainable(backbone, from_stage, *, name, train_bn=False):
    set_backbone_trainable(backbone, name, from_stage, train_bn=train_bn)


class StagedUnfreeze(TrainerAwareCallback):
    """Stage 1: backbone frozen. Stage 2 (from ``unfreeze_epoch``, 0-based, or earlier
    when ``monitor`` stops improving for ``patience`` epochs if ``on_plateau``): the
    backbone learns from stage ``unfreeze_from`` on (BatchNorm stays frozen unless
    ``train_bn``).

    The stage is applied in ``on_train_begin`` (so a resumed run is in the right stage
    before its first step) and in ``on_epoch_begin``; the trainer retraces its step.

    Args:
        unfreeze_epoch: first stage-2 epoch; -1 = never.
        unfreeze_from: first backbone stage that learns ("conv1".."conv5").
        on_plateau: also unfreeze early when ``monitor`` plateaus in stage 1.
        patience: epochs without improvement that count as a plateau.
        monitor: a log key, e.g. ``val_macro_f1`` (mode max; ``*loss`` mode min).
        set_trainable: ``fn(backbone, from_stage | None)``; default
            `keras_art.models.backbones.set_backbone_trainable` for ``backbone``.
        backbone_name: the nested backbone model's name.
        backbone: the `keras_art.registry` backbone name (e.g. ``"resnet50"``);
            required unless ``set_trainable`` is given.
        train_bn: BatchNorm of the unfrozen stages learns too (default freezing).
    """

    def __init__(
        self,
        unfreeze_epoch: int,
        unfreeze_from: str,
        on_plateau: bool = False,
        patience: int = 2,
        monitor: str = MONITOR_METRIC,
        set_trainable: Callable | None = None,
        backbone_name: str = "backbone",
        *,
        backbone: str | None = None,
        train_bn: bool = False,
    ):
        super().__init__()
        if set_trainable is None:
            if backbone is None:
                raise TypeError(
                    "StagedUnfreeze needs backbone=<registry name> (e.g. "
                    "'resnet50') or set_trainable=fn(backbone, from_stage)."
                )
            set_trainable = functools.partial(
                _set_registry_backbone_trainable, name=backbone, train_bn=train_bn
            )
        self.unfreeze_epoch = int(unfreeze_epoch)
        self.unfreeze_from = unfreeze_from
        self.on_plateau = on_plateau
        self.patience = int(patience)
        self.monitor = monitor
        self.set_trainable = set_trainable
        self.backbone_name = backbone_name
        self.stage = 1
        self.unfrozen_at: int | None = None
        self._best: float | None = None
        self._wait = 0

    @classmethod
    def from_config_values(
        cls, train_cfg, backbone: str | None = None, **kwargs
    ) -> StagedUnfreeze:
        """Build from a `TrainConfig` (unfreeze_epoch, unfreeze_from, on plateau,
        train_bn) for backbone ``backbone`` (a `keras_art.registry` name)."""
        return cls(
            unfreeze_epoch=train_cfg.unfreeze_epoch,
            unfreeze_from=train_cfg.unfreeze_from,
            on_plateau=train_cfg.unfreeze_on_plateau,
            monitor=train_cfg.monitor,
            backbone=backbone,
            train_bn=bool(getattr(train_cfg, "train_bn", None)),
            **kwargs,
        )

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
        logger.info(
            "StagedUnfreeze: stage 2 from epoch %d: backbone learns from %s",
            epoch + 1,
            self.unfreeze_from,
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


class GroupReduceLROnPlateau(TrainerAwareCallback):
    """ReduceLROnPlateau for every variable group at once (seed 002).

    ``keras.callbacks.ReduceLROnPlateau`` changes only ``model.optimizer``'s learning
    rate, while the trainer steps one optimizer per group
    (`keras_art.training.optimizers.GroupAdamW`). This reduces the head's learning
    rate like Keras does (``max(lr * factor, min_lr)``, nothing once at ``min_lr``)
    and every other group by the same factor, so the groups' ratios stay fixed.

    Args:
        monitor, factor, patience, mode ("min"/"max"), min_lr, cooldown,
        min_delta: as in ``keras.callbacks.ReduceLROnPlateau``.
    """

    def __init__(
        self,
        monitor: str = MONITOR_METRIC,
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "max",
        min_lr: float = 0.0,
        cooldown: int = 0,
        min_delta: float = 0.0,
    ):
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1). Received: factor={factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'. Received: mode={mode}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.mode = mode
        self.min_lr = float(min_lr)
        self.cooldown = int(cooldown)
        self.min_delta = float(min_delta)
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def set_trainer(self, trainer) -> None:
        # A new fit starts fresh; a resume then puts the saved state back.
        super().set_trainer(trainer)
        self._reset()

    def get_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.wait = int(state.get("wait", 0))
        self.cooldown_counter = int(state.get("cooldown_counter", 0))

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            logger.warning(
                "GroupReduceLROnPlateau: %r is not in the logs (%s).",
                self.monitor,
                ", ".join(logs or {}),
            )
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(float(value)):
            self.best, self.wait = float(value), 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _reduce(self, epoch: int) -> bool:
        optimizer = self.trainer.optimizer
        head = optimizer.learning_rates()["head"]
        if head <= np.float32(self.min_lr):
            return False
        new = max(head * self.factor, self.min_lr)
        optimizer.scale_learning_rates(new / head)
        logger.info(
            "Epoch %d: GroupReduceLROnPlateau reducing every group's learning rate "
            "by %.3g (head: %.3g)",
            epoch + 1,
            new / head,
            new,
        )
        return True


def make_plateau_callback(
    train_cfg, monitor: str | None = None
) -> GroupReduceLROnPlateau | None:
    """Seed 002's plateau schedule on val macro-F1 (mode max), or None.

    Returns None unless ``train_cfg.schedule == "plateau"``.
    """
    if train_cfg.schedule != "plateau":
        return None
    monitor = monitor or train_cfg.monitor
    return GroupReduceLROnPlateau(
        monitor=monitor,
        factor=train_cfg.plateau_factor,
        patience=train_cfg.plateau_patience,
        mode=monitor_mode(monitor),
        min_lr=train_cfg.eta_min,
    )


class HistoryLogger(TrainerAwareCallback):
    """Rewrites ``history.csv`` atomically after every epoch (all epochs so far).

    Columns: ``epoch`` (1-based), then every log key (loss, metrics, ``val_*``,
    ``learning_rate``, ``lr_<group>``, ``stage``, ``epoch_time_s``).
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, logs=None):
        # A resumed run keeps the earlier epochs (restored before on_train_begin).
        # Keys sorted as Keras hands logs to on_epoch_end, so the resumed file keeps
        # the uninterrupted run's column order and its earlier lines byte for byte.
        records = getattr(self.trainer, "history_records", None) or []
        self.rows = []
        for r in records:
            rest = {k: r[k] for k in sorted(r) if k != "epoch"}
            self.rows.append({"epoch": int(r["epoch"]) + 1, **rest})

    def on_epoch_end(self, epoch, logs=None):
        row = {k: to_builtin(v) for k, v in (logs or {}).items()}
        self.rows.append({"epoch": epoch + 1, **row})
        if self._is_chief():
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


class BestModelCheckpoint(TrainerAwareCallback):
    """Saves the model to ``path`` (``best.keras``) when ``monitor`` improves.

    Written to a temp file beside it and renamed, so ``best.keras`` is always
    complete. The optimizer is left out (it is in the epoch checkpoints); the file
    loads with ``keras.saving.load_model`` for evaluation and export. An epoch with
    a non-finite loss or weights is never a candidate: a model with NaN weights
    still gets a finite macro-F1 (argmax of NaN rows is class 0).

    Every worker also keeps the best weights in memory (`restore_best_weights`), so
    after a multi-worker run each one evaluates the same weights without reading a
    file the chief may still be writing. ``path=None`` keeps them in memory only
    (tuning trials).
    """

    def __init__(self, path: str | os.PathLike | None, monitor: str = MONITOR_METRIC):
        super().__init__()
        self.path = None if path is None else Path(path)
        self.monitor = monitor
        self.mode = monitor_mode(monitor)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: list | None = None

    def restore_best_weights(self) -> bool:
        """Put the best weights back into the model; False when there are none.

        From memory when the best epoch ran in this process, else from ``path``
        (a resumed run whose best epoch came before the interruption).
        """
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            return True
        if self.best is None or self.path is None or not self.path.exists():
            return False
        best = keras.saving.load_model(self.path, compile=False)
        self.model.set_weights(best.get_weights())
        return True

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
        if not _finite_epoch(logs, self.model):
            logger.warning(
                "BestModelCheckpoint: epoch %d has a non-finite loss or weights; "
                "%s is not updated.",
                epoch + 1,
                "the best model",
            )
            return
        self.best, self.best_epoch = value, epoch
        self.best_weights = self.model.get_weights()
        if self.path is not None and self._is_chief():
            save_model_atomic(self.model, self.path)


def _finite_epoch(logs: dict, model: keras.Model) -> bool:
    """True when every logged loss and every float weight of ``model`` is finite."""
    losses = [v for k, v in logs.items() if k == "loss" or k.endswith("_loss")]
    if not np.isfinite(np.asarray(losses, dtype=np.float64)).all():
        return False
    # One reduction per variable inside TensorFlow: copying every weight out to
    # numpy took 3x longer (0.25 vs 0.08 s per epoch for ResNet50 + spp).
    checks = [
        tf.reduce_all(tf.math.is_finite(w.value))
        for w in model.weights
        if "float" in str(w.dtype)
    ]
    return not checks or bool(tf.reduce_all(tf.stack(checks)))


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> Path:
    """Save to a temp ``.keras`` beside ``path``, then rename; no optimizer."""
    path = Path(path)
    optimizer = getattr(model, "optimizer", None)
    try:
        model.optimizer = None
        # Keras insists on the .keras suffix for the temp file too.
        with atomic_path(path, suffix=path.suffix) as tmp:
            model.save(tmp)
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


def staged_callbacks(
    train_cfg,
    *,
    best_path: str | os.PathLike | None = None,
    set_trainable: Callable | None = None,
    backbone_name: str = "backbone",
    backbone: str | None = None,
) -> list[keras.callbacks.Callback]:
    """What staged fine-tuning needs, in order: unfreeze, plateau LR, early stop,
    NaN stop, the best weights (kept in memory, and saved to ``best_path`` when
    given). A run adds its files (`default_callbacks`); a tuning trial does not.

    ``backbone`` is the `keras_art.registry` name the unfreeze freezes by (required
    unless ``set_trainable`` is given)."""
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
        BestModelCheckpoint(best_path, monitor=train_cfg.monitor),
    ]
    return [cb for cb in cbs if cb is not None]


def default_callbacks(
    train_cfg,
    run_dir: str | os.PathLike,
    *,
    tensorboard: bool = True,
    set_trainable: Callable | None = None,
    backbone_name: str = "backbone",
    backbone: str | None = None,
) -> list[keras.callbacks.Callback]:
    """A run's callbacks: `staged_callbacks` saving ``best.keras``, then
    ``history.csv`` and TensorBoard (``<run>/logs``)."""
    run = RunDir(run_dir)
    cbs = [
        *staged_callbacks(
            train_cfg,
            best_path=run.best_model,
            set_trainable=set_trainable,
            backbone_name=backbone_name,
            backbone=backbone,
        ),
        HistoryLogger(run.history),
    ]
    if tensorboard:
        cbs.append(
            keras.callbacks.TensorBoard(
                log_dir=str(run.logs), write_graph=False, profile_batch=0
            )
        )
    return cbs
