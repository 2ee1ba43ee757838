"""train.jit_compile: the Trainer compiles its steps as configured, and falls back
(with a warning) where XLA cannot compile them (several replicas)."""

import pytest

from tests.training import tiny


@pytest.mark.parametrize("jit", [False, True])
def test_trainer_compiles_its_steps_as_configured(monkeypatch, jit):
    """Both tf.functions (train and eval step) get train.jit_compile, and the
    compiled steps train."""
    import sys

    import tensorflow as tf

    seen = []
    real = tf.function

    def spy(*args, **kwargs):
        if sys._getframe(1).f_globals["__name__"] == "keras_art.training.trainer":
            seen.append(kwargs.get("jit_compile"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tf, "function", spy)
    model = tiny.tiny_model()
    tiny.set_trainable(model.get_layer("backbone"), None)
    trainer = tiny.trainer(model, tiny.train_cfg(jit_compile=jit), steps_per_epoch=2)
    logs = trainer.train_epoch(tiny.dataset(n=8, batch=4))
    val = trainer.evaluate(tiny.dataset(n=8, batch=4))
    assert seen == [jit, jit]
    assert logs["loss"] > 0 and val["val_loss"] > 0


MIRRORED_JIT = """
import json, logging, sys
from keras_art.training.strategies import make_strategy, setup_logical_cpus
setup_logical_cpus(2)
from tests.training import tiny
from keras_art.training.trainer import Trainer
from keras_art.config import AugmentConfig, InputConfig
from keras_art.data.pipeline.batch_augment import make_batch_augment
logging.basicConfig(level=logging.WARNING)
# augment.on_device's batch ops run inside the step on each replica too.
batch_augment = make_batch_augment(AugmentConfig(on_device=True), InputConfig())
strategy = make_strategy("mirrored")
losses = {}
for jit in (tiny.train_cfg().jit_compile, True):
    with strategy.scope():
        model = tiny.tiny_model()
        tiny.set_trainable(model.get_layer("backbone"), None)
        trainer = Trainer(model, ("artist",), tiny.train_cfg(jit_compile=jit),
                          strategy, steps_per_epoch=2, verbose=0,
                          stages=tiny.stages(model.get_layer("backbone")),
                          batch_augment=batch_augment)
    logs = trainer.train_epoch(tiny.dataset(n=8, batch=4))
    logs.update(trainer.evaluate(tiny.dataset(n=8, batch=4)))
    losses[str(jit)] = [logs["loss"], logs["val_loss"]]
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "losses": losses}))
"""


def test_mirrored_on_two_logical_cpus_trains_with_and_without_jit():
    """XLA cannot compile the cross-replica step: with jit_compile=true the
    Trainer warns and runs it uncompiled instead of failing."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_JIT],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert all(v > 0 for pair in result["losses"].values() for v in pair)
    assert "jit_compile=true is ignored with 2 replicas" in proc.stderr
