"""`StallWatch`: a warning while training waits too long for a batch, never a stop."""

import logging
import time

import numpy as np
import tensorflow as tf

from keras_art.training.stall_watch import StallWatch
from tests.training import tiny


def test_a_stall_is_warned_about_once_per_period_and_a_steady_loop_never():
    with StallWatch("check the workers", seconds=0.2) as watch:
        time.sleep(0.75)  # no tick: a stall of 0.75 s, periods of 0.2 s
    assert 2 <= watch.warnings <= 4
    with StallWatch(seconds=0.3) as steady:
        for _ in range(10):
            time.sleep(0.05)
            steady.tick()
    assert steady.warnings == 0


def _delayed_batches(delays):
    """Batches of 2 that each come ``delays[i]`` seconds late."""

    def late(i, x):
        time.sleep(delays[i])
        return x

    n = 2 * len(delays)
    batches = tf.data.Dataset.from_tensor_slices(
        (np.zeros((n, tiny.SIZE, tiny.SIZE, 3), "float32"),
         {"artist": np.eye(3, dtype="float32")[np.arange(n) % 3]},
         {"artist": np.ones(n, "float32")})
    ).batch(2)  # fmt: skip

    def delayed(i, batch):
        x, y, w = batch
        x = tf.numpy_function(late, [i, x], tf.float32, stateful=True)
        return tf.ensure_shape(x, [None, tiny.SIZE, tiny.SIZE, 3]), y, w

    return batches.enumerate().map(delayed)


def test_the_trainer_warns_while_its_input_stalls_and_finishes_the_epoch(caplog):
    model = tiny.tiny_model()
    tiny.set_trainable(model.get_layer("backbone"), None)  # the frozen stage
    trainer = tiny.trainer(model, tiny.train_cfg(), steps_per_epoch=3)
    trainer.stall_seconds = 0.6
    trainer.train_epoch(_delayed_batches([0.0] * 3))  # traced: steps take ms now
    caplog.clear()  # (tracing the first step may take longer than 0.6 s)
    with caplog.at_level(logging.WARNING, logger="keras_art"):
        # Batches every 0.1 s for over 0.6 s: the trainer ticks, no warning.
        trainer.train_epoch(_delayed_batches([0.1] * 9))
        assert "No training batch" not in caplog.text
        # One batch 1.5 s late: a warning, and the epoch still ends.
        logs = trainer.train_epoch(_delayed_batches([0.0, 1.5, 0.0]))
    assert np.isfinite(logs["loss"])
    assert "No training batch for" in caplog.text
    assert "input.data_service" in caplog.text
