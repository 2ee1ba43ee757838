import json

import pytest

from keras_art.config import (
    PRESETS,
    Config,
    apply_overrides,
    build_config,
    config_from_dict,
    load_config_file,
    resolve_task_defaults,
)
from keras_art.errors import UserError


def test_every_preset_validates():
    for name, fn in PRESETS.items():
        cfg = fn().validate()
        assert cfg.preset == name


def test_overrides_are_typed():
    cfg = Config()
    keys = apply_overrides(
        cfg,
        [
            "train.epochs=3",
            "data.split=[0.6,0.2,0.2]",
            "model.weights=none",
            "train.lr_groups={conv2: 1e-6}",
        ],
    )
    assert cfg.train.epochs == 3
    assert cfg.data.split == [0.6, 0.2, 0.2]
    assert cfg.model.weights == "none"
    assert cfg.train.lr_groups == {"conv2": 1e-6}
    assert keys == {"train.epochs", "data.split", "model.weights", "train.lr_groups"}


@pytest.mark.parametrize(
    "item,match",
    [
        ("train.epochz=3", "unknown config key 'train.epochz'"),
        ("train.epochs=three", "train.epochs expects int"),
        ("epochs", "expected section.key=value"),
        ("train=3", "train must be a mapping"),
    ],
)
def test_bad_overrides_name_the_key(item, match):
    with pytest.raises(UserError, match=match):
        apply_overrides(Config(), [item])


def test_validate_rejects_unknown_choices():
    cfg = Config()
    cfg.model.head = "transformer"
    with pytest.raises(UserError, match="Unknown model.head 'transformer'"):
        cfg.validate()
    cfg = Config()
    cfg.data.split = [0.5, 0.2]
    with pytest.raises(UserError, match="summing to 1"):
        cfg.validate()


def test_json_round_trip_and_yaml_file(tmp_path):
    cfg, _ = build_config("seed002", overrides=["train.epochs=5"])
    again = config_from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    (tmp_path / "c.yaml").write_text("model:\n  head: spp\ntrain:\n  epochs: 2\n")
    loaded = load_config_file(tmp_path / "c.yaml", cfg)
    assert loaded.model.head == "spp" and loaded.train.epochs == 2
    assert loaded.augment.rotation == 30.0  # preset value kept


def test_config_file_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_config_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot parse"):
        load_config_file(tmp_path / "bad.json")


def test_style_unfreezes_all_non_stem_unless_set():
    cfg, explicit = build_config("seed000", overrides=["task=style"])
    assert resolve_task_defaults(cfg, explicit).train.unfreeze_from == "conv2"
    cfg, explicit = build_config(
        "seed000", overrides=["task=style", "train.unfreeze_from=conv4"]
    )
    assert resolve_task_defaults(cfg, explicit).train.unfreeze_from == "conv4"
    cfg, explicit = build_config("seed000", overrides=["task=artist"])
    assert resolve_task_defaults(cfg, explicit).train.unfreeze_from == "conv3"
