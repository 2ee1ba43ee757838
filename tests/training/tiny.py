"""Tiny stand-ins following the model and dataset contracts.

The backbone is a miniature "resnet50" for `keras_art.registry`: its first layer is
``input_normalization`` and its layers carry ResNet50's stage prefixes, so the real
`keras_art.models.backbones.backbone_stages` / `set_backbone_trainable` freeze it
(a real ResNet50 would make every engine and resume test minutes slower).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_art.config import TrainConfig
from keras_art.layers import ImageNormalization
from keras_art.models.backbones import backbone_stages, set_backbone_trainable
from keras_art.registry import NORMALIZATION_LAYER

SIZE = 16
CLASSES = {"artist": 3, "style": 4}
BACKBONE = "resnet50"  # the registry entry whose stage names tiny_backbone uses


def tiny_backbone() -> keras.Model:
    """ResNet-style names: conv1_conv/conv1_bn, conv2..conv5 block outputs."""
    inp = keras.Input((None, None, 3))
    # Identity normalisation: the test images are already centred.
    x = ImageNormalization(name=NORMALIZATION_LAYER)(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1_pool")(x)
    for stage in range(2, 6):
        x = keras.layers.Conv2D(
            4, 3, padding="same", name=f"conv{stage}_block1_1_conv"
        )(x)
        x = keras.layers.BatchNormalization(name=f"conv{stage}_block1_1_bn")(x)
        x = keras.layers.ReLU(name=f"conv{stage}_block1_out")(x)
    return keras.Model(inp, x, name="backbone")


def tiny_model(
    tasks=("artist",), dropout: float = 0.0, classes=None, size=SIZE, dense=()
) -> keras.Model:
    """``classes``: task -> class count (default `CLASSES`); ``size``: the input
    side (None: any); ``dense``: units of hidden Dense layers in the head."""
    classes = classes or CLASSES
    backbone = tiny_backbone()
    feat = keras.Input((None, None, 4))
    g = keras.layers.GlobalAveragePooling2D(name="head_gap")(feat)
    for i, units in enumerate(dense):
        g = keras.layers.Dense(units, activation="relu", name=f"head_dense_{i}")(g)
    if dropout:
        g = keras.layers.Dropout(dropout, name="head_dropout")(g)
    outs = {
        t: keras.layers.Dense(classes[t], activation="softmax", name=f"head_{t}")(g)
        for t in tasks
    }
    head = keras.Model(feat, outs, name="head")
    image = keras.Input((size, size, 3), name="image")
    o = head(backbone(image))
    o = {t: keras.layers.Identity(dtype="float32", name=t)(o[t]) for t in tasks}
    return keras.Model(image, o, name="classifier")


def set_trainable(backbone, from_stage, *, train_bn=False):
    """The real `set_backbone_trainable` for the tiny backbone."""
    set_backbone_trainable(backbone, BACKBONE, from_stage, train_bn=train_bn)


def dataset(
    n=24, batch=4, tasks=("artist",), seed=0, drop_remainder=True, missing=False
):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, SIZE, SIZE, 3)).astype("float32")
    targets, weights = {}, {}
    for t in tasks:
        labels = rng.integers(0, CLASSES[t], n)
        images[:, :4, :4, labels % 3] += 2.0  # something learnable
        targets[t] = np.eye(CLASSES[t], dtype="float32")[labels]
        w = np.ones(n, "float32")
        if missing:
            w[::3] = 0.0
        weights[t] = w
    ds = tf.data.Dataset.from_tensor_slices((images, targets, weights))
    return ds.batch(batch, drop_remainder=drop_remainder)


def train_cfg(**overrides) -> TrainConfig:
    cfg = TrainConfig(
        epochs=3,
        unfreeze_epoch=1,
        unfreeze_from="conv3",
        lr_head=1e-2,
        lr_backbone=1e-3,
        weight_decay=0.01,
        cosine_t_max_epochs=3,
        eta_min=1e-5,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def stages(backbone) -> dict[str, list]:
    return backbone_stages(backbone, BACKBONE)


def trainer(model, cfg, *, steps_per_epoch: int, tasks=("artist",)):
    """A silent `Trainer` over ``model`` (built by `tiny_model`)."""
    from keras_art.training.trainer import Trainer

    return Trainer(
        model,
        tasks,
        cfg,
        steps_per_epoch=steps_per_epoch,
        verbose=0,
        stages=stages(model.get_layer("backbone")),
    )


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports on 127.0.0.1 that were free a moment ago (for TF_CONFIG)."""
    from keras_art.benchmarks.service_cluster import free_ports as find

    return find(n)
