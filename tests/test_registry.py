"""Every list of allowed values in the package agrees with `keras_art.registry`."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import keras_art
from keras_art import registry
from keras_art.config import Config
from keras_art.errors import UserError


def _choices(parser, flag):
    action = next(a for a in parser._actions if flag in a.option_strings)
    return tuple(action.choices)


def test_cli_choices_are_the_registry():
    from keras_art.cli import ArgumentParser, add_config_flags
    from keras_art.train import build_parser

    parser = build_parser()
    assert _choices(parser, "--task") == registry.TASK_CHOICES
    assert _choices(parser, "--head") == registry.HEADS
    assert _choices(parser, "--backbone") == tuple(registry.BACKBONES)
    assert _choices(parser, "--strategy") == registry.STRATEGIES
    assert _choices(parser, "--mixed-precision") == registry.MIXED_PRECISION
    from keras_art.export.__main__ import build_parser as export_parser
    from tuning.search import build_parser as search_parser

    search = search_parser()
    assert _choices(search, "--tuner") == registry.TUNERS
    assert _choices(search, "--stage") == registry.TUNE_STAGES
    assert _choices(search, "--head") == registry.HEADS
    assert _choices(export_parser(), "--quantize") == registry.QUANTIZE_MODES
    shared = ArgumentParser()
    add_config_flags(shared, default_preset=None)
    # "sample" is chosen by leaving out --data, not by --format.
    assert _choices(shared, "--format") == tuple(
        f for f in registry.DATASET_FORMATS if f != "sample"
    )


def test_builders_cover_exactly_the_registry():
    from keras_art.data.sources import DATASET_READERS
    from keras_art.models.heads import HEAD_BUILDERS

    assert tuple(HEAD_BUILDERS) == registry.HEADS
    assert tuple(DATASET_READERS) == registry.DATASET_FORMATS


@pytest.mark.parametrize(
    "key, values",
    [
        ("task", registry.TASK_CHOICES),
        ("data.format", registry.DATASET_FORMATS),
        ("model.head", registry.HEADS),
        ("model.backbone", tuple(registry.BACKBONES)),
        ("augment.eval_resize", registry.EVAL_RESIZE_MODES),
        ("train.mixed_precision", registry.MIXED_PRECISION),
        ("train.strategy", registry.STRATEGIES),
        ("train.schedule", registry.SCHEDULES),
        ("train.unfreeze_from", registry.STAGES),
        ("tune.tuner", registry.TUNERS),
        ("tune.stage", registry.TUNE_STAGES),
    ],
)
def test_config_accepts_exactly_the_registry(key, values):
    section, _, leaf = key.rpartition(".")
    for value in values:
        cfg = Config()
        setattr(getattr(cfg, section) if section else cfg, leaf, value)
        cfg.validate()
    cfg = Config()
    setattr(getattr(cfg, section) if section else cfg, leaf, "nonsense")
    with pytest.raises(UserError, match=", ".join(values)):
        cfg.validate()


def test_strategy_factory_knows_every_registry_name():
    from keras_art.training.strategies import make_strategy

    with pytest.raises(UserError, match=", ".join(registry.STRATEGIES)):
        make_strategy("nonsense")


@pytest.mark.parametrize("name", list(registry.BACKBONES))
def test_backbone_entries_are_complete(name):
    info = registry.BACKBONES[name]
    assert info.name == name
    assert callable(getattr(keras.applications, info.application))
    assert tuple(info.stage_prefixes) == registry.STAGES
    assert len(info.normalization.mean) == len(info.normalization.std) == 3


def test_registry_imports_without_tensorflow_or_keras(tmp_path):
    # Loaded by file path (not through the package, which registers Keras layers)
    # with TensorFlow and Keras made unimportable: config validation stays cheap.
    path = Path(registry.__file__)
    code = (
        "import importlib.util, sys\n"
        "sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        f"spec = importlib.util.spec_from_file_location('r', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['r'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "print(sorted(mod.BACKBONES))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "resnet50" in out.stdout
    assert importlib.util.find_spec("keras_art.registry") is not None


def test_import_keras_art_then_load_model_in_a_fresh_process(tmp_path):
    # The keras-hub contract: importing the package registers its layers.
    from keras_art.config import ModelConfig
    from keras_art.models.classifier import build_classifier

    cfg = ModelConfig(weights="none", proj_dim=8, gru_units=4, gru_layers=1)
    model, _ = build_classifier(cfg, {"style": 3}, image_size=32)
    path = tmp_path / "m.keras"
    model.save(path)
    code = (
        "import numpy as np, keras, keras_art\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        "x = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), 'uint8')\n"
        "print(m(x)['style'].shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "(1, 3)" in out.stdout
    assert keras_art.__version__
