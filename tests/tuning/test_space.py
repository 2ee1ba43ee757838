"""The search space: defaults, pins, named spaces and errors (no training)."""

import json
import math
import re

import keras_tuner
import pytest

from keras_art.config import Config, get_preset
from keras_art.errors import UserError
from keras_art.registry import HEADS, STAGES
from tuning.space import (
    NAMED_SPACES,
    PARAMS,
    active_values,
    apply_values,
    declare,
    default_of,
    resolve_space,
    tidy,
)


def _space(**tune):
    cfg = Config()
    for key, value in tune.items():
        setattr(cfg.tune, key, value)
    return resolve_space(cfg.tune, cfg)


def _grid_size(space):
    sizes = []
    for spec in space.values():
        if "values" in spec:
            sizes.append(len(spec["values"]))
    return math.prod(sizes)


def test_every_default_lies_in_its_range_and_matches_the_default_config():
    cfg = Config()
    for name, param in PARAMS.items():
        spec = param.spec
        value = param.default
        if "values" in spec:
            assert value in spec["values"], name
        else:
            assert spec["min"] <= value <= spec["max"], name
    # The defaults are seed 000's recipe (the default config), so a trial at its
    # defaults trains what `keras_art.train` trains.
    assert default_of("head") == cfg.model.head
    assert [default_of("dense1"), default_of("dense2")] == cfg.model.dense_units
    assert default_of("dense_dropout") == cfg.model.dense_dropout
    assert default_of("lr_head") == cfg.train.lr_head
    assert default_of("lr_backbone") == cfg.train.lr_backbone
    assert default_of("unfreeze_from") == cfg.train.unfreeze_from
    assert set(PARAMS["head"].spec["values"]) == set(HEADS)
    assert PARAMS["unfreeze_from"].spec["values"] == list(STAGES)


def test_declared_defaults_and_fixed_pins():
    space = _space()
    hp = keras_tuner.HyperParameters()
    values = declare(hp, space)
    # Default head cnn_rnn: its own names are active, the dense block's are not.
    assert values["head"] == "cnn_rnn"
    assert values["gru_units"] == 256 and values["proj_dim"] == 320
    assert "dense1" not in values
    assert "dense1" in [p.name for p in hp.space]  # declared, inactive
    assert active_values(hp, space) == values

    pinned = keras_tuner.HyperParameters()
    pinned.Fixed("head", "gap")
    pinned.Fixed("dense1", 448)
    values = declare(pinned, space)
    assert values["head"] == "gap" and values["dense1"] == 448
    assert values["dense2"] == 128 and values["dense_batchnorm"] is True
    assert "gru_units" not in values


def test_head_stage_leaves_the_schedule_out_and_full_stage_the_heads():
    head = _space(stage="head")
    full = _space(stage="full")
    assert {"lr_backbone", "unfreeze_epoch", "unfreeze_from"}.isdisjoint(head)
    assert {"head", "dense1", "gru_units"}.isdisjoint(full)
    assert {"lr_backbone", "unfreeze_epoch", "unfreeze_from", "lr_head"} <= set(full)


def test_full_stage_unfreezes_within_the_trial():
    assert _space(stage="full", epochs=3)["unfreeze_epoch"] == {
        "min": 1,
        "max": 2,
        "step": 1,
    }
    with pytest.raises(UserError, match="at least 2 epochs"):
        _space(stage="full", epochs=1)


def test_seed002_grid_is_42_combinations_per_head():
    space = _space(space="seed002")
    assert space["head"]["values"] == ["gap", "spp"]
    assert space["dense1"]["values"] == [128, 192, 256, 320, 384, 448]
    assert space["dense2"]["values"] == [32, 64, 96, 128, 160, 192, 224]
    assert _grid_size(space) == 2 * 42
    assert space["dense_dropout"] == {"fixed": 0.5}
    # The seed's three best GAP and SPP models are inside the grid.
    for d1, d2 in [
        (384, 128),
        (448, 192),
        (448, 160),
        (320, 64),
        (192, 224),
        (128, 160),
    ]:
        assert d1 in space["dense1"]["values"] and d2 in space["dense2"]["values"]


