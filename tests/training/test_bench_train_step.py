import argparse

import pytest

from keras_art.benchmarks import train_step
from tests.training import tiny


def _build(head, num_classes, image_size):
    model = tiny.tiny_model()
    return model, tiny.set_trainable, tiny.stages(model.get_layer("backbone"))


def test_bench_train_step_reports_every_head_and_mode():
    config = train_step.TrainStepBenchConfig(
        heads=("cnn_rnn", "gap"),
        image_size=tiny.SIZE,
        batch_size=2,
        steps=2,
        num_classes=3,
    )
    result = train_step.bench_train_step(
        config,
        build_fn=_build,
        train_cfg=tiny.train_cfg(),
    )
    for head in ("cnn_rnn", "gap"):
        for mode in train_step.MODES:
            assert result["images_per_s"][f"{head}/{mode}"] > 0
    assert result["cnn_rnn_over_gap_step_time"] > 0
    assert result["frozen_cache_speedup"] > 0
    assert result["peak_rss_mb"] > 0
    assert (result["image_size"], result["batch_size"]) == (tiny.SIZE, 2)


def test_registered_with_bench_cli():
    registry = getattr(pytest.importorskip("keras_art.benchmarks"), "registry", None)
    if registry is None:
        pytest.skip("the bench registry is not there yet")
    add_arguments, run, _ = registry()["train-step"]
    assert run is train_step.run and add_arguments is train_step.add_arguments


def test_cli_arguments_and_bad_input():
    parser = argparse.ArgumentParser()
    train_step.add_arguments(parser)
    args = parser.parse_args(["--heads", "gap", "--image-size", "8"])
    assert args.heads == ["gap"] and args.batch_size == 16
    from keras_art.errors import UserError

    with pytest.raises(UserError, match="image-size"):
        train_step.run(args)


def test_bench_times_jit_off_and_on_in_one_run():
    config = train_step.TrainStepBenchConfig(
        heads=("gap",),
        modes=("frozen",),
        image_size=tiny.SIZE,
        batch_size=2,
        steps=1,
        num_classes=3,
        jit=(False, True),
        rounds=2,
    )
    result = train_step.bench_train_step(
        config, build_fn=_build, train_cfg=tiny.train_cfg()
    )
    assert set(result["images_per_s"]) == {"gap/frozen", "gap/frozen/jit"}
    assert set(result["eval_step_time_s"]) == {"gap/frozen", "gap/frozen/jit"}
    assert set(result["jit_speedup"]) == {"gap/frozen", "eval:gap/frozen"}
    assert all(len(v) == 2 for v in result["per_round"].values())
    assert result["jit_compile"] == ["off", "on"]


def test_cli_jit_flag_defaults_to_the_config():
    from keras_art.config import TrainConfig

    parser = argparse.ArgumentParser()
    train_step.add_arguments(parser)
    assert parser.parse_args(["--jit", "off", "on"]).jit == ["off", "on"]
    assert parser.parse_args([]).jit is None  # run() then times TrainConfig's
    assert isinstance(TrainConfig().jit_compile, bool)
    with pytest.raises(SystemExit):
        parser.parse_args(["--jit", "maybe"])


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
logging.basicConfig(level=logging.WARNING)
strategy = make_strategy("mirrored")
losses = {}
for jit in (tiny.train_cfg().jit_compile, True):
    with strategy.scope():
        model = tiny.tiny_model()
        tiny.set_trainable(model.get_layer("backbone"), None)
        trainer = Trainer(model, ("artist",), tiny.train_cfg(jit_compile=jit),
                          strategy, steps_per_epoch=2, verbose=0,
                          stages=tiny.stages(model.get_layer("backbone")))
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
