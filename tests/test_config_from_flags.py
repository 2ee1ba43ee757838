"""One flags -> config function for every command (`keras_art.cli.config_from_flags`):
the same flags give the same config in train, the search, the data scripts and the
tune bench."""

import pytest

from data_scripts import dataset_stats, make_tfrecords
from data_scripts._common import config_from_args as data_script_config
from keras_art import bench, train
from keras_art.errors import UserError
from tuning import search


def _train(*argv):
    return train.config_from_args(train.build_parser().parse_args(list(argv)))[0]


def _search(*argv):
    from keras_art.cli import TUNE_FLAG_KEYS, config_from_flags

    args = search.build_parser().parse_args(list(argv))
    return config_from_flags(args, TUNE_FLAG_KEYS)[0]


def _data_script(module, *argv):
    args = module.build_parser().parse_args(["--out", "x", *argv])
    return data_script_config(args)


def _every_command(*argv):
    return {
        "train": _train(*argv),
        "search": _search(*argv),
        "make_tfrecords": _data_script(make_tfrecords, *argv),
        "dataset_stats": _data_script(dataset_stats, *argv),
    }


@pytest.fixture
def class_folders(tmp_path):
    (tmp_path / "Baroque").mkdir()
    return str(tmp_path)


def test_without_data_every_command_uses_the_demo_preset():
    for name, cfg in _every_command("--task", "style").items():
        assert (cfg.preset, cfg.data.format, cfg.task) == ("demo", "sample", "style"), (
            name
        )


def test_with_data_every_command_infers_the_format_and_applies_task_defaults(
    class_folders,
):
    configs = _every_command("--task", "style", "--data", class_folders)
    for name, cfg in configs.items():
        assert cfg.preset == "default" and cfg.data.format == "folder", name
        # seed 000's style recipe: every layer learns after the unfreeze
        assert cfg.train.unfreeze_from == "conv1", name
    assert len({c.to_json() for n, c in configs.items() if n != "search"}) == 1


def test_format_with_a_data_path_from_set_is_accepted(class_folders):
    argv = ["--format", "folder", "--set", f"data.path={class_folders}"]
    for name, cfg in _every_command(*argv).items():
        assert (cfg.data.format, cfg.data.path) == ("folder", class_folders), name


def test_format_without_any_data_path_is_one_error():
    with pytest.raises(UserError, match="--format needs --data"):
        _data_script(dataset_stats, "--format", "folder")


def test_epochs_is_the_trial_length_in_the_search():
    cfg = _search("--epochs", "3")
    assert cfg.tune.epochs == 3 and cfg.train.epochs == _train().train.epochs


def test_bench_tune_builds_its_trial_config_with_the_same_function():
    from tuning.bench import _base_config, benchmarks

    args = bench.build_parser(benchmarks()).parse_args(
        ["tune", "--image-size", "32", "--batch-size", "4", "--set", "tune.stage=full"]
    )
    cfg = _base_config(args)
    assert (cfg.preset, cfg.task, cfg.augment.image_size) == ("demo", "style", 32)
    assert cfg.input.batch_size == 4 and cfg.tune.epochs == 2
    assert cfg.tune.stage == "head"  # what the bench times, whatever --set says
