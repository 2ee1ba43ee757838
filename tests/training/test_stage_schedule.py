"""`StageSchedule`: a run's stages one after another, each with what it trains, its
learning rates, its augmentation and its own early stopping and plateau; through
`Trainer.fit` on the tiny model, and through `train` (checkpoints, resume)."""

import csv
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_art.data.pipeline.dataset as dataset_module
import keras_art.training.train as train_module
from keras_art.config import build_config, config_from_dict
from keras_art.data.pipeline.dataset import TrainEpochs
from keras_art.run_dir import RunDir
from keras_art.stage_plan import StageConfig
from keras_art.training.callbacks import StageSchedule, default_callbacks
from keras_art.training.checkpoints import EpochCheckpointer
from keras_art.training.schedules import make_schedule
from keras_art.training.train import train
from tests.training import tiny
from tests.training.resume_checks import check_resumed_run, killed_run_state

ROTATE_ZOOM = (30.0, [0.5, 1.5], False, False)  # rotation, zoom, hflip, vflip
FLIPS = (0.0, [1.0, 1.0], True, True)


def _augment(augment) -> tuple:
    return (augment.rotation, list(augment.zoom), augment.hflip, augment.vflip)


class _Trainable(keras.callbacks.Callback):
    """At each epoch's start (after the stages' callback): trainable variables of
    the backbone and of the head."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        parts = ("backbone", "head")
        self.seen.append(
            [len(self.model.get_layer(p).trainable_variables) for p in parts]
        )


def _flat_val():
    """Identical images, two of each class: any prediction scores macro-F1 1/6,
    so val macro-F1 never improves."""
    labels = np.arange(6) % 3
    return tf.data.Dataset.from_tensor_slices(
        (
            np.zeros((6, tiny.SIZE, tiny.SIZE, 3), "float32"),
            {"artist": np.eye(3, dtype="float32")[labels]},
            {"artist": np.ones(6, "float32")},
        )
    ).batch(4)


def _seed002_fit(tmp_path, augments, *, epochs=None, checkpoints=None, resume=False):
    """Seed 002's rounds (patiences shortened: plateau 1, early stop 2, round 2's
    3) through `Trainer.fit` with a run's callbacks on the tiny model and
    `_flat_val`; the history, and what trained at each epoch's start."""
    cfg, _ = build_config(
        "seed002",
        overrides=[
            "train.plateau_patience=1",
            "train.early_stopping_patience=2",
            "train.stages.baseline.epochs=8",
            "train.stages.frozen.epochs=8",
            "train.stages.frozen.early_stopping_patience=3",
            "train.stages.finetune.epochs=2",
        ],
    )
    train_cfg = cfg.validate().train
    train_cfg.train_bn = False  # as a run from ImageNet weights resolves it
    trainer = tiny.trainer(tiny.tiny_model(), train_cfg, steps_per_epoch=2)

    def build(augment, epoch):
        augments[epoch] = _augment(augment)
        return tiny.dataset(n=8)

    trainable = _Trainable()
    callbacks = default_callbacks(
        train_cfg, tmp_path, tensorboard=False, set_trainable=tiny.set_trainable
    )
    history = trainer.fit(
        TrainEpochs(build, cfg.augment, cfg.input),
        _flat_val(),
        epochs=epochs,
        callbacks=[*callbacks, trainable],
        checkpoints=checkpoints,
        resume=resume,
    ).history
    return history, trainable.seen


