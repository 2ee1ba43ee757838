"""BatchNorm learns after the unfreeze only when asked (random-init backbones)."""

import keras

from keras_art.config import TrainConfig
from keras_art.models.backbones import (
    backbone_stages,
    build_backbone,
    set_backbone_trainable,
)
from keras_art.training.optimizers import variable_groups


def _bn_by_stage(backbone):
    return {
        stage: [
            layer
            for layer in layers
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        for stage, layers in backbone_stages(backbone, "resnet50").items()
    }


def test_train_bn_opens_only_the_unfrozen_stages_batchnorm():
    backbone, _ = build_backbone("resnet50", "none")
    set_backbone_trainable(backbone, "resnet50", "conv4", train_bn=True)
    bn = _bn_by_stage(backbone)
    assert all(layer.trainable for s in ("conv4", "conv5") for layer in bn[s])
    assert not any(
        layer.trainable for s in ("conv1", "conv2", "conv3") for layer in bn[s]
    )

    # The default keeps every BN frozen.
    set_backbone_trainable(backbone, "resnet50", "conv4")
    assert not any(layer.trainable for layers in bn.values() for layer in layers)


def test_optimizer_covers_batchnorm_exactly_when_train_bn():
    backbone, _ = build_backbone("resnet50", "none")
    inp = keras.Input((32, 32, 3))
    head = keras.layers.Dense(3, name="head_dense")
    model = keras.Model(inp, head(keras.layers.GlobalAveragePooling2D()(backbone(inp))))
    bn_gamma = backbone.get_layer("conv5_block3_3_bn").gamma

    stages = backbone_stages(backbone, "resnet50")
    cfg = TrainConfig(unfreeze_from="conv5")
    _, candidates = variable_groups(model, cfg, stages=stages)
    assert all(v is not bn_gamma for v in candidates)
    cfg.train_bn = True
    _, candidates = variable_groups(model, cfg, stages=stages)
    assert any(v is bn_gamma for v in candidates)
    # ... and what the optimizer covers is what the unfreeze makes trainable
    set_backbone_trainable(backbone, "resnet50", "conv5", train_bn=True)
    trainable = {id(v) for v in model.trainable_variables}
    assert trainable == {id(v) for v in candidates}
