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
from keras_art.training.callbacks import default_callbacks
from keras_art.training.checkpoints import EpochCheckpointer
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


def test_seed002_rounds_train_their_parts_lrs_augmentation_each_stopping_alone(
    tmp_path,
):
    """Seed 002's three rounds through `Trainer.fit` with a run's callbacks, on a
    val macro-F1 that never moves (patiences shortened to plateau 2, early stop 4):
    each of rounds 1 and 2 cuts every group's LR x0.1 after its 3rd and 5th epochs
    and ends by early stopping after its 5th; round 2 starts again at its own LR
    with fresh counters (a stalled round does not end the run); round 3 trains
    every layer at 1e-7 for its 2 epochs."""
    cfg, _ = build_config(
        "seed002",
        overrides=[
            "train.plateau_patience=2",
            "train.early_stopping_patience=4",
            "train.stages.baseline.epochs=8",
            "train.stages.frozen.epochs=8",
            "train.stages.finetune.epochs=2",
        ],
    )
    train_cfg = cfg.validate().train
    train_cfg.train_bn = False  # as a run from ImageNet weights resolves it
    model = tiny.tiny_model()
    trainer = tiny.trainer(model, train_cfg, steps_per_epoch=2)
    augments = {}

    def build(augment, epoch):
        augments[epoch] = _augment(augment)
        return tiny.dataset(n=8)

    cbs = default_callbacks(
        train_cfg, tmp_path, tensorboard=False, set_trainable=tiny.set_trainable
    )
    trainable = _Trainable()
    history = trainer.fit(
        TrainEpochs(build, cfg.augment, cfg.input),
        _flat_val(),
        callbacks=[*cbs, trainable],
    ).history

    assert history["stage"] == [1] * 5 + [2] * 5 + [3] * 2
    cuts = [1.0] * 3 + [0.1] * 2
    head = [1e-4 * f for f in cuts] * 2 + [1e-7] * 2
    # Round 2 sets only the head's LR; the backbone's (frozen) goes on from round
    # 1's, which its last epoch's plateau cut to 1e-6.
    backbone = [1e-4 * f for f in cuts] + [1e-6 * f for f in cuts] + [1e-7] * 2
    assert history["lr_head"] == pytest.approx(head, rel=1e-5)
    assert history["lr_backbone"] == pytest.approx(backbone, rel=1e-5)
    assert [augments[e] for e in range(12)] == [ROTATE_ZOOM] * 5 + [FLIPS] * 7
    backbone_vars = [b for b, _ in trainable.seen]
    assert all(h > 0 for _, h in trainable.seen)
    assert min(backbone_vars[:5]) > 0 and min(backbone_vars[10:]) > 0
    assert backbone_vars[5:10] == [0] * 5

    rows = list(csv.DictReader((tmp_path / "history.csv").read_text().splitlines()))
    firsts = [rows[0], rows[5], rows[10]]
    assert [r["stage"] for r in firsts] == ["1", "2", "3"]
    assert [r["stage_name"] for r in firsts] == ["baseline", "frozen", "finetune"]
    assert [r["trainable"] for r in firsts] == [
        "head+conv1-conv5",
        "head",
        "head+conv1-conv5",
    ]
    assert rows[0]["augment"] == "rotation=30.0 zoom=[0.5,1.5] hflip=false vflip=false"
    assert rows[10]["augment"] == "rotation=0.0 zoom=[1.0,1.0] hflip=true vflip=true"


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
