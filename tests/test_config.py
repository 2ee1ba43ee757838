import json

import pytest

from keras_art.config import (
    PRESETS,
    Config,
    apply_overrides,
    build_config,
    config_from_dict,
    get_preset,
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
    assert loaded.augment.vflip and loaded.train.stages == cfg.train.stages  # kept


def test_config_file_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_config_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot parse"):
        load_config_file(tmp_path / "bad.json")


def test_style_unfreezes_every_layer_unless_set():
    # Seed 000: "style: all layers learn after a certain epoch".
    cfg, explicit = build_config("seed000", overrides=["task=style"])
    assert resolve_task_defaults(cfg, explicit).train.unfreeze_from == "conv1"
    cfg, explicit = build_config(
        "seed000", overrides=["task=style", "train.unfreeze_from=conv4"]
    )
    assert resolve_task_defaults(cfg, explicit).train.unfreeze_from == "conv4"
    cfg, explicit = build_config("seed000", overrides=["task=artist"])
    assert resolve_task_defaults(cfg, explicit).train.unfreeze_from == "conv3"


@pytest.mark.parametrize(
    "preset", ["seed000", "seed001", "seed002", "seed003", "seed004"]
)
def test_every_seed_has_a_valid_preset_with_its_command(preset):
    cfg = get_preset(preset).validate()
    assert cfg.preset == preset
    doc = PRESETS[preset].__doc__
    assert "python -m keras_art.train --task" in doc and f"--preset {preset}" in doc


def test_seed_presets_hold_their_recipes():
    s0 = get_preset("seed000")
    assert s0.augment.scale_jitter[0] < 1.0 < s0.augment.scale_jitter[1]
    s1 = get_preset("seed001")
    assert (len(s1.data.classes), s1.data.split, s1.train.epochs) == (
        10,
        [0.85, 0.15],
        50,
    )
    assert (s1.train.lr_head, s1.train.weight_decay, s1.input.batch_size) == (
        8e-4,
        0.01,
        32,
    )
    s2 = get_preset("seed002")
    assert (s2.train.plateau_patience, s2.train.early_stopping_patience) == (4, 10)
    assert s2.augment.hflip and s2.augment.vflip
    s3 = get_preset("seed003")
    assert len(s3.data.classes) == 4 and s3.data.split == [0.6, 0.2, 0.2]
    assert (s3.model.dense_units, s3.model.dense_dropout) == ([256], 0.3)
    assert s3.train.unfreeze_epoch == -1 and s3.train.lr_head == 1e-5
    s4 = get_preset("seed004")
    assert s4.augment.eval_resize == "letterbox" and s4.augment.rotation == 10.0
    lrs = {s4.train.lr_groups["conv1"], s4.train.lr_backbone, s4.train.lr_head}
    assert lrs == {1e-6, 1e-5, 1e-3}
    for backbone in ("resnet50", "efficientnetb0", "convnext_tiny"):
        cfg, _ = build_config("seed004", overrides=[f"model.backbone={backbone}"])
        cfg.validate()


def test_an_lr_group_that_can_never_train_names_the_fix():
    cfg, _ = build_config("seed000", overrides=["train.lr_groups={conv2: 1e-6}"])
    with pytest.raises(UserError, match="train.unfreeze_from=conv2"):
        cfg.validate()
    cfg, _ = build_config(
        "seed000",
        overrides=["train.lr_groups={conv2: 1e-6}", "train.unfreeze_from=conv2"],
    )
    cfg.validate()


@pytest.mark.parametrize(
    "item,match",
    [
        ("data.split_sizes=[10]", r"data\.split_sizes must be \[\] or 2 or 3 image"),
        ("data.split_sizes=[0,5]", "with train at least 1"),
        ("data.split_sizes=[10,-1,2]", r"Received: \[10, -1, 2\]"),
        ("augment.center_crop_from=200", "at least the training image side 384"),
        ("train.clipnorm=-1", r"train\.clipnorm must be >= 0"),
    ],
)
def test_new_keys_are_validated(item, match):
    cfg, _ = build_config("default", overrides=[item])
    with pytest.raises(UserError, match=match):
        cfg.validate()


def test_no_clipping_spellings_and_hyphenated_presets():
    for item in ("train.clipnorm=0", "train.clipnorm=null"):
        build_config("default", overrides=[item])[0].validate()
    cfg, _ = build_config("seed004-baseline", overrides=["data.split_sizes=[40,10]"])
    assert cfg.validate().preset == "seed004-baseline"
    assert "seed004_baseline" not in PRESETS
