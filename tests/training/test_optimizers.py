import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_art.models.backbones import set_backbone_trainable
from keras_art.training.optimizers import (
    GroupAdamW,
    group_multipliers,
    make_optimizer,
    variable_groups,
)
from keras_art.training.schedules import make_schedule
from tests.training import tiny


def _two_vars():
    head = keras.Variable(np.ones((3,), "float32"), name="h")
    bb = keras.Variable(np.ones((3,), "float32"), name="b")
    return head, bb


def _group_adamw(head, bb, lrs, **kwargs):
    opt = GroupAdamW(lrs, **kwargs)
    opt.build({"head": [head], "backbone": [bb]})
    return opt


def test_group_lr_ratio_applies_to_updates():
    head, bb = _two_vars()
    opt = _group_adamw(head, bb, {"head": 8e-4, "backbone": 1.5e-4})
    g = tf.constant([0.3, -2.0, 5.0])
    opt.apply([g, g], [head, bb])
    d_head = np.abs(1 - head.numpy())
    d_bb = np.abs(1 - bb.numpy())
    np.testing.assert_allclose(d_head, 8e-4, rtol=1e-3)  # Adam's first step = lr
    np.testing.assert_allclose(d_bb / d_head, 1.5e-4 / 8e-4, rtol=1e-3)


def test_weight_decay_scales_with_group_lr():
    head, bb = _two_vars()
    opt = _group_adamw(head, bb, {"head": 0.1, "backbone": 0.01}, weight_decay=0.5)
    zero = tf.zeros((3,))
    opt.apply([zero, zero], [head, bb])  # zero grads: only the decay moves weights
    np.testing.assert_allclose(1 - head.numpy(), 0.1 * 0.5, rtol=1e-5)
    np.testing.assert_allclose(1 - bb.numpy(), 0.01 * 0.5, rtol=1e-5)


def test_bias_correction_counts_each_groups_own_steps():
    head, bb = _two_vars()
    opt = _group_adamw(head, bb, {"head": 0.01, "backbone": 0.01})
    g = tf.ones((3,))
    for _ in range(5):
        opt.apply([g], [head])  # bb frozen for 5 steps
    before = bb.numpy().copy()
    opt.apply([g, g], [head, bb])
    # bb's first update is a first Adam step (= lr), not a damped/inflated one.
    np.testing.assert_allclose(before - bb.numpy(), 0.01, rtol=1e-3)
    assert int(opt.iterations.numpy()) == 6
    assert int(opt.optimizers["backbone"].iterations.numpy()) == 1


def test_global_clipnorm_clips_all_groups_together():
    # Adam's first step is lr * sign(g) whatever the gradient's size, so the clip
    # shows from the second step on (and in the first moment right away).
    lrs = {"head": 0.1, "backbone": 0.1}
    steps = [
        [tf.constant([30.0, -40.0, 0.0]), tf.constant([0.0, 0.0, 120.0])],
        [tf.constant([0.3, 0.1, 0.0]), tf.constant([0.0, 0.2, -0.1])],
    ]
    assert float(tf.linalg.global_norm(steps[0])) == pytest.approx(130.0)  # >> 1

    def run(clipnorm, pre_clip):
        head, bb = _two_vars()
        opt = _group_adamw(head, bb, lrs, global_clipnorm=clipnorm)
        moments = []
        for grads in steps:
            if pre_clip:
                grads, _ = tf.clip_by_global_norm(grads, 1.0)
            opt.apply(grads, [head, bb])
            (m,) = [
                v for v in opt.optimizers["backbone"].variables if "momentum" in v.path
            ]
            moments.append(m.numpy().copy())
        return np.concatenate([head.numpy(), bb.numpy()]), moments

    clipped, moments = run(1.0, pre_clip=False)
    # The norm is over both groups: the backbone's 120 becomes 120 / 130.
    np.testing.assert_allclose(moments[0], 0.1 * np.array([0, 0, 120 / 130]), rtol=1e-5)
    np.testing.assert_allclose(clipped, run(None, pre_clip=True)[0], rtol=1e-6)
    assert not np.allclose(clipped, run(None, pre_clip=False)[0], rtol=1e-4)


def test_schedules_share_one_step_and_one_floor():
    cfg = tiny.train_cfg(lr_head=1e-2, lr_backbone=1e-3, eta_min=1e-5)
    head, bb = _two_vars()
    opt = GroupAdamW(
        {
            "head": make_schedule(cfg, 2, cfg.lr_head),
            "backbone": make_schedule(cfg, 2, cfg.lr_backbone),
        }
    )
    opt.build({"head": [head], "backbone": [bb]})
    g = tf.ones((3,))
    for _ in range(3):
        opt.apply([g], [head])  # the backbone waits, its schedule runs on
    lrs = opt.learning_rates()
    assert lrs["backbone"] / lrs["head"] == pytest.approx(
        (make_schedule(cfg, 2, 1e-3)(3) / make_schedule(cfg, 2, 1e-2)(3)).numpy()
    )
    for _ in range(10):  # past T_max: both at the same absolute floor
        opt.apply([g, g], [head, bb])
    lrs = opt.learning_rates()
    assert lrs["head"] == pytest.approx(1e-5, rel=1e-4)
    assert lrs["backbone"] == pytest.approx(1e-5, rel=1e-4)


