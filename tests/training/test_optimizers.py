import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_art.training.optimizers import (
    GroupAdamW,
    group_multipliers,
    make_optimizer,
    variable_groups,
)
from tests.training import tiny


def _two_vars():
    head = keras.Variable(np.ones((3,), "float32"), name="h")
    bb = keras.Variable(np.ones((3,), "float32"), name="b")
    return head, bb


def test_group_lr_ratio_applies_to_updates():
    head, bb = _two_vars()
    opt = GroupAdamW(
        learning_rate=8e-4,
        weight_decay=None,
        group_multipliers={"head": 1.0, "backbone": 1.5e-4 / 8e-4},
        variable_groups={bb.path: "backbone"},
    )
    opt.build([head, bb])
    g = tf.constant([0.3, -2.0, 5.0])
    opt.apply([g, g], [head, bb])
    d_head = np.abs(1 - head.numpy())
    d_bb = np.abs(1 - bb.numpy())
    np.testing.assert_allclose(d_head, 8e-4, rtol=1e-3)  # Adam's first step = lr
    np.testing.assert_allclose(d_bb / d_head, 1.5e-4 / 8e-4, rtol=1e-3)


def test_weight_decay_scales_with_group_lr():
    head, bb = _two_vars()
    opt = GroupAdamW(
        learning_rate=0.1,
        weight_decay=0.5,
        group_multipliers={"backbone": 0.1},
        variable_groups={bb.path: "backbone"},
    )
    opt.build([head, bb])
    zero = tf.zeros((3,))
    opt.apply([zero, zero], [head, bb])  # zero grads: only the decay moves weights
    np.testing.assert_allclose(1 - head.numpy(), 0.1 * 0.5, rtol=1e-5)
    np.testing.assert_allclose(1 - bb.numpy(), 0.01 * 0.5, rtol=1e-5)


def test_bias_correction_counts_each_variables_own_steps():
    head, bb = _two_vars()
    opt = GroupAdamW(learning_rate=0.01, weight_decay=None)
    opt.build([head, bb])
    g = tf.ones((3,))
    for _ in range(5):
        opt.apply([g], [head])  # bb frozen for 5 steps
    before = bb.numpy().copy()
    opt.apply([g, g], [head, bb])
    # bb's first update is a first Adam step (= lr), not a damped/inflated one.
    np.testing.assert_allclose(before - bb.numpy(), 0.01, rtol=1e-3)


def test_global_clipnorm_clips_total_norm():
    head, bb = _two_vars()
    opt = GroupAdamW(learning_rate=1.0, weight_decay=None, global_clipnorm=1.0)
    assert opt._clip_gradients([tf.ones(3) * 10])[0].numpy()[0] == 10  # not pre-clip
    cfg = opt.get_config()
    assert cfg["global_clipnorm"] == 1.0
    again = GroupAdamW.from_config(cfg)
    assert again.reduced_global_clipnorm == 1.0


def test_serialization_round_trip():
    opt = GroupAdamW(
        learning_rate=1e-3,
        group_multipliers={"head": 1.0, "backbone": 0.2, "conv2": 0.01},
        variable_groups={"conv2_block1_1_conv/kernel": "conv2"},
    )
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, GroupAdamW)
    assert again.group_multipliers == opt.group_multipliers
    assert again.variable_groups == opt.variable_groups


def test_variable_groups_cover_unfreezable_stages_and_skip_batchnorm():
    model = tiny.tiny_model()
    backbone = model.get_layer("backbone")
    tiny.set_trainable(backbone, None)
    cfg = tiny.train_cfg(unfreeze_from="conv3", lr_groups={"conv4": 1e-5})
    groups, candidates = variable_groups(model, cfg, stages=tiny.stages(backbone))
    paths = {v.path for v in candidates}
    assert "conv3_block1_1_conv/kernel" in paths
    assert "conv5_block1_1_conv/kernel" in paths
    assert not any(p.startswith(("conv1_", "conv2_")) for p in paths)
    assert not any("_bn/" in p for p in paths)
    assert "head_artist/kernel" in paths
    assert groups["conv4_block1_1_conv/kernel"] == "conv4"
    assert groups["conv3_block1_1_conv/kernel"] == "backbone"
    mult = group_multipliers(cfg)
    assert mult["conv4"] == pytest.approx(1e-5 / cfg.lr_head)


def test_loss_scale_optimizer_float16_steps_with_finite_loss():
    keras.config.set_dtype_policy("mixed_float16")
    model = tiny.tiny_model()
    assert (
        model.get_layer("backbone").get_layer("conv1_conv").compute_dtype == "float16"
    )
    cfg = tiny.train_cfg(mixed_precision="float16")
    from keras_art.training.trainer import Trainer

    trainer = Trainer(
        model,
        ("artist",),
        cfg,
        steps_per_epoch=2,
        verbose=0,
        stages=tiny.stages(model.get_layer("backbone")),
    )
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    tiny.set_trainable(model.get_layer("backbone"), "conv3")
    before = model.get_layer("head").get_weights()[0].copy()
    logs = trainer.train_epoch(tiny.dataset(n=8, batch=4))
    assert np.isfinite(logs["loss"])
    assert not np.allclose(before, model.get_layer("head").get_weights()[0])
    assert model.output["artist"].dtype == "float32"


def test_make_optimizer_builds_over_candidates():
    model = tiny.tiny_model()
    cfg = tiny.train_cfg()
    opt, candidates = make_optimizer(
        model, cfg, 1e-3, stages=tiny.stages(model.get_layer("backbone"))
    )
    assert opt.built
    assert len(opt._trainable_variables) == len(candidates)