def test_seed003_sweep_is_dropout_times_learning_rate():
    cfg = get_preset("seed003")
    cfg.tune.space = "seed003"
    space = resolve_space(cfg.tune, cfg)
    assert set(space) == {"dense_dropout", "lr_head"}
    assert _grid_size(space) == 9
    values = declare(keras_tuner.HyperParameters(), space)
    trial = apply_values(cfg, {**values, "dense_dropout": 0.4, "lr_head": 1e-3})
    assert trial.model.dense_dropout == 0.4 and trial.train.lr_head == 1e-3
    assert cfg.model.dense_dropout == 0.3  # the base is not changed


def test_values_and_fixed_from_tune_config_restrict_the_space():
    space = _space(values={"dense1": [256, 320]}, fixed={"head": "gap"})
    assert space["dense1"] == {"values": [256, 320]}
    assert space["head"] == {"fixed": "gap"}
    assert "gru_units" not in space  # the cnn_rnn head is not searched


def test_space_file_replaces_the_named_space(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"head": {"fixed": "spp"}, "dense2": {"values": [64]}}))
    assert _space(space=str(path)) == {
        "head": {"fixed": "spp"},
        "dense2": {"values": [64]},
    }


def test_apply_values_sets_list_items_and_keeps_the_rest():
    cfg = get_preset("seed003")  # one 256-unit block
    out = apply_values(cfg, {"dense1": 192, "dense2": 64, "dense_batchnorm": False})
    assert out.model.dense_units == [192, 64]
    assert out.model.dense_batchnorm is False
    assert cfg.model.dense_units == [256]


