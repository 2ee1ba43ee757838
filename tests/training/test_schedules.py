import math

import keras
import numpy as np
import pytest

from keras_art.stage_plan import resolve_stages
from keras_art.training.callbacks import GroupReduceLROnPlateau
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
    stage = resolve_stages(cfg)[0]
    assert (stage.plateau_patience, stage.plateau_factor) == (3, 0.1)
    cfg.schedule = "constant"
    assert make_schedule(cfg, 10) == cfg.lr_head
    assert resolve_stages(cfg)[0].plateau_patience == 0  # no plateau


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
    cb = GroupReduceLROnPlateau(factor=0.1, patience=1, min_lr=cfg.eta_min)
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
