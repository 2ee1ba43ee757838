"""Classification heads: feature map in, one float32 softmax per task out.

Every head is a functional `keras.Model` named ``"head"`` whose input is a
``(None, None, feature_channels)`` feature map (any spatial size). Its layers are
named ``head_*``, except ``"embedding"`` (the pre-classifier vector, used by the
label audit) and the per-task softmax layers, which are named after their task so
that the model's outputs are keyed by task.

- ``cnn_rnn`` (seed 000): GAP(F) ‖ attention(rows BiGRU(proj(F))) ‖
  attention(cols BiGRU(proj(F))) -> ``feature_channels + 4 * gru_units``
  (3072 for ResNet50 with the defaults) -> dropout -> Dense per task.
- ``gap`` / ``spp`` (seed 002): GAP, or SPP over ``spp_levels`` ->
  ``[Dense(relu) -> Dropout -> BatchNorm]`` per ``dense_units`` (BatchNorm only with
  ``dense_batchnorm``; no units = a linear classifier on the pooled map) -> Dense
  per task.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_art.config import ModelConfig
from keras_art.errors import UserError
from keras_art.layers import AttentionPooling, DirectionalBiGRU, SpatialPyramidPooling2D

# Hidden width of the attention scoring MLP (per seed 000's "attention collapse").
ATTENTION_HIDDEN = 128


def build_head(
    cfg: ModelConfig, feature_channels: int, num_classes: dict[str, int]
) -> keras.Model:
    """Build the head ``cfg.head`` for a ``feature_channels``-wide feature map.

    ``num_classes`` maps each task to its number of classes; the model returns a
    dict ``{task: (batch, classes) float32 probabilities}``.
    """
    return build_head_for_shape(cfg, feature_channels, num_classes)


def build_head_for_shape(
    cfg: ModelConfig,
    feature_channels: int,
    num_classes: dict[str, int],
    spatial_shape: tuple[int | None, int | None] = (None, None),
) -> keras.Model:
    """`build_head` with a fixed ``(H, W)`` input (for FLOP counting)."""
    if cfg.head not in HEAD_BUILDERS:
        raise UserError(
            f"Unknown head {cfg.head!r}. Choose one of: {', '.join(HEAD_BUILDERS)}."
        )
    _check_num_classes(num_classes)
    features = keras.Input(
        shape=(*spatial_shape, feature_channels), name="head_features"
    )
    embedding = HEAD_BUILDERS[cfg.head](cfg, features)
    x = embedding
    if cfg.head == "cnn_rnn":
        x = keras.layers.Dropout(cfg.dropout, name="head_dropout")(x)
    outputs = {}
    for task, classes in num_classes.items():
        logits = keras.layers.Dense(classes, name=f"head_{task}_logits")(x)
        outputs[task] = keras.layers.Activation("softmax", dtype="float32", name=task)(
            logits
        )
    return keras.Model(features, outputs, name="head")


def _cnn_rnn(cfg: ModelConfig, features):
    pooled = keras.layers.GlobalAveragePooling2D(name="head_gap")(features)
    x = keras.layers.Conv2D(cfg.proj_dim, 1, use_bias=False, name="head_proj")(features)
    x = keras.layers.BatchNormalization(name="head_proj_bn")(x)
    x = keras.layers.Activation("relu", name="head_proj_relu")(x)
    branches = [pooled]
    for direction in ("rows", "cols"):
        seq = DirectionalBiGRU(
            units=cfg.gru_units,
            num_layers=cfg.gru_layers,
            direction=direction,
            name=f"head_{direction}_bigru",
        )(x)
        branches.append(
            AttentionPooling(
                hidden_units=ATTENTION_HIDDEN, name=f"head_{direction}_attention"
            )(seq)
        )
    return keras.layers.Concatenate(name="embedding")(branches)


def _gap(cfg: ModelConfig, features):
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(features)
    return _dense_blocks(cfg, x)


def _spp(cfg: ModelConfig, features):
    x = SpatialPyramidPooling2D(
        levels=list(cfg.spp_levels), pooling=cfg.spp_pooling, name="head_spp"
    )(features)
    return _dense_blocks(cfg, x)


def _dense_blocks(cfg: ModelConfig, x):
    for index, units in enumerate(cfg.dense_units):
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense_{index}")(x)
        x = keras.layers.Dropout(cfg.dense_dropout, name=f"head_dense_{index}_dropout")(
            x
        )
        if cfg.dense_batchnorm:
            x = keras.layers.BatchNormalization(name=f"head_dense_{index}_bn")(x)
    return keras.layers.Identity(name="embedding")(x)


def _check_num_classes(num_classes: dict[str, int]) -> None:
    if not num_classes:
        raise UserError("num_classes is empty: the model needs at least one task.")
    for task, classes in num_classes.items():
        if not isinstance(classes, int) or classes < 1:
            raise UserError(
                f"Task {task!r} needs a positive number of classes. Received: "
                f"{classes!r}"
            )


# One builder per name in `keras_art.registry.HEADS` (a test checks they agree).
HEAD_BUILDERS: dict[str, Callable] = {"cnn_rnn": _cnn_rnn, "gap": _gap, "spp": _spp}
