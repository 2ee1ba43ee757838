"""Subprocess driver for the resume / distribution tests (fresh TF per process).

python -m tests.training.run_tiny --dir D --epochs 4 [--resume] [--strategy S]
    [--logical-cpus 2] [--slow-epoch 2] [--optimizer sgd] --out result.npz

``--optimizer sgd`` swaps every group's AdamW for plain SGD (and turns clipping off):
SGD's step is proportional to the gradient while Adam's is not, so a loss averaged
over the per-replica batch instead of the global one shows in the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--strategy", default="default")
    p.add_argument("--logical-cpus", type=int, default=0)
    p.add_argument("--slow-epoch", type=int, default=-1)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from keras_art.training.strategies import make_strategy, setup_logical_cpus

    if args.logical_cpus:
        setup_logical_cpus(args.logical_cpus)
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(42)
    tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(args.strategy)

    from keras_art.training.callbacks import HistoryLogger, StageSchedule
    from keras_art.training.checkpoints import EpochCheckpointer
    from keras_art.training.trainer import Trainer
    from tests.training import tiny

    cfg = tiny.train_cfg(epochs=args.epochs, unfreeze_epoch=1, cosine_t_max_epochs=4)
    if args.optimizer == "sgd":
        cfg.clipnorm = 0.0  # a clip to a fixed norm would hide the gradient's scale
    with strategy.scope():
        model = tiny.tiny_model(dropout=args.dropout)
        tiny.set_trainable(model.get_layer("backbone"), None)
        stages = tiny.stages(model.get_layer("backbone"))
        optimizer = None
        if args.optimizer == "sgd":
            optimizer = _group_sgd(model, cfg, stages)
        trainer = Trainer(
            model,
            ("artist",),
            cfg,
            strategy,
            optimizer,
            steps_per_epoch=4,
            verbose=0,
            stages=stages,
        )

    def train_ds(epoch):
        return (
            tiny.dataset(n=16, batch=4, seed=0)
            .unbatch()
            .shuffle(16, seed=epoch)
            .batch(4, drop_remainder=True)
        )

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == args.slow_epoch:
                print(f"slow step {batch}", flush=True)
                time.sleep(1.0)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    callbacks = [
        StageSchedule.from_train_config(cfg, set_trainable=tiny.set_trainable),
        HistoryLogger(os.path.join(args.dir, "history.csv")),
        Slow(),
    ]
    history = trainer.fit(
        train_ds,
        tiny.dataset(n=10, seed=1, drop_remainder=False),
        epochs=args.epochs,
        callbacks=callbacks,
        checkpoints=EpochCheckpointer(os.path.join(args.dir, "checkpoints")),
        resume=args.resume,
    )
    np.savez(
        args.out,
        *[np.asarray(v.numpy()) for v in model.weights],
        history=json.dumps(trainer.history_records),
        epochs=json.dumps(history.epoch),
        replicas=strategy.num_replicas_in_sync,
    )
    return 0


def _group_sgd(model, cfg, stages):
    """`make_optimizer`'s groups, each stepped by SGD at the group's constant LR."""
    import keras

    from keras_art.training.optimizers import group_learning_rates, make_optimizer

    optimizer, candidates = make_optimizer(model, cfg, lambda lr: lr, stages=stages)
    for group, lr in group_learning_rates(cfg).items():
        sgd = keras.optimizers.SGD(learning_rate=lr, name=f"sgd_{group}")
        sgd.build([v for v in candidates if optimizer.group_of(v) == group])
        optimizer.optimizers[group] = sgd
    return optimizer


if __name__ == "__main__":
    sys.exit(main())