@pytest.mark.parametrize(
    "tune, message",
    [
        ({"fixed": {"dense9": 3}}, "Unknown hyperparameter 'dense9'"),
        ({"values": {"lr_head": []}}, "non-empty list"),
        ({"space": "nope"}, "neither a named space"),
        ({"fixed": {"lr_backbone": 1e-4}}, "Use tune.stage full"),
        (
            {
                "space": "seed003",
                "fixed": {"head": "gap", "dense_dropout": 0.5, "lr_head": 1e-4},
            },
            "search space is empty",
        ),
        ({"fixed": {"head": "gap", "gru_units": 64}}, "cnn_rnn head(s) only"),
        ({"fixed": {"head": "vit"}}, "unknown head(s)"),
    ],
)
def test_bad_spaces_are_one_clear_error(tune, message):
    with pytest.raises(
        UserError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        _space(**tune)


def test_bad_spec_in_a_file_is_named(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("dense1: {min: 128}\n")
    with pytest.raises(UserError, match="Hyperparameter dense1: spec"):
        _space(space=str(path))


def test_named_spaces_resolve():
    for name in NAMED_SPACES:
        cfg = get_preset("seed003" if name == "seed003" else "default")
        cfg.tune.space = name
        assert resolve_space(cfg.tune, cfg)


def _declared(space, hp=None):
    """{name: (kind, config without conditions)} of what `declare` put on hp."""
    hp = hp or keras_tuner.HyperParameters()
    declare(hp, space)
    out = {}
    for p in hp.space:
        config = p.get_config()
        config.pop("conditions")
        config.pop("name")
        out[p.name] = (type(p).__name__, config)
    return out


def test_full_stage_declares_the_documented_ranges():
    """--stage full with 3-epoch trials: the optimisation ranges as in PARAMS, log
    sampling for the learning rates and weight decay, and the unfreeze epoch
    capped at epoch 2 (its default 3 pulled into the range)."""

    def linear(kind, lo, hi, step, default):
        return kind, {"default": default, "min_value": lo, "max_value": hi,
                      "step": step, "sampling": "linear"}  # fmt: skip

    def log(lo, hi, default):
        return "Float", {"default": default, "min_value": lo, "max_value": hi,
                         "step": None, "sampling": "log"}  # fmt: skip

    assert _declared(_space(stage="full", epochs=3)) == {
        "lr_head": log(1e-4, 3e-3, 8e-4),
        "label_smoothing": linear("Float", 0.0, 0.1, 0.01, 0.03),
        "weight_decay": log(1e-3, 0.1, 0.05),
        "lr_backbone": log(1e-5, 5e-4, 1.5e-4),
        "unfreeze_epoch": linear("Int", 1, 2, 1, 2),
        "unfreeze_from": (
            "Choice",
            {"default": "conv3", "values": list(STAGES), "ordered": False},
        ),  # fmt: skip
    }


def test_head_stage_declares_the_head_blocks_by_kind():
    declared = _declared(_space())
    assert declared["head"] == (
        "Choice",
        {"default": "cnn_rnn", "values": list(HEADS), "ordered": False},
    )
    assert declared["dense1"] == ("Int", {"default": 384, "min_value": 128,
                                          "max_value": 512, "step": 64,
                                          "sampling": "linear"})  # fmt: skip
    assert declared["dense_dropout"] == ("Float", {"default": 0.5, "min_value": 0.2,
                                                   "max_value": 0.6, "step": 0.1,
                                                   "sampling": "linear"})  # fmt: skip
    # A True/False choice is a Boolean (a Choice would store 1/0).
    assert declared["dense_batchnorm"] == ("Boolean", {"default": True})


def test_a_space_file_declares_choices_pins_and_clamped_defaults(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(
        json.dumps(
            {
                "head": {"fixed": "gap"},
                "dense1": {"values": [256, 320]},  # default 384 absent: first
                "dense2": {"values": [64, 128, 192]},  # default 128 present
                "dense_dropout": {"fixed": 0.4},
                "lr_head": {"min": 1e-3, "max": 3e-3, "sampling": "log"},
                "label_smoothing": {"min": 0.05, "max": 0.1},  # no step
            }
        )
    )
    assert _declared(_space(space=str(path))) == {
        "head": ("Fixed", {"value": "gap"}),
        "dense1": ("Choice", {"default": 256, "values": [256, 320], "ordered": True}),
        "dense2": (
            "Choice",
            {"default": 128, "values": [64, 128, 192], "ordered": True},
        ),  # fmt: skip
        "dense_dropout": ("Fixed", {"value": 0.4}),
        "lr_head": (
            "Float",
            {
                "default": 1e-3,
                "min_value": 1e-3,
                "max_value": 3e-3,
                "step": None,
                "sampling": "log",
            },
        ),  # fmt: skip
        "label_smoothing": (
            "Float",
            {
                "default": 0.05,
                "min_value": 0.05,
                "max_value": 0.1,
                "step": None,
                "sampling": "linear",
            },
        ),  # fmt: skip
    }


def test_an_int_range_without_step_steps_by_one(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("unfreeze_epoch: {min: 2, max: 4}\nlr_backbone: {fixed: 1.0e-4}\n")
    assert _declared(_space(space=str(path), stage="full", epochs=10))[
        "unfreeze_epoch"
    ] == ("Int", {"default": 3, "min_value": 2, "max_value": 4, "step": 1,
                  "sampling": "linear"})  # fmt: skip


def test_two_epoch_trials_unfreeze_at_epoch_one():
    assert _space(stage="full", epochs=2)["unfreeze_epoch"] == {
        "min": 1,
        "max": 1,
        "step": 1,
    }
    with pytest.raises(
        UserError, match=r"^tune.stage full with tune.epochs 1: a trial "
    ):
        _space(stage="full", epochs=1)


def test_resolving_never_changes_the_shipped_ranges(monkeypatch):
    """The unfreeze cap is per search: it must not write into PARAMS or a named
    space, or the next search in the process would start from the capped range."""
    _space(stage="full", epochs=2)
    assert PARAMS["unfreeze_epoch"].spec == {"min": 1, "max": 5, "step": 1}
    assert _space(stage="full", epochs=10)["unfreeze_epoch"]["max"] == 5
    probe = {"unfreeze_epoch": {"min": 1, "max": 5}}
    monkeypatch.setitem(NAMED_SPACES, "probe", probe)
    assert _space(space="probe", stage="full", epochs=2)["unfreeze_epoch"] == {
        "min": 1,
        "max": 1,
    }
    assert probe == {"unfreeze_epoch": {"min": 1, "max": 5}}


def test_active_values_tidy_floats_and_skip_undeclared_names():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dense_dropout", 0.1 + 0.2)
    hp.Fixed("dense1", 256)
    space = {"dense_dropout": {}, "dense1": {}, "lr_head": {}}
    assert active_values(hp, space) == {"dense_dropout": 0.3, "dense1": 256}
    assert tidy(0.1 + 0.2) == 0.3 and tidy(True) is True and tidy("gap") == "gap"


def test_apply_values_fills_an_empty_block_list():
    cfg = Config()
    cfg.model.dense_units = []
    assert apply_values(cfg, {"dense2": 64}).model.dense_units == [64, 64]


@pytest.mark.parametrize(
    "tune, message",
    [
        (
            {"fixed": {"dense9": 3}},
            "Unknown hyperparameter 'dense9'. Known: head, dense1, dense2, "
            "dense_dropout, dense_batchnorm, proj_dim, gru_units, dropout, lr_head, "
            "label_smoothing, weight_decay, lr_backbone, unfreeze_epoch, "
            "unfreeze_from.",
        ),
        (
            {"space": "nope"},
            "tune.space nope: neither a named space (default, seed002, seed003) nor a "
            "file.",
        ),
        (
            {
                "space": "seed003",
                "fixed": {"head": "gap", "dense_dropout": 0.5, "lr_head": 1e-4},
            },
            "The search space is empty: every hyperparameter is fixed or left out. "
            "Free one with tune.values.NAME=[...] or use tune.space default.",
        ),
        (
            {"values": {"head": ["cnn_rnn"], "dense1": [256]}},
            "Hyperparameter dense1 applies to the gap/spp head(s) only, and this "
            "search trains cnn_rnn. Leave it out or search the head too.",
        ),
        (
            {"values": {"head": ["gap", "spp"], "gru_units": [64]}},
            "Hyperparameter gru_units applies to the cnn_rnn head(s) only, and this "
            "search trains gap/spp.",
        ),
        (
            {"fixed": {"head": "vit"}},
            "Hyperparameter head: unknown head(s) ['vit']. Choose from cnn_rnn, gap, "
            "spp.",
        ),
    ],
)
def test_error_messages_in_full(tune, message):
    with pytest.raises(UserError, match="^" + re.escape(message)):
        _space(**tune)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"dense1": [256, 384]}', "expected a mapping of hyperparameter names to "
                                   "specs, e.g. {\"dense1\": {\"values\": [256, "
                                   "384]}}."),
        ("[1, 2]", "expected a mapping of hyperparameter names"),
        ('{"dense1": {"values": [256], "bogus": 1}}', "Hyperparameter dense1: spec"),
        ('{"dense1": {"values": [256], "fixed": 256}}', "Hyperparameter dense1: spec"),
        ('{"dense1": {"values": [256]', "cannot parse"),
    ],
)  # fmt: skip
def test_bad_space_files(tmp_path, text, message):
    path = tmp_path / "space.json"
    path.write_text(text)
    if not message.startswith("Hyperparameter"):  # file-level errors name the file
        message = f"tune.space {path}: {message}"
    with pytest.raises(UserError, match="^" + re.escape(message)):
        _space(space=str(path))
