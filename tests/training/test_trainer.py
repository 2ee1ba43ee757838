import csv
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_art.config import ModelConfig
from keras_art.models.backbones import backbone_stages, build_backbone
from keras_art.models.classifier import build_classifier
from keras_art.training.callbacks import (
    BestModelCheckpoint,
    HistoryLogger,
    StageSchedule,
    default_callbacks,
)
from keras_art.training.checkpoints import EpochCheckpointer
from keras_art.training.feature_cache import (
    build_eval_feature_cache,
    build_feature_cache,
)
from keras_art.training.schedules import make_schedule
from keras_art.training.trainer import Trainer
from tests.training import tiny


def _trainer(model, cfg, tasks=("artist",), steps=6):
    return Trainer(
        model,
        tasks,
        cfg,
        steps_per_epoch=steps,
        verbose=0,
        stages=tiny.stages(model.get_layer("backbone")),
    )


def _snapshot(backbone):
    return {
        w.path: w.numpy().copy() for layer in backbone.layers for w in layer.weights
    }


class _Snapshots(keras.callbacks.Callback):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.at_epoch_end = []

    def on_train_begin(self, logs=None):
        self.initial = _snapshot(self.backbone)

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append(_snapshot(self.backbone))


def test_staged_unfreeze_proof():
    model = tiny.tiny_model()
    backbone = model.get_layer("backbone")
    cfg = tiny.train_cfg(epochs=3, unfreeze_epoch=2, unfreeze_from="conv3")
    trainer = _trainer(model, cfg)
    snaps = _Snapshots(backbone)
    unfreeze = StageSchedule.from_train_config(cfg, set_trainable=tiny.set_trainable)
    history = trainer.fit(
        tiny.dataset(), tiny.dataset(n=8), callbacks=[unfreeze, snaps]
    )
    assert history.history["stage"] == [1, 1, 2]
    start, e1, e2, e3 = snaps.initial, *snaps.at_epoch_end
    for path, value in start.items():  # stage 1: nothing in the backbone moves
        np.testing.assert_array_equal(value, e1[path], err_msg=path)
        np.testing.assert_array_equal(value, e2[path], err_msg=path)
    moved = {p for p in start if not np.array_equal(start[p], e3[p])}
    for stage in ("conv3", "conv4", "conv5"):
        assert f"{stage}_block1_1_conv/kernel" in moved
    frozen = [p for p in start if p.startswith(("conv1_", "conv2_")) or "_bn/" in p]
    assert frozen and not moved.intersection(frozen), moved.intersection(frozen)
    assert any("moving_mean" in p for p in frozen)


def test_unfreeze_on_plateau_and_stage_logged():
    model = tiny.tiny_model()
    cfg = tiny.train_cfg(
        epochs=4,
        unfreeze_epoch=10,
        unfreeze_from="conv4",
        unfreeze_on_plateau=True,
        monitor="val_loss",
    )
    trainer = _trainer(model, cfg)
    unfreeze = StageSchedule.from_train_config(cfg, set_trainable=tiny.set_trainable)

    class Worse(keras.callbacks.Callback):  # force a plateau on val_loss
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = float(epoch)

    history = trainer.fit(
        tiny.dataset(), tiny.dataset(n=8), callbacks=[Worse(), unfreeze]
    )
    # Two epochs without a gain (after epoch 1's best) end stage 1 early.
    assert history.history["stage"] == [1, 1, 1, 2]
    assert unfreeze.stage.name == "unfrozen" and trainer.stage == 2


