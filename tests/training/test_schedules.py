import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_art.config import get_preset
from keras_art.training.callbacks import default_callbacks, make_plateau_callback
from keras_art.training.optimizers import GroupAdamW
from keras_art.training.schedules import WarmupCosine, make_schedule
from tests.training import tiny


def _torch_cosine(step, peak, t_max, eta_min):
    return eta_min + (peak - eta_min) * (1 + math.cos(math.pi * step / t_max)) / 2


def test_cosine_matches_pytorch_cosine_annealing():
    cfg = tiny.train_cfg(lr_head=8e-4, cosine_t_max_epochs=15, eta_min=1e-6)
    sched = make_schedule(cfg, steps_per_epoch=10)
    assert sched.decay_steps == 150
    for step in (0, 1, 37, 75, 149, 150):
        expected = _torch_cosine(step, 8e-4, 150, 1e-6)
        assert float(sched(step)) == pytest.approx(expected, rel=1e-5, abs=1e-10)
    assert float(sched(400)) == pytest.approx(1e-6, rel=1e-5)  # stays at the floor


def test_warmup_is_linear_then_cosine():
    sched = WarmupCosine(peak=1.0, decay_steps=14, eta_min=0.0, warmup_steps=4)
    values = [float(sched(s)) for s in range(16)]
    np.testing.assert_allclose(values[:4], [0.25, 0.5, 0.75, 1.0], rtol=1e-6)
    assert values[4] == pytest.approx(1.0)
    assert values[9] == pytest.approx(0.5, abs=1e-6)
    assert values[14] == pytest.approx(0.0, abs=1e-6)


def test_schedule_serializes():
    sched = WarmupCosine(peak=1e-3, decay_steps=100, eta_min=1e-6, warmup_steps=5)
    again = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(sched)
    )
    assert float(again(50)) == pytest.approx(float(sched(50)))


def test_plateau_and_constant():
    cfg = tiny.train_cfg(schedule="plateau", plateau_patience=3, plateau_factor=0.1)
    assert make_schedule(cfg, 10) == cfg.lr_head
    cb = make_plateau_callback(cfg)
    assert cb.monitor == "val_macro_f1" and cb.mode == "max" and cb.patience == 3
    cfg.schedule = "constant"
    assert make_schedule(cfg, 10) == cfg.lr_head
    assert make_plateau_callback(cfg) is None


def test_group_schedules_anneal_to_the_same_floor():
    cfg = tiny.train_cfg(lr_head=8e-4, cosine_t_max_epochs=15, eta_min=1e-6)
    head = make_schedule(cfg, 10)
    backbone = make_schedule(cfg, 10, learning_rate=1.5e-4)
    assert float(backbone(0)) == pytest.approx(1.5e-4)
    assert float(backbone(75)) == pytest.approx(_torch_cosine(75, 1.5e-4, 150, 1e-6))
    assert float(backbone(150)) == pytest.approx(float(head(150)), rel=1e-5)
    assert float(backbone(400)) == pytest.approx(1e-6, rel=1e-5)


class _Trainer:
    def __init__(self, optimizer):
        self.optimizer = optimizer


def test_plateau_reduces_every_group_by_the_same_factor():
    cfg = tiny.train_cfg(
        schedule="plateau", plateau_patience=1, plateau_factor=0.1, eta_min=1e-6
    )
    opt = GroupAdamW(
        {"head": make_schedule(cfg, 10), "backbone": make_schedule(cfg, 10, 1e-3)}
    )
    opt.build({})
    cb = make_plateau_callback(cfg)
    cb.set_trainer(_Trainer(opt))
    for epoch, f1 in enumerate([0.5, 0.4, 0.3, 0.2, 0.1]):
        cb.on_epoch_end(epoch, {"val_macro_f1": f1})
        if epoch == 1:
            lrs = opt.learning_rates()
            assert lrs["head"] == pytest.approx(cfg.lr_head * 0.1)
            assert lrs["backbone"] == pytest.approx(1e-3 * 0.1)
    lrs = opt.learning_rates()  # the head stops at min_lr; ratios stay fixed
    assert lrs["head"] == pytest.approx(1e-6)
    assert lrs["backbone"] / lrs["head"] == pytest.approx(1e-3 / cfg.lr_head)
    assert cb.get_state()["best"] == 0.5


def test_seed002_plateau_drops_every_group_lr_before_early_stopping(tmp_path):
    """Seed 002 through `Trainer.fit` with `default_callbacks`: val macro-F1 cannot
    change (identical val images, one of each class: any single predicted class
    scores 1/6), so the LR of every group drops x0.1 after epochs 5 and 9 (4 epochs
    without a gain each) and early stopping ends the run after epoch 11."""
    cfg = get_preset("seed002").train
    assert (cfg.schedule, cfg.monitor) == ("plateau", "val_macro_f1")
    assert (cfg.plateau_patience, cfg.plateau_factor) == (4, 0.1)
    assert cfg.early_stopping_patience == 10
    cfg.epochs, cfg.unfreeze_epoch = 14, 1  # stage 2 (every group learning) early
    model = tiny.tiny_model()
    tiny.set_trainable(model.get_layer("backbone"), None)
    trainer = tiny.trainer(model, cfg, steps_per_epoch=6)
    cbs = default_callbacks(cfg, tmp_path, tensorboard=False, backbone=tiny.BACKBONE)
    (early,) = [cb for cb in cbs if isinstance(cb, keras.callbacks.EarlyStopping)]
    labels = np.arange(6) % 3
    val = tf.data.Dataset.from_tensor_slices(
        (
            np.zeros((6, tiny.SIZE, tiny.SIZE, 3), "float32"),
            {"artist": np.eye(3, dtype="float32")[labels]},
            {"artist": np.ones(6, "float32")},
        )
    ).batch(4)
    history = trainer.fit(tiny.dataset(), val, callbacks=cbs).history

    assert history["val_macro_f1"] == pytest.approx([1 / 6] * 11)
    assert early.stopped_epoch == 10  # the 11th epoch, 3 before the last
    assert history["stage"] == [1] + [2] * 10
    # The LR logged for an epoch is the one it trained with.
    factors = [1.0] * 5 + [0.1] * 4 + [0.01] * 2
    peaks = {"head": cfg.lr_head, "backbone": cfg.lr_backbone}
    assert set(trainer.group_learning_rates()) == set(peaks)
    for group, peak in peaks.items():
        expected = [peak * f for f in factors]
        assert history[f"lr_{group}"] == pytest.approx(expected, rel=1e-5), group
    assert history["learning_rate"] == history["lr_head"]
