"""Training stages as data (`keras_art.stage_plan`, ``train.stages``): the shorthand's
two stages, seed 002's three rounds, the config round trip (JSON, YAML, ``--set``)
and the errors that name a stage's key."""

import json

import pytest

from keras_art.config import (
    TrainConfig,
    build_config,
    config_from_dict,
    get_preset,
    load_config_file,
)
from keras_art.errors import UserError
from keras_art.stage_plan import StageConfig, resolve_stages, run_epochs


def test_shorthand_is_the_two_stages_unfreeze_epoch_describes():
    train = TrainConfig(epochs=15, unfreeze_epoch=3, unfreeze_from="conv4")
    frozen, unfrozen = resolve_stages(train)
    assert (frozen.index, frozen.name, frozen.epochs) == (1, "frozen", 3)
    assert (frozen.trainable, frozen.backbone_stages) == ("head", ())
    assert (unfrozen.index, unfrozen.name) == (2, "unfrozen")
    assert unfrozen.backbone_stages == ("conv4", "conv5")
    assert unfrozen.trainable == "head+conv4-conv5"
    # The same LRs throughout, never reset at the unfreeze (a plateau's cuts stay).
    for stage in (frozen, unfrozen):
        assert stage.learning_rates == {"head": 8e-4, "backbone": 1.5e-4}
        assert stage.sets_learning_rates == () and stage.augment == {}
        assert stage.early_stopping_patience == 5
        assert stage.plateau_patience == 0  # cosine: no plateau
    assert run_epochs(train) == 15  # stage 2 runs to train.epochs

    (only,) = resolve_stages(TrainConfig(epochs=7, unfreeze_epoch=-1))
    assert (only.epochs, only.trainable) == (7, "head")
    frozen, _ = resolve_stages(TrainConfig(unfreeze_epoch=0))
    assert frozen.epochs == 0  # skipped: the run starts in stage 2, as it did

    plateau = TrainConfig(
        unfreeze_on_plateau=True,
        schedule="plateau",
        plateau_patience=4,
        train_bn=True,
        lr_groups={"conv3": 1e-6},
    )
    frozen, unfrozen = resolve_stages(plateau)
    # Stage 1 ends after 2 stalled epochs (the unfreeze's patience), stage 2 stops
    # the run after train.early_stopping_patience.
    assert (frozen.early_stopping_patience, unfrozen.early_stopping_patience) == (2, 5)
    assert frozen.plateau_patience == unfrozen.plateau_patience == 4
    assert unfrozen.trainable == "head+conv3-conv5+bn"
    assert unfrozen.learning_rates["conv3"] == 1e-6


def test_seed002_preset_is_its_three_rounds():
    cfg = get_preset("seed002").validate()
    assert (cfg.data.top_n, cfg.data.max_per_class) == (10, 200)  # 2,000 works
    assert cfg.train.clipnorm == 0.0 and cfg.train.weight_decay == 0.0
    assert cfg.train.eta_min == 0.0  # the plateau may go below 1e-6
    baseline, frozen, finetune = resolve_stages(cfg.train)
    assert [s.name for s in (baseline, frozen, finetune)] == [
        "baseline",
        "frozen",
        "finetune",
    ]
    assert [s.epochs for s in (baseline, frozen, finetune)] == [50, 40, 30]
    assert run_epochs(cfg.train) == 120
    assert baseline.trainable == finetune.trainable == "head+conv1-conv5"
    assert frozen.trainable == "head"
    assert baseline.learning_rates == {"head": 1e-4, "backbone": 1e-4}
    assert frozen.sets_learning_rates == ("head",)
    assert frozen.learning_rates["head"] == 1e-4
    assert finetune.learning_rates == {"head": 1e-7, "backbone": 1e-7}
    assert baseline.augment == {
        "rotation": 30.0,
        "zoom": [0.5, 1.5],
        "hflip": False,
        "vflip": False,
    }
    flips = {"rotation": 0.0, "zoom": [1.0, 1.0], "hflip": True, "vflip": True}
    assert frozen.augment == finetune.augment == flips
    for stage in (baseline, frozen):
        assert (stage.early_stopping_patience, stage.plateau_patience) == (10, 4)
    assert (finetune.early_stopping_patience, finetune.plateau_patience) == (0, 0)