def test_callbacks_history_best_model_early_stopping(tmp_path):
    model = tiny.tiny_model(("artist", "style"), dropout=0.2)
    cfg = tiny.train_cfg(epochs=6, early_stopping_patience=1, monitor="val_macro_f1")
    trainer = _trainer(model, cfg, tasks=("artist", "style"))
    cbs = default_callbacks(cfg, tmp_path, set_trainable=tiny.set_trainable)

    class Stall(keras.callbacks.Callback):  # a flat metric stops after 2 epochs
        def on_epoch_end(self, epoch, logs=None):
            logs["val_macro_f1"] = 0.5

    cbs.insert(0, Stall())
    x = np.zeros((2, tiny.SIZE, tiny.SIZE, 3), "float32")
    first_epoch = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            first_epoch.setdefault("style", model.predict(x, verbose=0)["style"])

    cbs.append(Record())
    history = trainer.fit(
        tiny.dataset(tasks=("artist", "style")),
        tiny.dataset(
            n=9, tasks=("artist", "style"), drop_remainder=False, missing=True
        ),
        callbacks=cbs,
    )
    # Stage 1 (1 epoch) ends by its length; stage 2's early stopping starts
    # afresh and ends the run after its second epoch.
    assert len(history.epoch) == 3
    rows = list(csv.DictReader((tmp_path / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [r["stage"] for r in rows] == ["1", "2", "2"]
    assert [r["stage_name"] for r in rows] == ["frozen", "unfrozen", "unfrozen"]
    assert [r["trainable"] for r in rows] == ["head"] + ["head+conv3-conv5"] * 2
    for key in (
        "loss",
        "val_style_macro_f1",
        "val_macro_f1",
        "lr_head",
        "lr_backbone",
        "stage",
        "epoch_time_s",
        "val_artist_top5",
    ):
        assert key in rows[0], key
    # Each group follows its own cosine from its own peak to the shared eta_min,
    # at the shared step (6 steps after epoch 1).
    for group, peak in (("head", cfg.lr_head), ("backbone", cfg.lr_backbone)):
        assert float(rows[0][f"lr_{group}"]) == pytest.approx(
            float(make_schedule(cfg, 6, peak)(6)), rel=1e-6
        )
    best = keras.saving.load_model(tmp_path / "best.keras")
    np.testing.assert_allclose(
        best.predict(x, verbose=0)["style"],
        first_epoch["style"],
        rtol=1e-5,
    )
    assert (tmp_path / "logs").is_dir()
    assert not list(tmp_path.glob(".*.keras"))


def test_best_checkpoint_only_on_improvement(tmp_path):
    cb = BestModelCheckpoint(tmp_path / "best.keras")
    cb.set_model(tiny.tiny_model())
    cb.on_epoch_end(0, {"val_macro_f1": 0.4})
    first = (tmp_path / "best.keras").stat().st_mtime_ns
    cb.on_epoch_end(1, {"val_macro_f1": 0.3})
    assert (tmp_path / "best.keras").stat().st_mtime_ns == first
    assert cb.best == 0.4 and cb.best_epoch == 0
    logger = HistoryLogger(tmp_path / "h.csv")
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "stage": 1})
    assert (tmp_path / "h.csv").read_text().startswith("epoch,loss,stage")


def test_history_logger_resumed_file_keeps_the_fresh_files_lines(tmp_path):
    """Keras hands on_epoch_end its logs with sorted keys, while the trainer's
    history records (what a resume restores) keep the order the epoch built them
    in: the resumed history.csv must still match the uninterrupted one line for
    line, header included."""
    logs = [
        {"loss": 2.0, "val_loss": 2.5, "learning_rate": 0.1, "epoch_time_s": 3.25},
        {"loss": 1.5, "val_loss": 2.0, "learning_rate": 0.05, "epoch_time_s": 1.0},
    ]
    fresh = HistoryLogger(tmp_path / "fresh.csv")
    fresh.on_train_begin()
    for epoch, log in enumerate(logs):
        fresh.on_epoch_end(epoch, dict(sorted(log.items())))
    resumed = HistoryLogger(tmp_path / "resumed.csv")
    resumed.set_trainer(SimpleNamespace(history_records=[{"epoch": 0, **logs[0]}]))
    resumed.trainer.strategy = tf.distribute.get_strategy()
    resumed.on_train_begin()
    resumed.on_epoch_end(1, dict(sorted(logs[1].items())))
    expected = (tmp_path / "fresh.csv").read_text()
    assert expected.startswith("epoch,epoch_time_s,learning_rate,loss,val_loss\n")
    assert (tmp_path / "resumed.csv").read_text() == expected


def test_best_checkpoint_skips_non_finite_losses_and_weights(tmp_path):
    model = tiny.tiny_model()
    cb = BestModelCheckpoint(tmp_path / "best.keras")
    cb.set_model(model)
    cb.on_epoch_end(0, {"val_macro_f1": 0.5, "loss": 1.0, "val_loss": float("nan")})
    cb.on_epoch_end(1, {"val_macro_f1": 0.5, "loss": float("inf"), "val_loss": 1.0})
    assert cb.best is None and not (tmp_path / "best.keras").exists()
    # NaN weights with finite losses (a later op, e.g. max pooling, can hide NaN).
    kernel = model.get_layer("backbone").get_layer("conv3_block1_1_conv").kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    cb.on_epoch_end(2, {"val_macro_f1": 0.5, "loss": 1.0, "val_loss": 1.0})
    assert cb.best is None and not (tmp_path / "best.keras").exists()
    kernel.assign(np.zeros(kernel.shape, "float32"))
    cb.on_epoch_end(3, {"val_macro_f1": 0.5, "loss": 1.0, "val_loss": 1.0})
    assert (cb.best, cb.best_epoch) == (0.5, 3)
    assert (tmp_path / "best.keras").exists()


def test_nan_loss_stops_the_run_and_writes_no_best_model(tmp_path):
    """A NaN weight makes the forward pass and the loss NaN (NaN pixels would not
    do: inside a tf.function on CPU, max pooling turns them finite): TerminateOnNaN
    ends the run after that batch, the history keeps the NaN epoch, and no
    ``best.keras`` is written from the NaN weights, although val macro-F1 of a
    NaN model is a finite number."""
    model = tiny.tiny_model()
    tiny.set_trainable(model.get_layer("backbone"), None)
    cfg = tiny.train_cfg(epochs=3)
    trainer = _trainer(model, cfg)
    bias = model.get_layer("head").get_layer("head_artist").bias

    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                bias.assign(np.full(bias.shape, np.nan, "float32"))

    batch_losses = []

    class Losses(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batch_losses.append(logs["loss"])

    cbs = default_callbacks(
        cfg, tmp_path, tensorboard=False, set_trainable=tiny.set_trainable
    )
    (best,) = [cb for cb in cbs if isinstance(cb, BestModelCheckpoint)]
    history = trainer.fit(
        tiny.dataset(), tiny.dataset(n=8), callbacks=[Poison(), *cbs, Losses()]
    )
    assert np.isfinite(batch_losses[:2]).all() and np.isnan(batch_losses[2])
    assert len(batch_losses) == 3  # stopped right after the NaN batch
    assert history.epoch == [0]
    assert np.isnan(history.history["loss"][0])
    assert np.isfinite(history.history["val_macro_f1"][0])
    rows = list(csv.DictReader((tmp_path / "history.csv").read_text().splitlines()))
    assert len(rows) == 1 and np.isnan(float(rows[0]["loss"]))
    assert not np.isfinite(model.get_layer("head").get_weights()[0]).all()
    assert not (tmp_path / "best.keras").exists()
    assert not list(tmp_path.glob(".*.keras"))
    assert best.best is None and best.best_epoch is None


def test_feature_cache_trains_head_only_in_stage_one():
    model = tiny.tiny_model()
    backbone = model.get_layer("backbone")
    tiny.set_trainable(backbone, None)
    cfg = tiny.train_cfg(epochs=2, unfreeze_epoch=1, unfreeze_from="conv4")
    trainer = _trainer(model, cfg)
    cached = build_feature_cache(backbone, tiny.dataset(), batch_size=4, flips=True)
    assert int(cached.cardinality()) == 6
    features, _, _ = next(iter(cached))
    assert features.shape == (4, tiny.SIZE // 2, tiny.SIZE // 2, 4)
    assert features.dtype == "float32"
    head_before = model.get_layer("head").get_weights()[0].copy()
    calls = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            calls.append(trainer._use_feature_cache)

    unfreeze = StageSchedule.from_train_config(cfg, set_trainable=tiny.set_trainable)
    history = trainer.fit(
        tiny.dataset(),
        tiny.dataset(n=8),
        callbacks=[unfreeze, Spy()],
        feature_train_ds=cached,
    )
    assert calls == [True, False]
    assert history.history["stage"] == [1, 2]
    assert not np.allclose(head_before, model.get_layer("head").get_weights()[0])


def test_cached_val_features_give_the_images_val_metrics_while_frozen():
    model = tiny.tiny_model()
    backbone = model.get_layer("backbone")
    tiny.set_trainable(backbone, None)
    trainer = _trainer(model, tiny.train_cfg(epochs=1, unfreeze_epoch=-1))
    val = tiny.dataset(n=10, seed=3, drop_remainder=False)
    cached_val = build_eval_feature_cache(backbone, val, batch_size=4)
    on_images = trainer.evaluate(val)
    on_features = trainer.evaluate(cached_val, head_only=True)
    assert on_features.keys() == on_images.keys()
    for key, value in on_images.items():  # features are stored as float16
        assert on_features[key] == pytest.approx(value, abs=2e-3), key

    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["val_loss"])

    # Frozen throughout: fit validates on the cached features, never on images
    # (an images val_ds that fails when read proves it is not touched).
    def poison(x, y, w):
        check = tf.debugging.assert_less(
            tf.reduce_max(x), -1e9, message="val images were read"
        )
        with tf.control_dependencies([check]):
            return tf.identity(x), y, w

    poisoned = val.map(poison)
    trainer.fit(
        tiny.dataset(),
        poisoned,
        callbacks=[Spy()],
        feature_train_ds=build_feature_cache(backbone, tiny.dataset(), batch_size=4),
        feature_val_ds=cached_val,
    )
    assert len(seen) == 1 and np.isfinite(seen[0])


def test_resume_restores_callback_states_by_name_not_position(tmp_path):
    cfg = tiny.train_cfg(epochs=2, unfreeze_epoch=1)
    ckpt = EpochCheckpointer(tmp_path / "checkpoints")

    def callbacks():
        return [
            StageSchedule.from_train_config(cfg, set_trainable=tiny.set_trainable),
            BestModelCheckpoint(tmp_path / "best.keras", monitor="val_loss"),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=5),
        ]

    def fresh_trainer():
        model = tiny.tiny_model()
        tiny.set_trainable(model.get_layer("backbone"), None)
        return _trainer(model, cfg)

    unfreeze, best, early = callbacks()
    fresh_trainer().fit(
        tiny.dataset(),
        tiny.dataset(n=8),
        callbacks=[unfreeze, best, early],
        checkpoints=ckpt,
    )
    assert unfreeze.stage.index == 2 and best.best is not None

    # Resume with the callbacks in the opposite order: nothing is left to train,
    # so what they hold is what the checkpoint gave them.
    unfreeze2, best2, early2 = callbacks()
    trainer = fresh_trainer()
    history = trainer.fit(
        tiny.dataset(),
        tiny.dataset(n=8),
        callbacks=[early2, best2, unfreeze2],
        checkpoints=ckpt,
        resume=True,
    )
    assert history.epoch == [0, 1]
    assert (unfreeze2.stage.index, unfreeze2.epochs_done) == (2, 1)
    assert trainer.stage == 2
    assert (
        trainer.model.get_layer("backbone").get_layer("conv3_block1_1_conv").trainable
    )
    assert (best2.best, best2.best_epoch) == (best.best, best.best_epoch)
    assert early2.best == pytest.approx(early.best)
    assert early2.wait == early.wait


def _is_bn(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def test_pretrained_resnet50_keeps_batchnorm_and_stem_frozen_through_unfreeze(
    tmp_path,
):
    """The ImageNet path: weights from a file (train_bn resolves False), stage 1 then
    stage 2 from conv4 through `Trainer.fit` on a real ResNet50 at 32 px. No BN
    variable (moving statistics included) and nothing before conv4 ever moves; the
    unfrozen convolutions and the head's own BN do."""
    source, _ = build_backbone("resnet50", None, image_size=32)
    rng = np.random.default_rng(0)
    for layer in source.layers:  # "pretrained" statistics, far from the 0/1 init
        if _is_bn(layer):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0.0, 0.5, shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
    path = tmp_path / "pretrained.weights.h5"
    source.save_weights(path)

    model_cfg = ModelConfig(
        backbone="resnet50", weights=str(path), head="gap", dense_units=[8]
    )
    model, weights_source = build_classifier(model_cfg, {"artist": 3}, image_size=32)
    assert weights_source.startswith("file ")
    backbone = model.get_layer("backbone")
    for w, src in zip(backbone.weights, source.weights, strict=True):
        np.testing.assert_array_equal(w.numpy(), src.numpy(), err_msg=w.path)
    cfg = tiny.train_cfg(epochs=2, unfreeze_epoch=1, unfreeze_from="conv4")
    cfg.train_bn = weights_source.startswith("random")  # as keras_art.train resolves
    assert cfg.train_bn is False
    trainer = Trainer(
        model,
        ("artist",),
        cfg,
        steps_per_epoch=2,
        verbose=0,
        stages=backbone_stages(backbone, "resnet50"),
    )
    unfreeze = StageSchedule.from_train_config(cfg, backbone="resnet50")
    snaps = _Snapshots(backbone)
    head_bn = model.get_layer("head").get_layer("head_dense_0_bn")
    head_mean = head_bn.moving_mean.numpy().copy()
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    ds = tf.data.Dataset.from_tensor_slices(
        (images, {"artist": labels}, {"artist": np.ones(8, "float32")})
    ).batch(4, drop_remainder=True)
    history = trainer.fit(ds, callbacks=[unfreeze, snaps])

    assert history.history["stage"] == [1, 2]
    assert np.isfinite(history.history["loss"]).all()
    start, stage1, stage2 = snaps.initial, *snaps.at_epoch_end
    assert stage1.keys() == start.keys()
    for path_, value in start.items():  # stage 1: the whole backbone is frozen
        np.testing.assert_array_equal(value, stage1[path_], err_msg=path_)
    moved = {p for p in start if not np.array_equal(start[p], stage2[p])}
    bn_paths = {
        w.path for layer in backbone.layers if _is_bn(layer) for w in layer.weights
    }
    assert any(p.endswith("moving_mean") for p in bn_paths)
    assert any(p.endswith("moving_variance") for p in bn_paths)
    assert not moved & bn_paths, sorted(moved & bn_paths)[:5]
    early = {p for p in start if p.startswith(("conv1_", "conv2_", "conv3_"))}
    assert "conv1_conv/kernel" in early
    assert not moved & early, sorted(moved & early)[:5]
    assert {"conv4_block1_1_conv/kernel", "conv5_block3_3_conv/kernel"} <= moved
    # A BN layer that does learn (the head's) moves its statistics in this same run.
    assert not np.array_equal(head_mean, head_bn.moving_mean.numpy())
