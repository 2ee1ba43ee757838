"""`PaintingHyperModel`: one KerasTuner trial = one short keras_art training run.

``build(hp)`` declares the search space (`tuning.space`) and builds the model with
`keras_art.models.classifier.build_classifier`; ``fit(hp, model, ...)`` trains it
with the staged `keras_art.training.trainer.Trainer` and its callbacks (early
stopping, plateau LR, NaN stop, best weights in memory): the same data preparation,
pipeline, model and loop as ``python -m keras_art.train``, no second training loop.

What a trial may differ in is only the model and the optimisation; the data and the
frozen backbone are shared (`TrialData`). With ``--stage head`` the backbone never
learns, so its features of the train split (and of each horizontal flip) and of the
val split are computed once, before the first trial, and every trial trains and
validates the head on them (`keras_art.training.feature_cache`).

The objective is ``val_f1``: the trial's best validation macro-F1 (mean over tasks
for multi-task), maximised. The trainer logs it as ``val_macro_f1``; `ObjectiveAlias`
copies it to ``val_f1`` for KerasTuner's own per-epoch callbacks.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from keras_art.config import Config
from keras_art.data.catalog.prepare import prepare_data
from keras_art.data.pipeline.batch_augment import make_batch_augment
from keras_art.data.pipeline.dataset import make_split_datasets
from keras_art.errors import UserError
from keras_art.models.backbones import backbone_stages
from keras_art.models.classifier import build_classifier
from keras_art.registry import MONITOR_METRIC
from keras_art.training.callbacks import staged_callbacks
from keras_art.training.feature_cache import (
    compute_features,
    eval_feature_dataset,
    train_feature_dataset,
)
from keras_art.training.trainer import Trainer
from tuning.shared_features import FeatureArrays, shared_features
from tuning.space import active_values, apply_values, declare

logger = logging.getLogger(__name__)

OBJECTIVE = "val_f1"
TRAINER_METRIC = MONITOR_METRIC


def objective() -> keras_tuner.Objective:
    """Validation macro-F1, maximised. It must be explicit: KerasTuner cannot
    infer the direction of a custom metric name and would minimise it."""
    return keras_tuner.Objective(OBJECTIVE, direction="max")


@dataclass
class TrialData:
    """What every trial shares: the prepared rows, the pipelines and, when the
    backbone stays frozen, its weights and cached features."""

    prepared: Any
    datasets: dict
    backbone_weights: list | None = None
    feature_train: tf.data.Dataset | None = None
    feature_val: tf.data.Dataset | None = None


def prepare_trial_data(
    cfg: Config, strategy, *, cache_features: bool, shared_cache: Path | None = None
) -> TrialData:
    """Prepare the data once for the search; with ``cache_features``, run the
    frozen backbone once over train (with flips when the recipe flips) and val.
    With ``shared_cache`` (a distributed search's folder) the features are computed
    by one worker and read by the others (`tuning.shared_features`)."""

    prepared = prepare_data(cfg)
    if cache_features:
        cfg = copy.deepcopy(cfg)
        cfg.train.feature_cache = True  # make_split_datasets adds "train_eval"
    datasets = make_split_datasets(cfg, prepared)
    if datasets.get("val") is None:
        raise UserError(
            "The val split is empty, and a search is scored on it. Give data.split "
            "a val fraction, e.g. data.split=[0.8, 0.1, 0.1]."
        )
    data = TrialData(prepared, datasets)
    if cache_features:
        _cache_features(cfg, strategy, data, shared_cache)
    return data


def _cache_features(cfg: Config, strategy, data: TrialData, shared_cache) -> None:
    start = time.time()

    def compute() -> FeatureArrays:
        with strategy.scope():
            model, _ = build_classifier(
                cfg.model, data.prepared.num_classes, on_missing_weights=on_missing(cfg)
            )
        backbone = model.get_layer("backbone")
        return FeatureArrays(
            train=compute_features(
                backbone, data.datasets["train_eval"], flips=cfg.augment.hflip
            ),
            val=compute_features(backbone, data.datasets["val"]),
            backbone_weights=backbone.get_weights(),
        )

    arrays = (
        compute() if shared_cache is None else shared_features(shared_cache, compute)
    )
    data.backbone_weights = arrays.backbone_weights
    batch = cfg.input.batch_size
    data.feature_train = train_feature_dataset(
        *arrays.train, batch_size=batch, flips=cfg.augment.hflip, seed=cfg.train.seed
    )
    data.feature_val = eval_feature_dataset(*arrays.val, batch_size=batch)
    logger.info(
        "search: the frozen backbone's features of train and val ready in %.0f s; "
        "trials train the head only",
        time.time() - start,
    )


def on_missing(cfg: Config) -> str:
    """Only the embedded sample may fall back to random weights offline (as train)."""
    return "random" if cfg.data.format == "sample" else "error"


def trial_config(base: Config, values: dict[str, Any], *, epochs: int) -> Config:
    """The config one trial trains with: ``base`` plus the trial's values, sized
    to ``epochs``; ``--stage head`` keeps the backbone frozen throughout."""
    cfg = apply_values(base, values)
    cfg.train.epochs = epochs
    cfg.train.cosine_t_max_epochs = max(epochs, 1)
    # A trial runs the two-stage shorthand (its unfreeze epoch and stage are
    # hyperparameters), whatever stages the preset lists.
    cfg.train.stages = []
    if cfg.tune.stage == "head":
        cfg.train.unfreeze_epoch = -1
        cfg.train.unfreeze_on_plateau = False
        cfg.train.lr_groups = {}
    return cfg.validate()


class ObjectiveAlias(keras.callbacks.Callback):
    """Copies the trainer's ``val_macro_f1`` to ``val_f1`` in each epoch's logs,
    before KerasTuner's callbacks (best-epoch checkpoint) read them."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and TRAINER_METRIC in logs:
            logs[OBJECTIVE] = logs[TRAINER_METRIC]


class SearchSpace(keras_tuner.HyperModel):
    """Declares ``space``'s hyperparameters and builds nothing.

    A tuner learns its space by building the hypermodel once per conditional branch
    (a full ResNet50 each time with `PaintingHyperModel`); this gives it the same
    space at no cost (`tuning.searcher.make_tuner`), and it is all the chief of a
    distributed search, which trains nothing, ever builds."""

    def __init__(self, space: dict):
        super().__init__(name="painting_space", tunable=True)
        self.space = space

    def build(self, hp) -> None:
        declare(hp, self.space)


class PaintingHyperModel(keras_tuner.HyperModel):
    """Builds and trains one trial of the search (see module doc).

    Args:
        base: the resolved `Config` (preset, ``--config``, ``--set``); its ``tune``
            section holds the stage and the trial length.
        space: the resolved space (`tuning.space.resolve_space`).
        data: the shared `TrialData`.
        strategy: the ``tf.distribute`` strategy trials build and train under.
        keep_checkpoints: let KerasTuner save each trial's best weights (the
            whole model: about 100 MB with ResNet50). Hyperband needs them (a
            later round continues a trial); the other tuners never read them.
    """

    def __init__(
        self,
        base: Config,
        space: dict,
        data: TrialData,
        strategy,
        *,
        keep_checkpoints: bool = True,
    ):
        super().__init__(name="painting_classifier", tunable=True)
        self.keep_checkpoints = keep_checkpoints
        self.base = base
        self.space = space
        self.data = data
        self.strategy = strategy
        self.last_epoch_seconds: list[float] = []  # of the last fit (benchmarks)

    def build(self, hp) -> keras.Model:
        values = declare(hp, self.space)
        cfg = self._config(values, self.base.tune.epochs)
        with self.strategy.scope():
            model, _ = build_classifier(
                cfg.model,
                self.data.prepared.num_classes,
                on_missing_weights=on_missing(cfg),
            )
        if self.data.backbone_weights is not None:
            # Every trial starts from the backbone the cache was computed with.
            model.get_layer("backbone").set_weights(self.data.backbone_weights)
        return model

    def fit(self, hp, model, *args, epochs=None, initial_epoch=0, callbacks=(), **kw):
        """Train ``model``; return the trial's metrics (``val_f1`` first)."""

        epochs = int(epochs or self.base.tune.epochs)
        cfg = self._config(active_values(hp, self.space), epochs)
        trainer = Trainer(
            model,
            self.data.prepared.tasks,
            cfg.train,
            self.strategy,
            verbose=0,
            stages=backbone_stages(model.get_layer("backbone"), cfg.model.backbone),
            batch_augment=make_batch_augment(cfg.augment, cfg.input),
        )
        own = staged_callbacks(cfg.train, backbone=cfg.model.backbone)
        if not self.keep_checkpoints:
            callbacks = [cb for cb in callbacks if not _is_trial_checkpoint(cb)]
        start = time.time()
        try:
            history = trainer.fit(
                self.data.datasets["train_for_epoch"],
                self.data.datasets["val"],
                epochs=epochs,
                initial_epoch=int(initial_epoch),
                callbacks=[*own, ObjectiveAlias(), *callbacks],
                feature_train_ds=self.data.feature_train,
                feature_val_ds=self.data.feature_val,
            )
        except tf.errors.ResourceExhaustedError as exc:
            raise keras_tuner.errors.FailedTrialError(
                f"out of memory: {exc.message.splitlines()[0]}"
            ) from None
        self.last_epoch_seconds = list(history.history.get("epoch_time_s", []))
        return trial_metrics(history.history, seconds=time.time() - start)

    def _config(self, values: dict[str, Any], epochs: int) -> Config:
        try:
            return trial_config(self.base, values, epochs=epochs)
        except UserError as exc:  # a combination the config refuses
            raise keras_tuner.errors.FailedTrialError(str(exc)) from None


def _is_trial_checkpoint(callback) -> bool:
    """KerasTuner's per-trial best-weights saver, which `Tuner.run_trial` adds to
    every trial's callbacks; no public name reaches it, so it is known by its class
    name (`tests/tuning/test_search.py` fails if that stops matching)."""
    return type(callback).__name__ == "SaveBestEpoch"


def trial_metrics(history: dict[str, list], *, seconds: float) -> dict[str, float]:
    """The best epoch's validation numbers, or `FailedTrialError` when no epoch
    ended with a finite loss and score (NaN, or nothing trained)."""
    losses = np.asarray(history.get("loss", []), dtype=np.float64)
    scores = np.asarray(history.get(TRAINER_METRIC, []), dtype=np.float64)
    if losses.size and not np.isfinite(losses).all():
        raise keras_tuner.errors.FailedTrialError(
            f"the loss became NaN or infinite at epoch "
            f"{int(np.argmin(np.isfinite(losses))) + 1}"
        )
    if not scores.size or not np.isfinite(scores).any():
        raise keras_tuner.errors.FailedTrialError("no epoch produced a val macro-F1")
    best = int(np.nanargmax(scores))

    def at_best(key: str) -> float:
        values = history.get(key)
        return float(values[best]) if values else math.nan

    return {
        OBJECTIVE: float(scores[best]),
        "val_top1": at_best("val_top1"),
        "val_top5": at_best("val_top5"),
        "val_loss": at_best("val_loss"),
        "best_epoch": float(best + 1),
        "epochs": float(scores.size),
        "seconds": float(seconds),
    }
