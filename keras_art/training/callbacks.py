"""Callbacks for staged fine-tuning: the stages (what trains, LRs, early stopping,
plateau LR), history.csv, best.keras.

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
from keras_art.stage_plan import Stage, resolve_stages
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


class StageSchedule(TrainerAwareCallback):
    """Trains through a run's stages (`keras_art.stage_plan.Stage`) in order.

    A stage starts at the first epoch after the previous one ended: the backbone
    learns from the stage's ``unfreeze_from`` (none: frozen; BatchNorm by its
    ``train_bn``), the trainer enters the stage (`Trainer.enter_stage`: its
    learning rates and augmentation; the step is traced again), and early stopping
    and the plateau (`GroupReduceLROnPlateau`) restart with the stage's settings.
    A stage ends after its ``epochs`` or when ``monitor`` has not improved for its
    early-stopping patience; the run ends after the last stage. Stages of 0 epochs
    (the shorthand's ``unfreeze_epoch=0``) are skipped.

    Every checkpoint holds the stage, its epoch count and its early-stopping and
    plateau state (`get_state`); ``on_train_begin`` puts the stage back before the
    first step, so a run resumes mid-stage as if never stopped. A fresh ``fit``
    from ``initial_epoch`` > 0 (a Hyperband round continuing a trial) starts in
    the stage that epoch falls in by the stages' lengths.

    Args:
        stages: the resolved stages (`keras_art.stage_plan.resolve_stages`).
        monitor: the log key early stopping and the plateau watch (mode max;
            ``*loss`` mode min).
        plateau_min_lr: the plateau's floor for the head's LR (``train.eta_min``).
        set_trainable: ``fn(backbone, from_stage | None, *, train_bn)``; default
            `keras_art.models.backbones.set_backbone_trainable` for ``backbone``.
        backbone_name: the nested backbone model's name.
        backbone: the `keras_art.registry` backbone name (e.g. ``"resnet50"``);
            required unless ``set_trainable`` is given.
    """

    def __init__(
        self,
        stages,
        *,
        monitor: str = MONITOR_METRIC,
        plateau_min_lr: float = 0.0,
        set_trainable: Callable | None = None,
        backbone_name: str = "backbone",
        backbone: str | None = None,
    ):
        super().__init__()
        if set_trainable is None:
            if backbone is None:
                raise TypeError(
                    "StageSchedule needs backbone=<registry name> (e.g. "
                    "'resnet50') or set_trainable=fn(backbone, from_stage, "
                    "train_bn=...)."
                )
            set_trainable = functools.partial(
                _set_registry_backbone_trainable, name=backbone
            )
        if not any(stage.epochs > 0 for stage in stages):
            raise ValueError("StageSchedule needs a stage with at least one epoch.")
        self.stages = tuple(stages)
        self.monitor = monitor
        self.plateau_min_lr = float(plateau_min_lr)
        self.set_trainable = set_trainable
        self.backbone_name = backbone_name
        self._reset()

    @classmethod
    def from_train_config(cls, train_cfg, **kwargs) -> StageSchedule:
        """The stages of a `TrainConfig` (`resolve_stages`), its monitor and floor."""
        return cls(
            resolve_stages(train_cfg),
            monitor=train_cfg.monitor,
            plateau_min_lr=train_cfg.eta_min,
            **kwargs,
        )

    def _reset(self) -> None:
        self.position = 0  # index into stages
        self.epochs_done = 0  # epochs the current stage has trained
        self.ended = False  # its early stopping ended it
        self.started = False
        self._best: float | None = None
        self._wait = 0
        self._plateau: GroupReduceLROnPlateau | None = None
        self._plateau_state: dict | None = None
        self._fresh = False  # started by this fit, no epoch run yet

    @property
    def stage(self) -> Stage:
        return self.stages[self.position]

    def set_trainer(self, trainer) -> None:
        # A new fit starts at the first stage; a resume then puts the state back.
        super().set_trainer(trainer)
        self._reset()

    def get_state(self) -> dict[str, Any]:
        # Flat (checkpoints keep plain values): the plateau's keys get a prefix.
        plateau = {} if self._plateau is None else self._plateau.get_state()
        return {
            "position": self.position,
            "epochs_done": self.epochs_done,
            "ended": self.ended,
            "started": self.started,
            "best": self._best,
            "wait": self._wait,
            **{f"plateau_{k}": v for k, v in plateau.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])
        self.epochs_done = int(state["epochs_done"])
        self.ended = bool(state["ended"])
        self.started = bool(state["started"])
        self._best = state.get("best")
        self._wait = int(state.get("wait", 0))
        self._plateau_state = {
            k.removeprefix("plateau_"): v
            for k, v in state.items()
            if k.startswith("plateau_")
        }

    def _next(self, position: int) -> int | None:
        """The first stage from ``position`` on that trains at least one epoch."""
        for i in range(position, len(self.stages)):
            if self.stages[i].epochs > 0:
                return i
        return None

    def _over(self) -> bool:
        return self.ended or self.epochs_done >= self.stage.epochs

    def _last(self) -> bool:
        return self._at_end(self.position)

    def _at_end(self, position: int) -> bool:
        return self._next(position + 1) is None

    def on_train_begin(self, logs=None):
        if not self.started:
            self._start(0)
            self._fresh = True
            return
        self._apply(start=False)  # a resume: the restored stage, its LRs kept
        self._plateau = self._make_plateau()
        if self._plateau is not None and self._plateau_state:
            self._plateau.set_state(self._plateau_state)
        if self._over() and self._last():
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._fresh and epoch > 0:
            self._start(epoch)
        elif self._over() and not self._last():
            self._start(epoch, self._next(self.position + 1))
        self._fresh = False

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        logs["stage"] = self.stage.index  # an int in history.csv, not 1.0
        self.epochs_done += 1
        if self._plateau is not None:
            self._plateau.on_epoch_end(epoch, logs)
        self._early_stopping(epoch, logs.get(self.monitor))
        if self._over() and self._last():
            self.model.stop_training = True

    def _early_stopping(self, epoch: int, value) -> None:
        patience = self.stage.early_stopping_patience
        if not patience or value is None:
            return
        value = float(value)
        mode = monitor_mode(self.monitor)
        if (
            self._best is None
            or (mode == "max" and value > self._best)
            or (mode == "min" and value < self._best)
        ):
            self._best, self._wait = value, 0
            return
        self._wait += 1
        if self._wait >= patience:
            self.ended = True
            logger.info(
                "Epoch %d: %s has not improved for %d epochs: stage %d %s ends%s",
                epoch + 1,
                self.monitor,
                patience,
                self.stage.index,
                self.stage.name,
                ", and the run" if self._last() else "",
            )

    def _start(self, epoch: int, position: int | None = None) -> None:
        """Start stage ``position`` at ``epoch``; None: the stage ``epoch`` falls
        in when each stage runs all its epochs (partly done when inside it)."""
        self._reset()
        done = 0
        if position is None:
            position, done = self._next(0), epoch
            while done >= self.stages[position].epochs and not self._at_end(position):
                done -= self.stages[position].epochs
                position = self._next(position + 1)
        self.position, self.epochs_done, self.started = position, done, True
        self._apply(start=True)
        self._plateau = self._make_plateau()
        stage = self.stage
        rates = self.trainer.group_learning_rates() if self.trainer else None
        logger.info(
            "Stage %d/%d %s from epoch %d: %s",
            stage.index,
            len(self.stages),
            stage.name,
            epoch + 1,
            stage.describe(rates),
        )

    def _apply(self, start: bool) -> None:
        stage = self.stage
        backbone = self.model.get_layer(self.backbone_name)
        self.set_trainable(backbone, stage.unfreeze_from, train_bn=stage.train_bn)
        if self.trainer is not None:
            self.trainer.enter_stage(stage, start=start)

    def _make_plateau(self) -> GroupReduceLROnPlateau | None:
        stage = self.stage
        if stage.plateau_patience <= 0:
            return None
        plateau = GroupReduceLROnPlateau(
            monitor=self.monitor,
            factor=stage.plateau_factor,
            patience=stage.plateau_patience,
            mode=monitor_mode(self.monitor),
            min_lr=self.plateau_min_lr,
        )
        plateau.set_model(self.model)
        if self.trainer is not None:
            plateau.set_trainer(self.trainer)
        return plateau


class HistoryLogger(TrainerAwareCallback):
    """Rewrites ``history.csv`` atomically after every epoch (all epochs so far).

    Columns: ``epoch`` (1-based), then every log key (loss, metrics, ``val_*``,
    ``learning_rate``, ``lr_<group>``, ``stage``, ``epoch_time_s``); with
    ``stages``, ``stage`` is followed by the stage's ``stage_name``, ``trainable``
    (``head``, ``head+conv3-conv5``, ``+bn`` when BatchNorm learns) and ``augment``
    (its augmentation overrides). The logs themselves stay numeric (TensorBoard).
    """

    def __init__(self, path: str | os.PathLike, stages: tuple[Stage, ...] = ()):
        super().__init__()
        self.path = Path(path)
        self.stages = {stage.index: stage for stage in stages}
        self.rows: list[dict[str, Any]] = []

    def _row(self, epoch: int, values: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": epoch + 1}
        for key, value in values.items():
            row[key] = value
            stage = self.stages.get(value) if key == "stage" else None
            if stage is not None:
                row["stage_name"] = stage.name
                row["trainable"] = stage.trainable
                row["augment"] = stage.augment_label
        return row

    def on_train_begin(self, logs=None):
        # A resumed run keeps the earlier epochs (restored before on_train_begin).
        # Keys sorted as Keras hands logs to on_epoch_end, so the resumed file keeps
        # the uninterrupted run's column order and its earlier lines byte for byte.
        records = getattr(self.trainer, "history_records", None) or []
        self.rows = []
        for r in records:
            rest = {k: r[k] for k in sorted(r) if k != "epoch"}
            self.rows.append(self._row(int(r["epoch"]), rest))

    def on_epoch_end(self, epoch, logs=None):
        row = {k: to_builtin(v) for k, v in (logs or {}).items()}
        self.rows.append(self._row(epoch, row))
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


def staged_callbacks(
    train_cfg,
    *,
    best_path: str | os.PathLike | None = None,
    set_trainable: Callable | None = None,
    backbone_name: str = "backbone",
    backbone: str | None = None,
) -> list[keras.callbacks.Callback]:
    """What staged fine-tuning needs, in order: the stages (`StageSchedule`: what
    trains, LRs, each stage's early stop and plateau), NaN stop, the best weights
    (kept in memory, and saved to ``best_path`` when given). A run adds its files
    (`default_callbacks`); a tuning trial does not.

    ``backbone`` is the `keras_art.registry` name the stages freeze by (required
    unless ``set_trainable`` is given)."""
    return [
        StageSchedule.from_train_config(
            train_cfg,
            backbone=backbone,
            set_trainable=set_trainable,
            backbone_name=backbone_name,
        ),
        keras.callbacks.TerminateOnNaN(),
        BestModelCheckpoint(best_path, monitor=train_cfg.monitor),
    ]


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
        HistoryLogger(run.history, resolve_stages(train_cfg)),
    ]
    if tensorboard:
        cbs.append(
            keras.callbacks.TensorBoard(
                log_dir=str(run.logs), write_graph=False, profile_batch=0
            )
        )
    return cbs