def test_seed002_rounds_each_stop_alone_and_resume_inside_a_round(tmp_path):
    """On a val macro-F1 that never moves, each of rounds 1 and 2 cuts every
    group's LR x0.1 after each epoch without a gain and ends by its own early
    stopping (after 3 epochs, and 4 for round 2's patience 3); round 2 starts
    again at its own head LR with fresh counters (a stalled round does not end
    the run); round 3 trains every layer at 1e-7 for its 2 epochs, each round
    with its augmentation. Stopped after epoch 5 (inside round 2, after an epoch
    without a gain and an LR cut) and resumed, the run goes on exactly as the
    uninterrupted one."""
    augments = {}
    whole, trainable = _seed002_fit(tmp_path / "whole", augments)

    assert whole["stage"] == [1] * 3 + [2] * 4 + [3] * 2
    head = [1e-4, 1e-4, 1e-5] + [1e-4, 1e-4, 1e-5, 1e-6] + [1e-7] * 2
    # Round 2 sets only the head's LR; the backbone's (frozen) goes on from round
    # 1's, which its last epoch's plateau cut to 1e-6.
    backbone = [1e-4, 1e-4, 1e-5] + [1e-6, 1e-6, 1e-7, 1e-8] + [1e-7] * 2
    assert whole["lr_head"] == pytest.approx(head, rel=1e-5)
    assert whole["lr_backbone"] == pytest.approx(backbone, rel=1e-5)
    assert [augments[e] for e in range(9)] == [ROTATE_ZOOM] * 3 + [FLIPS] * 6
    backbone_vars = [b for b, _ in trainable]
    assert all(h > 0 for _, h in trainable)
    assert min(backbone_vars[:3] + backbone_vars[7:]) > 0
    assert backbone_vars[3:7] == [0] * 4
    rows = csv.DictReader((tmp_path / "whole" / "history.csv").open())
    firsts = [row for i, row in enumerate(rows) if i in (0, 3, 7)]
    assert [r["stage"] for r in firsts] == ["1", "2", "3"]
    assert [r["stage_name"] for r in firsts] == ["baseline", "frozen", "finetune"]
    assert [r["trainable"] for r in firsts] == [
        "head+conv1-conv5",
        "head",
        "head+conv1-conv5",
    ]
    assert [r["augment"] for r in firsts] == [
        "rotation=30.0 zoom=[0.5,1.5] hflip=false vflip=false",
        *["rotation=0.0 zoom=[1.0,1.0] hflip=true vflip=true"] * 2,
    ]

    checkpoints = EpochCheckpointer(tmp_path / "checkpoints")
    augments.clear()
    _seed002_fit(tmp_path / "stopped", augments, epochs=5, checkpoints=checkpoints)
    resumed, trainable = _seed002_fit(
        tmp_path / "stopped", augments, checkpoints=checkpoints, resume=True
    )
    for key in ("stage", "lr_head", "lr_backbone"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5), key
    assert [augments[e] for e in (5, 6, 7, 8)] == [FLIPS] * 4
    assert [b for b, _ in trainable] == backbone_vars[5:]


def test_a_stage_under_cosine_anneals_from_its_own_peak():
    """With ``train.schedule=cosine`` a stage's LR is a new peak on the run's one
    cosine (the shared step goes on); a group it leaves alone keeps its curve."""
    cfg = tiny.train_cfg(epochs=2, cosine_t_max_epochs=4, eta_min=0.0)
    cfg.stages = [
        StageConfig("head", 1),
        StageConfig("all", 1, "all", unfreeze_from="conv4", lr_head=2e-3),
    ]
    trainer = tiny.trainer(tiny.tiny_model(), cfg, steps_per_epoch=3)
    schedule = StageSchedule.from_train_config(cfg, set_trainable=tiny.set_trainable)
    history = trainer.fit(tiny.dataset(n=12), callbacks=[schedule]).history

    def cosine(peak, step):  # T_max = 12 steps: half way at step 6
        return float(make_schedule(cfg, 3, peak)(step))

    assert history["lr_head"] == pytest.approx([cosine(1e-2, 3), 1e-3], rel=1e-5)
    assert history["lr_backbone"] == pytest.approx([cosine(1e-3, 3), 5e-4], rel=1e-5)


def test_a_stage_of_0_epochs_is_skipped_and_all_zero_is_refused():
    """A warm-started run that starts at round 2 (seed 002's dense-block models):
    ``epochs=0`` skips round 1; the run trains the other rounds in order."""
    from keras_art.errors import UserError
    from keras_art.stage_plan import check_stages

    cfg = tiny.train_cfg(epochs=3)
    cfg.stages = [
        StageConfig("baseline", 0, "all", unfreeze_from="conv2"),
        StageConfig("frozen", 1),
        StageConfig("finetune", 1, "all", unfreeze_from="conv2"),
    ]
    check_stages(cfg)
    trainer = tiny.trainer(tiny.tiny_model(), cfg, steps_per_epoch=2)
    schedule = StageSchedule.from_train_config(cfg, set_trainable=tiny.set_trainable)
    trainable = _Trainable()
    history = trainer.fit(tiny.dataset(n=8), callbacks=[schedule, trainable]).history
    assert history["stage"] == [2, 3]
    assert trainable.seen[0][0] == 0 and trainable.seen[1][0] > 0  # frozen, then not
    cfg.stages[1].epochs = cfg.stages[2].epochs = 0
    with pytest.raises(UserError, match="every stage has 0 epochs"):
        check_stages(cfg)


class _Killed(Exception):
    """Stands for kill -9 right after a checkpoint."""