def test_stages_round_trip_through_json_yaml_and_set(tmp_path):
    cfg, explicit = build_config(
        "seed002",
        overrides=[
            "train.stages.0.epochs=1",  # by index, from 0
            "train.stages.frozen.epochs=2",  # by name
            "train.stages.finetune.lr_head=1e-6",
            "train.stages.finetune.augment={hflip: false}",
        ],
    )
    cfg.validate()
    assert "train.stages.frozen.epochs" in explicit
    assert [s.epochs for s in cfg.train.stages] == [1, 2, 30]
    finetune = cfg.train.stages[2]
    assert (finetune.lr_head, finetune.lr_backbone) == (1e-6, 1e-7)
    assert finetune.augment == {"hflip": False}
    assert cfg.train.stages[0].augment["rotation"] == 30.0  # untouched
    again = config_from_dict(json.loads(cfg.to_json()))
    assert again == cfg and isinstance(again.train.stages[0], StageConfig)

    path = tmp_path / "stages.yaml"
    path.write_text(
        "train:\n  stages:\n"
        "    - {name: warm, epochs: 2}\n"
        "    - {name: all, epochs: 3, trains: all, unfreeze_from: conv2,"
        " lr_backbone: 1e-5, augment: {zoom: [0.8, 1.2]}}\n"
    )
    loaded = load_config_file(path).validate()
    warm, every = resolve_stages(loaded.train)
    assert (warm.trainable, every.trainable) == ("head", "head+conv2-conv5")
    assert every.learning_rates["backbone"] == 1e-5
    assert every.augment == {"zoom": [0.8, 1.2]}
    listed, _ = build_config(
        "demo", overrides=["train.stages=[{name: a, epochs: 2}, {epochs: 1}]"]
    )
    assert [s.name for s in resolve_stages(listed.validate().train)] == [
        "a",
        "stage2",
    ]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.stages.0.epochs=-1"], "train.stages.0.epochs must be at least 0"),
        (["train.stages.0.trains=backbone"], "Unknown train.stages.0.trains"),
        (["train.stages.1.unfreeze_from=conv3"], "train.stages.1.unfreeze_from is"),
        (["train.stages.0.unfreeze_from=conv9"], "Unknown train.stages.0.unfreeze"),
        (["train.stages.0.epoc=1"], "unknown config key 'train.stages.0.epoc'"),
        (["train.stages.4.epochs=1"], "train.stages has no item '4'"),
        (["train.stages.frozn.epochs=1"], "(baseline, frozen, finetune)"),
        (["train.stages.0.augment={rotaton: 3}"], "'train.stages.0.augment.rotaton'"),
        (["train.stages.0.augment={zoom: big}"], "train.stages.0.augment.zoom expec"),
        (["train.stages.0.augment={eval_resize: letterbox}"], "a stage cannot"),
        (["train.stages.1.name=baseline"], "must be unique"),
        (["train.stages.0.lr_groups={conv2: 1e-6}"], "train.lr_groups does not"),
        (["train.stages.0.lr_head=0"], "train.stages.0.lr_head must be > 0"),
        (["train.schedule=cosine", "train.stages.2.plateau_patience=2"], "plateau"),
        (["train.unfreeze_on_plateau=true"], "unfreeze_on_plateau is the two-stage"),
        (["train.feature_cache=true"], "train.feature_cache trains head-only"),
        (["train.lr_groups={conv1: 1e-6}", "train.stages.0.trains=head",
          "train.stages.2.unfreeze_from=conv2"], "no stage of train.stages"),
    ],
)  # fmt: skip
def test_a_stage_that_cannot_run_is_refused_naming_its_key(overrides, message):
    with pytest.raises(
        UserError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        cfg, _ = build_config("seed002", overrides=overrides)
        cfg.validate()


def test_set_on_a_shorthand_config_says_there_is_no_stage_list():
    with pytest.raises(UserError, match="train.stages is empty"):
        build_config("demo", overrides=["train.stages.0.epochs=1"])
