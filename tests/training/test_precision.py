"""train.mixed_precision "auto": float16 with a GPU, off on CPU, resolved once."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from keras_art.config import Config
from keras_art.training.precision import resolve_mixed_precision
from keras_art.training.train import set_global_policies


def test_auto_follows_the_gpus_and_other_values_pass_through():
    assert resolve_mixed_precision("auto", gpus=0) == "off"
    assert resolve_mixed_precision("auto", gpus=2) == "float16"
    for value in ("off", "float16", "bfloat16"):
        assert resolve_mixed_precision(value, gpus=0) == value
        assert resolve_mixed_precision(value, gpus=1) == value


@pytest.mark.parametrize("gpus,expected", [([], "off"), (["GPU:0"], "float16")])
def test_set_global_policies_resolves_auto_in_the_config(monkeypatch, gpus, expected):
    listed = []

    def fake_list(kind=None):
        listed.append(kind)
        return list(gpus) if kind == "GPU" else []

    monkeypatch.setattr(tf.config, "list_physical_devices", fake_list)
    cfg = Config()
    assert cfg.train.mixed_precision == "auto"  # seed 000's AMP is the default
    previous = keras.config.dtype_policy()
    try:
        set_global_policies(cfg)
        policy = keras.config.dtype_policy().name
    finally:
        keras.config.set_dtype_policy(previous)
    assert listed == ["GPU"]
    # config.json and the trainer (its float16 loss scale) see the resolved value.
    assert cfg.train.mixed_precision == expected
    assert policy == {"off": "float32", "float16": "mixed_float16"}[expected]