def _tiny_classifier(model_cfg, num_classes, on_missing_weights="error"):
    """`build_classifier`'s contract with the tiny backbone (any input size)."""
    dense = tuple(model_cfg.dense_units)
    return tiny.tiny_model(classes=num_classes, size=None, dense=dense), "random init"


def test_seed002_run_passes_its_rounds_and_resumes_mid_round(
    tmp_path, monkeypatch, caplog
):
    """`train` with seed 002's rounds shrunk to 1, 2 and 1 epochs (the tiny model for
    ResNet50), warm-started from a model with another head: stopped after epoch 2
    (inside round 2), the resume trains epochs 3 and 4 only, in round 2 then 3,
    with round 2's augmentation; history.csv shows each round's trainable part,
    LRs and augmentation."""
    monkeypatch.setattr(train_module, "build_classifier", _tiny_classifier)
    source = tmp_path / "baseline.keras"
    tiny.tiny_model(classes={"artist": 8}, size=None, dense=(4,)).save(source)
    real_build = dataset_module.build_dataset
    augments = {}

    def spy(*args, training, epoch=0, **kwargs):
        if training:
            augments[epoch] = _augment(args[3])
        return real_build(*args, training=training, epoch=epoch, **kwargs)

    monkeypatch.setattr(dataset_module, "build_dataset", spy)
    real_save = EpochCheckpointer.save

    def save_then_die(self, trainer, completed_epochs, callbacks=()):
        out = real_save(self, trainer, completed_epochs, callbacks)
        if completed_epochs == 2:
            raise _Killed
        return out

    monkeypatch.setattr(EpochCheckpointer, "save", save_then_die)
    cfg, _ = build_config(
        "seed002",
        overrides=[
            f"workdir={tmp_path}",
            "run_name=s",
            "data.sample_images=96",
            "model.weights=none",
            "model.dense_units=[8]",
            "augment.image_size=32",
            "input.batch_size=8",
            "train.steps_per_epoch=2",
            "train.stages.baseline.epochs=1",
            "train.stages.frozen.epochs=2",
            "train.stages.finetune.epochs=1",
            f"train.init_from={source}",
        ],
    )
    with pytest.raises(_Killed):
        train(cfg.validate())
    run = tmp_path / "s"
    done, lines_before, steps = killed_run_state(run)
    assert (done, steps) == (2, 2)
    warm = RunDir(run).read_warm_start()
    assert warm["loaded_layers"] == 10  # the backbone
    assert {s["layer"] for s in warm["skipped"]} == {
        "head/head_dense_0",
        "head/head_artist",
    }
    # Trained backbone weights: BatchNorm keeps their statistics (as ImageNet's).
    assert RunDir(run).read_config()["train"]["train_bn"] is False
    source.unlink()  # the resume's weights come from the checkpoint
    assert [augments[e] for e in range(2)] == [ROTATE_ZOOM, FLIPS]
    augments.clear()

    monkeypatch.setattr(EpochCheckpointer, "save", real_save)
    resumed = config_from_dict(RunDir(run).read_config())
    # Only the resume's lines: an earlier test in this process may have left the
    # keras_art logger at INFO, and the killed run's lines would count too.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="keras_art"):
        result = train(resumed, resume=True)
    check_resumed_run(run, caplog.text, done, lines_before, steps, epochs=4)
    assert "Epoch 3/4 (stage 2 frozen)" in caplog.text
    assert [augments[e] for e in (2, 3)] == [FLIPS] * 2  # round 2 goes on
    rows = list(csv.DictReader((run / "history.csv").read_text().splitlines()))
    assert [r["stage_name"] for r in rows] == [
        "baseline",
        "frozen",
        "frozen",
        "finetune",
    ]
    assert [r["trainable"] for r in rows] == [
        "head+conv1-conv5",
        "head",
        "head",
        "head+conv1-conv5",
    ]
    for group in ("head", "backbone"):
        lrs = [float(r[f"lr_{group}"]) for r in rows]
        assert lrs == pytest.approx([1e-4] * 3 + [1e-7], rel=1e-5), group
    assert rows[2]["augment"] == "rotation=0.0 zoom=[1.0,1.0] hflip=true vflip=true"
    assert result.summary["epochs_run"] == 4
    assert f"init_from {source}: 10 layers loaded" in result.summary["weights_source"]
    saved = json.loads((run / "config.json").read_text())["train"]["stages"]
    assert [(s["name"], s["epochs"]) for s in saved] == [
        ("baseline", 1),
        ("frozen", 2),
        ("finetune", 1),
    ]
