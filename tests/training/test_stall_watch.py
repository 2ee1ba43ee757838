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


def test_the_trainer_warns_while_its_input_stalls_and_finishes_the_epoch(caplog):
    def slow(x):
        time.sleep(0.6)  # the third batch takes long to come
        return x

    images = np.zeros((12, tiny.SIZE, tiny.SIZE, 3), "float32")
    batches = tf.data.Dataset.from_tensor_slices(
        (images, {"artist": np.eye(3, dtype="float32")[np.arange(12) % 3]},
         {"artist": np.ones(12, "float32")})
    ).batch(4)  # fmt: skip

    def third_batch_slow(i, batch):
        x, y, w = batch
        x = tf.cond(
            tf.equal(i, 2),
            lambda: tf.numpy_function(slow, [x], tf.float32, stateful=True),
            lambda: x,
        )
        return tf.ensure_shape(x, [None, tiny.SIZE, tiny.SIZE, 3]), y, w

    ds = batches.enumerate().map(third_batch_slow)
    model = tiny.tiny_model()
    tiny.set_trainable(model.get_layer("backbone"), None)  # the frozen stage
    trainer = tiny.trainer(model, tiny.train_cfg(), steps_per_epoch=3)
    trainer.stall_seconds = 0.2
    with caplog.at_level(logging.WARNING, logger="keras_art"):
        logs = trainer.train_epoch(ds)
    assert np.isfinite(logs["loss"])
    assert "No training batch for" in caplog.text
    assert "input.data_service" in caplog.text
