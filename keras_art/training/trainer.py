"""One custom training loop for every ``tf.distribute`` strategy, with Keras callbacks.

``Model.fit`` is broken under MultiWorkerMirroredStrategy in Keras 3 (keras #20585), so
all strategies share this loop: ``strategy.experimental_distribute_dataset`` ->
``strategy.run(forward)`` in a ``tf.function`` (loss, gradients summed over replicas
once) -> ``strategy.run(apply)``: `GroupAdamW` clips the summed gradients at one
global norm and steps one stock AdamW per variable group (float16: the step is
skipped when a gradient is not finite, `DynamicLossScale`) -> sums of losses and
confusion matrices reduced across replicas -> exact epoch metrics -> a
``keras.callbacks.CallbackList`` (`StageSchedule`, TerminateOnNaN, TensorBoard,
history and checkpoint callbacks).

Training stages (`keras_art.stage_plan`) are entered through `Trainer.enter_stage`
(by `keras_art.training.callbacks.StageSchedule`): the stage's learning rates,
and its augmentation for the training data (`TrainEpochs.with_augment`). The train
step is traced for one set of trainable variables and retraced at each stage. The
optimizer is built up front over every variable that any stage may train
(`keras_art.training.optimizers.make_optimizer`), so stage switches keep its state.
Batches are ``(images, targets, weights)`` with dicts keyed by task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_art.atomic_files import to_builtin
from keras_art.data.pipeline.dataset import TrainEpochs
from keras_art.stage_plan import Stage, run_epochs, run_learning_rates
from keras_art.training.callbacks import TrainerAwareCallback
from keras_art.training.epoch_metrics import EpochMetrics, step_statistics
from keras_art.training.loss_scale import DynamicLossScale
from keras_art.training.losses import masked_task_losses, total_loss
from keras_art.training.optimizers import GroupAdamW, make_optimizer
from keras_art.training.schedules import make_schedule
from keras_art.training.stall_watch import DEFAULT_STALL_SECONDS, StallWatch
from keras_art.training.strategies import is_chief

logger = logging.getLogger(__name__)
STALL_HINT = (
    "With input.data_service, a tf.data service worker may be down: restart it on "
    "its host and port (the run goes on). Otherwise check that the images' "
    "filesystem responds."
)

DatasetOrFactory = tf.data.Dataset | Callable[[int], tf.data.Dataset]


class Trainer:
    """Staged fine-tuning of a ``{task: probabilities}`` model under any strategy.

    Args:
        model: functional model ``images -> {task: probs float32}`` with nested
            ``"backbone"`` and ``"head"`` models (``head(features) -> {task: probs}``).
            Build it inside ``strategy.scope()``.
        tasks: task names (the output keys) in order.
        train_cfg: `keras_art.config.TrainConfig`; read here: lr_head/lr_backbone/
            lr_groups, weight_decay, schedule (+ cosine/warmup/eta_min), clipnorm,
            label_smoothing, task_weights, mixed_precision ("float16" -> loss
            scaling), steps_per_epoch (cap), epochs and the stages (`fit`'s
            length; which variables the optimizer covers; each stage's LRs),
            jit_compile (XLA for the train and eval steps; one replica only).
        strategy: a ``tf.distribute.Strategy`` (default: the current one).
        optimizer: a built `GroupAdamW` (e.g. from `make_optimizer`, made in the
            strategy's scope); when None it is made on first `fit`, with the cosine
            schedule sized from ``steps_per_epoch`` (or the training set's
            cardinality).
        steps_per_epoch: optimizer steps per epoch, for the schedule.
        verbose: 1 = a progress bar and log lines per epoch (chief only), 0 = silent.
        backbone_name, head_name: the nested models' names.
        stages: ``keras_art.models.backbones.backbone_stages(backbone, name)``: the
            backbone's stages, for the optimizer's variable groups.
        batch_augment: ``fn(images, targets, weights, seed)`` run on every training
            batch of images inside the step, on each replica (``augment.on_device``:
            `keras_art.data.pipeline.batch_augment.make_batch_augment`); its seed
            is a function of ``train.seed``, the epoch, the step and the replica.
            Not applied to cached features.
    """

    def __init__(
        self,
        model: keras.Model,
        tasks: Iterable[str],
        train_cfg,
        strategy: tf.distribute.Strategy | None = None,
        optimizer: GroupAdamW | None = None,
        *,
        steps_per_epoch: int | None = None,
        verbose: int = 1,
        backbone_name: str = "backbone",
        head_name: str = "head",
        stages: dict | None = None,
        batch_augment: Callable | None = None,
    ):
        if stages is None and optimizer is None:
            raise TypeError(
                "Trainer needs the backbone's stages: pass stages="
                "keras_art.models.backbones.backbone_stages(backbone, name)."
            )
        self.model = model
        if getattr(model, "optimizer", None) is None:
            # Keras callbacks (TensorBoard) read model.optimizer; the group
            # optimizers are not one Keras optimizer, and their LRs are in the logs.
            model.optimizer = None
        self.tasks = tuple(tasks)
        self.cfg = train_cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        self.verbose = verbose if is_chief(self.strategy) else 0
        self.backbone_name = backbone_name
        self.head_name = head_name
        self.stages = stages
        self.batch_augment = batch_augment
        self.steps_per_epoch = steps_per_epoch
        # Seconds without a batch before `StallWatch` warns (the run goes on).
        self.stall_seconds = DEFAULT_STALL_SECONDS
        self.stage = 1
        self.current_stage: Stage | None = None  # set by enter_stage
        self._staged: TrainEpochs | None = None  # the stage's own augmentation
        # Each group's peak LR the optimizer's (cosine) schedules were made for.
        self._peaks = run_learning_rates(train_cfg)
        self.history_records: list[dict[str, Any]] = []
        self.optimizer: GroupAdamW | None = None
        self.loss_scale: DynamicLossScale | None = None
        self._feature_ds = None
        self._train_fn = None
        self._train_key = None
        self._feature_val_ds = None
        self._eval_fns: dict[tuple[bool, bool], Callable] = {}
        self._jit_warned = False
        if optimizer is not None:
            self._adopt_optimizer(optimizer)
        elif steps_per_epoch:
            self.build_optimizer(steps_per_epoch)

    # ----------------------------------------------------------------- setup
    @property
    def backbone(self) -> keras.Model:
        return self.model.get_layer(self.backbone_name)

    @property
    def head(self) -> keras.Model:
        return self.model.get_layer(self.head_name)

    def build_optimizer(self, steps_per_epoch: int) -> GroupAdamW:
        """Make the `GroupAdamW` (+ float16 loss scale) for ``train_cfg`` in scope."""
        self.steps_per_epoch = steps_per_epoch
        with self.strategy.scope():
            optimizer, _ = make_optimizer(
                self.model,
                self.cfg,
                lambda lr: make_schedule(self.cfg, steps_per_epoch, lr),
                stages=self.stages,
                backbone_name=self.backbone_name,
            )
        self._adopt_optimizer(optimizer)
        return optimizer

    def _adopt_optimizer(self, optimizer: GroupAdamW) -> None:
        if not optimizer.built:
            raise ValueError(
                "Pass a built GroupAdamW (over every variable that may train), "
                "e.g. from make_optimizer()."
            )
        self.optimizer = optimizer
        if self.cfg.mixed_precision == "float16" and self.loss_scale is None:
            with self.strategy.scope():
                self.loss_scale = DynamicLossScale()

    @property
    def state_variables(self) -> list:
        """Optimizer (and loss-scale) variables, in a fixed order: what a checkpoint
        must hold besides the model to continue exactly."""
        extra = self.loss_scale.variables if self.loss_scale is not None else []
        return self.optimizer.variables + extra

    @property
    def _jit(self) -> bool:
        """``train.jit_compile``: XLA-compile the train and eval steps, with one
        replica only. Several replicas sum the loss weights and gradients with
        collectives inside the replica computation (and the optimizers call
        merge_call), which neither XLA nor a nested tf.function can hold, so
        their steps run uncompiled (a warning says so)."""
        if not self.cfg.jit_compile:
            return False
        if self.strategy.num_replicas_in_sync > 1:
            if not self._jit_warned:
                logger.warning(
                    "train.jit_compile=true is ignored with %d replicas: the "
                    "cross-replica sums in the step do not compile with XLA.",
                    self.strategy.num_replicas_in_sync,
                )
                self._jit_warned = True
            return False
        return True

    def invalidate_step(self) -> None:
        """Drop the traced train step (the trainable variables changed)."""
        self._train_fn = None
        self._train_key = None

    def group_learning_rates(self) -> dict[str, float]:
        return self.optimizer.learning_rates()

    def enter_stage(self, stage: Stage, *, start: bool = True) -> None:
        """Train as ``stage`` from now on (its number, augmentation and learning
        rates); the step is traced again. Constant (plateau) rates: when the stage
        begins (``start``) it sets the ones it names, and the others go on; a
        resume inside it (``start=False``) keeps the restored ones. Cosine
        schedules follow the stage's peaks either way."""
        self.stage = stage.index
        self.current_stage = stage
        if self.optimizer is not None:
            self.optimizer.set_learning_rates(self._stage_rates(stage, start))
        self.invalidate_step()

    def _stage_rates(self, stage: Stage, start: bool) -> dict[str, Any]:
        """The group learning rates ``stage`` changes (see `enter_stage`)."""
        groups = self.optimizer.optimizers
        peaks = {g: lr for g, lr in stage.learning_rates.items() if g in groups}
        if self.cfg.schedule != "cosine":
            if not start:
                return {}
            return {g: peaks[g] for g in stage.sets_learning_rates if g in peaks}
        changed = {g: lr for g, lr in peaks.items() if self._peaks.get(g) != lr}
        self._peaks.update(changed)
        return {
            g: make_schedule(self.cfg, self.steps_per_epoch, lr)
            for g, lr in changed.items()
        }

    # ----------------------------------------------------------------- steps
    def _trainable(self, head_only: bool) -> list:
        source = self.head if head_only else self.model
        variables = list(source.trainable_variables)
        unknown = [v.path for v in variables if not self.optimizer.covers(v)]
        if unknown:
            raise RuntimeError(
                f"{len(unknown)} trainable variable(s) are unknown to the optimizer "
                f"(e.g. {unknown[:3]}). Build the optimizer over every variable that "
                f"may train: make_optimizer() with the run's stages (train.stages, "
                f"or train.unfreeze_from)."
            )
        return variables

    def _forward(self, images, training: bool, head_only: bool):
        if head_only:
            return self.head(images, training=training)
        return self.model(images, training=training)

    def _replica_gradients(self, variables, used, head_only, images, targets, weights):
        """Loss, statistics and the gradients summed over replicas (loss-scaled).

        Variables without a gradient get no update: ``used`` is filled with the
        variables the returned gradients belong to (known once traced).
        """
        with tf.GradientTape() as tape:
            outputs = self._forward(images, True, head_only)
            source = self.head if head_only else self.model
            loss, parts = total_loss(
                targets,
                outputs,
                weights,
                label_smoothing=self.cfg.label_smoothing,
                task_weights=self.cfg.task_weights,
                regularization_losses=source.losses,
            )
            scaled = loss
            if self.loss_scale is not None:
                scaled = self.loss_scale.scale_loss(loss)
        pairs = [
            (g, v)
            for g, v in zip(tape.gradient(scaled, variables), variables, strict=True)
            if g is not None
        ]
        used[:] = [v for _, v in pairs]
        grads = [g for g, _ in pairs]
        ctx = tf.distribute.get_replica_context()
        if ctx.num_replicas_in_sync > 1:
            # Summed here, once, so clipping and the finite check see the same
            # global gradients on every replica.
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        finite = (
            DynamicLossScale.all_finite(grads)
            if self.loss_scale is not None
            else tf.constant(True)
        )
        return loss, parts, step_statistics(targets, outputs, weights), grads, finite

    def _replica_apply(self, variables, grads) -> None:
        if self.loss_scale is not None:
            grads = self.loss_scale.unscale(grads)
        self.optimizer.apply(grads, variables)

    def _replica_eval_step(self, head_only, images, targets, weights):
        outputs = self._forward(images, False, head_only)
        parts = masked_task_losses(targets, outputs, weights, self.cfg.label_smoothing)
        return parts, step_statistics(targets, outputs, weights)

    def _reduce(self, value):
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    @property
    def _step_augment(self) -> Callable | None:
        """The batch ops of the current stage's augmentation (``batch_augment``
        unless the stage overrides the augmentation)."""
        if self._staged is not None:
            return self._staged.batch_augment
        return self.batch_augment

    def _step_key(self, head_only: bool, variables) -> tuple:
        augment = id(self._step_augment)
        return (head_only, self._jit, augment, tuple(id(v) for v in variables))

    def _get_train_fn(self, head_only: bool):
        variables = self._trainable(head_only)
        key = self._step_key(head_only, variables)
        if self._train_fn is not None and key == self._train_key:
            return self._train_fn
        used: list = []

        augment = None if head_only else self._step_augment

        def forward(images, targets, weights, seed):
            if augment is not None:
                ctx = tf.distribute.get_replica_context()
                replica = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
                images, targets, weights = augment(
                    images,
                    targets,
                    weights,
                    tf.random.experimental.stateless_fold_in(seed, replica),
                )
            return self._replica_gradients(
                variables, used, head_only, images, targets, weights
            )

        def apply(grads):
            self._replica_apply(used, grads)

        @tf.function(jit_compile=self._jit, reduce_retracing=True)
        def train_fn(batch, seed):
            loss, parts, stats, grads, finite = self.strategy.run(
                forward, args=(*batch, seed)
            )
            if self.loss_scale is None:
                self.strategy.run(apply, args=(grads,))
            else:
                # The skip is a cond in cross-replica context: a cond in replica
                # context must not contain the optimizers' merge_call.
                finite = self.strategy.experimental_local_results(finite)[0]
                tf.cond(
                    finite,
                    lambda: self.strategy.run(apply, args=(grads,)),
                    lambda: None,
                )
                self.loss_scale.update(finite)
            return (
                self._reduce(loss),
                tf.nest.map_structure(self._reduce, parts),
                tf.nest.map_structure(self._reduce, stats),
            )

        self._train_fn, self._train_key = train_fn, key
        return train_fn

    def _get_eval_fn(self, head_only: bool = False):
        key = (head_only, self._jit)
        if key not in self._eval_fns:

            @tf.function(jit_compile=self._jit, reduce_retracing=True)
            def eval_fn(batch):
                parts, stats = self.strategy.run(
                    self._replica_eval_step, args=(head_only, *batch)
                )
                return (
                    tf.nest.map_structure(self._reduce, parts),
                    tf.nest.map_structure(self._reduce, stats),
                )

            self._eval_fns[key] = eval_fn
        return self._eval_fns[key]

    # ----------------------------------------------------------------- loops
    def backbone_frozen(self) -> bool:
        """True when no backbone variable is trainable (stage 1)."""
        return not self.backbone.trainable_variables

    def _stage_source(self, ds: DatasetOrFactory) -> DatasetOrFactory:
        """``ds``, or its variant with the current stage's augmentation (and that
        augmentation's batch ops for the step)."""
        stage = self.current_stage
        self._staged = None
        if stage is None or not stage.augment:
            return ds
        if not isinstance(ds, TrainEpochs):
            raise ValueError(
                f"Stage {stage.name!r} overrides augmentation, which a fixed "
                "dataset cannot follow: pass train_ds as a TrainEpochs "
                "(keras_art.data.pipeline.dataset.make_split_datasets)."
            )
        self._staged = ds.with_augment(stage.augment)
        return self._staged

    def _epoch_dataset(self, ds: DatasetOrFactory, epoch: int) -> tf.data.Dataset:
        data = ds(epoch) if callable(ds) and not isinstance(ds, tf.data.Dataset) else ds
        if self.cfg.steps_per_epoch:
            data = data.take(self.cfg.steps_per_epoch)
        return data

    def _step_seed(self, epoch: int, step: int) -> tf.Tensor:
        """The step's seed for ``batch_augment``: (train.seed, epoch, step) only,
        so a resumed run draws what the uninterrupted one drew."""
        seed = int(getattr(self.cfg, "seed", 0) or 0)
        return tf.constant([seed, epoch * 2**32 + step], tf.int64)

    def train_epoch(self, ds, callbacks=None, epoch: int = 0) -> dict[str, float]:
        """One pass over ``ds`` (a dataset, or a factory ``epoch -> dataset``)."""
        head_only = self._use_feature_cache
        data = self._epoch_dataset(ds, epoch)
        train_fn = self._get_train_fn(head_only)
        acc = EpochMetrics(self.tasks)
        # A tf.data service pipeline cannot count its batches: the planned number.
        steps = _cardinality(data) or self.steps_per_epoch
        bar = keras.utils.Progbar(steps, verbose=self.verbose, unit_name="step")
        dist = self.strategy.experimental_distribute_dataset(data)
        with StallWatch(STALL_HINT, self.stall_seconds) as watch:
            for step, batch in enumerate(dist):
                if callbacks is not None:
                    callbacks.on_train_batch_begin(step)
                loss, parts, stats = train_fn(batch, self._step_seed(epoch, step))
                acc.update(_numpy(parts), _numpy(stats))
                loss = float(loss)
                watch.tick()
                if callbacks is not None:
                    callbacks.on_train_batch_end(step, {"loss": loss})
                bar.update(step + 1, [("loss", loss)])
                if getattr(self.model, "stop_training", False):
                    break
        return acc.result("", self.cfg.task_weights)

    def evaluate(
        self, ds: tf.data.Dataset, prefix: str = "val_", *, head_only: bool = False
    ) -> dict[str, float]:
        """Exact loss and metrics over ``ds`` (keeps the last partial batch).

        ``head_only``: ``ds`` holds the frozen backbone's features, not images."""
        eval_fn = self._get_eval_fn(head_only)
        acc = EpochMetrics(self.tasks)
        for batch in self.strategy.experimental_distribute_dataset(ds):
            parts, stats = eval_fn(batch)
            acc.update(_numpy(parts), _numpy(stats))
        return acc.result(prefix, self.cfg.task_weights)

    def fit(
        self,
        train_ds: DatasetOrFactory,
        val_ds: tf.data.Dataset | None = None,
        epochs: int | None = None,
        callbacks: Iterable[keras.callbacks.Callback] = (),
        initial_epoch: int = 0,
        *,
        feature_train_ds: DatasetOrFactory | None = None,
        feature_val_ds: tf.data.Dataset | None = None,
        checkpoints=None,
        resume: bool = False,
    ) -> keras.callbacks.History:
        """Train from ``initial_epoch`` to ``epochs`` (default: the run's length,
        `keras_art.stage_plan.run_epochs`).

        Args:
            train_ds: finite one-epoch dataset of ``(images, targets, weights)``
                (drop_remainder=True), or ``epoch -> dataset`` (for bit-identical
                resume, seed its shuffle with the epoch); a `TrainEpochs` follows
                the stages' augmentation.
            val_ds: evaluation dataset; its metrics are logged with ``val_``.
            callbacks: Keras callbacks; trainer-aware ones
                (`keras_art.training.callbacks.TrainerAwareCallback`) get this
                trainer first.
            feature_train_ds: batches of ``(features, targets, weights)`` from
                `keras_art.training.feature_cache.build_feature_cache`; while the
                backbone is frozen, epochs train the head on them instead.
            feature_val_ds: the validation set's features (same cache, no flips):
                while training on ``feature_train_ds``, validation runs the head
                on them instead of the whole model on ``val_ds``.
            checkpoints: a `keras_art.training.checkpoints.EpochCheckpointer`;
                written after every epoch (chief only).
            resume: restore the latest checkpoint first and continue after it.

        Returns:
            ``keras.callbacks.History`` with every epoch's logs (restored ones too).
        """
        epochs = int(epochs if epochs is not None else run_epochs(self.cfg))
        if self.optimizer is None:
            self.build_optimizer(self._steps_per_epoch_of(train_ds, initial_epoch))
        self._feature_ds = feature_train_ds
        self._feature_val_ds = feature_val_ds
        callbacks = list(callbacks)
        history = keras.callbacks.History()
        cb_list = self._callback_list(callbacks, history, epochs)
        restored_epoch = self._begin_training(
            cb_list, callbacks, history, checkpoints, resume
        )
        if restored_epoch is not None:
            initial_epoch = restored_epoch
        for epoch in range(initial_epoch, epochs):
            if self.model.stop_training:
                break
            logs = self._run_epoch(epoch, epochs, train_ds, val_ds, cb_list)
            self._record_epoch(epoch, logs, checkpoints, callbacks)
        cb_list.on_train_end()
        return history

    def _record_epoch(self, epoch: int, logs, checkpoints, callbacks) -> None:
        """Add ``epoch``'s logs to the history records and checkpoint the epoch."""
        self.history_records.append(
            {"epoch": epoch, **{k: to_builtin(v) for k, v in logs.items()}}
        )
        # A NaN epoch is recorded but never checkpointed: --resume must not
        # continue from NaN weights.
        if checkpoints is not None and np.isfinite(logs.get("loss", 0.0)):
            checkpoints.save(self, epoch + 1, callbacks)

    def _callback_list(
        self,
        callbacks: list[keras.callbacks.Callback],
        history: keras.callbacks.History,
        epochs: int,
    ) -> keras.callbacks.CallbackList:
        """``callbacks`` then ``history`` as one list; trainer-aware callbacks get
        this trainer first."""
        for cb in callbacks:
            if isinstance(cb, TrainerAwareCallback):
                cb.set_trainer(self)
        return keras.callbacks.CallbackList(
            [*callbacks, history],
            add_history=False,
            add_progbar=False,
            model=self.model,
            epochs=epochs,
            verbose=self.verbose,
        )

    def _begin_training(
        self, cb_list, callbacks, history, checkpoints, resume: bool
    ) -> int | None:
        """``on_train_begin``, with the latest checkpoint restored around it when
        ``resume``; the epoch to continue from (None: a fresh start)."""
        restored = None
        if resume and checkpoints is not None:
            # Step 1 of 2: variables, stage, history and trainer-aware callbacks'
            # state, before on_train_begin applies the stage.
            restored = checkpoints.restore(self, callbacks)
        if restored is None:
            self.history_records = []
        self.model.stop_training = False
        cb_list.on_train_begin()
        if restored is None:
            return None
        # Step 2 of 2: plain Keras callbacks reset their counters in
        # on_train_begin, so theirs go back after it.
        checkpoints.restore_callback_attributes(callbacks, restored)
        self._replay_history(history)
        return restored["epoch"]

    def _steps_per_epoch_of(self, train_ds: DatasetOrFactory, epoch: int) -> int:
        first = train_ds(epoch) if callable(train_ds) else train_ds
        steps = _cardinality(self._epoch_dataset(first, epoch))
        # A factory may know what it plans when its datasets cannot say (tf.data
        # service input): `keras_art.data.pipeline.dataset.TrainEpochs`.
        planned = getattr(train_ds, "batches_per_epoch", None)
        if steps is None and planned:
            steps = min(planned, self.cfg.steps_per_epoch or planned)
        if steps is None:
            raise ValueError(
                "Cannot size the schedule from an infinite or unknown-length "
                "dataset: pass steps_per_epoch to Trainer()."
            )
        return steps

    def _replay_history(self, history: keras.callbacks.History) -> None:
        """Put the restored epochs' logs into ``history``."""
        for record in self.history_records:
            history.epoch.append(record["epoch"])
            for k, v in record.items():
                if k != "epoch":
                    history.history.setdefault(k, []).append(v)

    def _run_epoch(self, epoch, epochs, train_ds, val_ds, cb_list) -> dict[str, Any]:
        """Train one epoch (on cached features while the backbone is frozen),
        evaluate, and log learning rates, stage and time."""
        cb_list.on_epoch_begin(epoch)
        train_ds = self._stage_source(train_ds)
        self.invalidate_if_changed()
        if self.verbose:
            name = f" {self.current_stage.name}" if self.current_stage else ""
            logger.info("Epoch %d/%d (stage %d%s)", epoch + 1, epochs, self.stage, name)
        start = time.time()
        source = self._feature_ds if self._use_feature_cache else train_ds
        logs = self.train_epoch(source, cb_list, epoch)
        if self._use_feature_cache and self._feature_val_ds is not None:
            logs.update(self.evaluate(self._feature_val_ds, head_only=True))
        elif val_ds is not None:
            logs.update(self.evaluate(val_ds))
        lrs = self.group_learning_rates()
        logs["learning_rate"] = lrs["head"]
        logs.update({f"lr_{group}": lr for group, lr in lrs.items()})
        logs["stage"] = self.stage
        logs["epoch_time_s"] = time.time() - start
        if self.verbose:
            logger.info("%s", _format_logs(logs))
        cb_list.on_epoch_end(epoch, logs)
        return logs

    @property
    def _use_feature_cache(self) -> bool:
        return self._feature_ds is not None and self.backbone_frozen()

    def invalidate_if_changed(self) -> None:
        """Retrace the step if the trainable variable set changed since tracing."""
        if self._train_key is None:
            return
        head_only = self._use_feature_cache
        if self._step_key(head_only, self._trainable(head_only)) != self._train_key:
            self.invalidate_step()


def _cardinality(ds: tf.data.Dataset) -> int | None:
    n = int(ds.cardinality())
    return n if n >= 0 else None


def _numpy(structure):
    return tf.nest.map_structure(lambda t: np.asarray(t), structure)


def _format_logs(logs: dict) -> str:
    keys = [k for k in logs if not k.startswith("lr_")]
    return " - ".join(
        f"{k}: {logs[k]:.4g}" if isinstance(logs[k], float) else f"{k}: {logs[k]}"
        for k in keys
    )
