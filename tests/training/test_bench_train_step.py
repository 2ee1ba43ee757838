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
    # Imported here, not skipped when missing: a renamed registry fails this test.
    from keras_art.benchmarks import registry

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