def test_scale_learning_rates_keeps_ratios():
    head, bb = _two_vars()
    opt = _group_adamw(head, bb, {"head": 8e-4, "backbone": 1.6e-4})
    opt.scale_learning_rates(0.1)
    lrs = opt.learning_rates()
    assert lrs["head"] == pytest.approx(8e-5)
    assert lrs["backbone"] == pytest.approx(1.6e-5)


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
    assert not backbone.trainable  # reading the groups left the flags alone


def _nested_backbone():
    """A stage layer that is itself a model holding a BatchNormalization."""
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv1_conv")(inp)
    block = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(2, 1, name="inner_conv"),
            keras.layers.BatchNormalization(name="inner_bn"),
        ],
        name="conv5_block1_nested",
    )
    return keras.Model(inp, block(x), name="backbone"), block


def test_nested_batchnorm_found_and_kept_out_unless_train_bn():
    backbone, block = _nested_backbone()
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Dense(2, name="head_dense")(
        keras.layers.GlobalAveragePooling2D()(backbone(inp))
    )
    model = keras.Model(inp, out)
    set_backbone_trainable(backbone, "resnet50", None)
    stages = tiny.stages(backbone)
    inner_bn = block.get_layer("inner_bn")
    kernel = block.get_layer("inner_conv").kernel
    for train_bn in (False, True):
        cfg = tiny.train_cfg(unfreeze_from="conv5", train_bn=train_bn)
        _, candidates = variable_groups(model, cfg, stages=stages)
        ids = {id(v) for v in candidates}
        assert id(kernel) in ids
        assert (id(inner_bn.gamma) in ids) is train_bn
        assert id(inner_bn.moving_mean) not in ids
        # ... the same set the real unfreeze makes trainable
        set_backbone_trainable(backbone, "resnet50", "conv5", train_bn=train_bn)
        assert ids == {id(v) for v in model.trainable_variables}
        set_backbone_trainable(backbone, "resnet50", None)
        assert not inner_bn.trainable and not block.trainable


def test_float16_loss_scaling_steps_with_finite_loss():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny.tiny_model()
    finally:
        keras.config.set_dtype_policy("float32")
    assert (
        model.get_layer("backbone").get_layer("conv1_conv").compute_dtype == "float16"
    )
    cfg = tiny.train_cfg(mixed_precision="float16")

    trainer = tiny.trainer(model, cfg, steps_per_epoch=2)
    assert trainer.loss_scale is not None
    scale = float(trainer.loss_scale.scale.numpy())
    tiny.set_trainable(model.get_layer("backbone"), "conv3")
    before = model.get_layer("head").get_weights()[0].copy()
    logs = trainer.train_epoch(tiny.dataset(n=8, batch=4))
    assert np.isfinite(logs["loss"])
    assert not np.allclose(before, model.get_layer("head").get_weights()[0])
    assert model.output["artist"].dtype == "float32"
    assert float(trainer.loss_scale.scale.numpy()) == scale  # no overflow here
    assert int(trainer.optimizer.iterations.numpy()) == 2


def test_float16_non_finite_gradients_skip_the_step_and_halve_the_scale():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny.tiny_model()
    finally:
        keras.config.set_dtype_policy("float32")
    cfg = tiny.train_cfg(mixed_precision="float16")

    trainer = tiny.trainer(model, cfg, steps_per_epoch=1)
    tiny.set_trainable(model.get_layer("backbone"), "conv3")
    trainer.loss_scale.scale.assign(1e30)  # float16 gradients overflow
    weights = [w.copy() for w in model.get_weights()]
    trainer.train_epoch(tiny.dataset(n=4, batch=4))
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(trainer.optimizer.iterations.numpy()) == 0
    assert int(trainer.optimizer.optimizers["head"].iterations.numpy()) == 0
    assert float(trainer.loss_scale.scale.numpy()) == pytest.approx(5e29, rel=1e-6)


def test_make_optimizer_builds_over_candidates():
    model = tiny.tiny_model()
    cfg = tiny.train_cfg(lr_groups={"conv5": 1e-4})
    opt, candidates = make_optimizer(
        model,
        cfg,
        lambda lr: lr,
        stages=tiny.stages(model.get_layer("backbone")),
    )
    assert opt.built
    assert all(opt.covers(v) for v in candidates)
    assert {opt.group_of(v) for v in candidates} == {"head", "backbone", "conv5"}
    assert opt.group_of(model.get_layer("head").get_layer("head_artist").kernel) == (
        "head"
    )
    assert opt.learning_rates() == pytest.approx(
        {"head": cfg.lr_head, "backbone": cfg.lr_backbone, "conv5": 1e-4}
    )
