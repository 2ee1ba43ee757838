import keras
import numpy as np
import pytest

from keras_art.config import ModelConfig
from keras_art.errors import UserError
from keras_art.models.heads import build_head
from keras_art.registry import HEADS

SMALL = {"proj_dim": 16, "gru_units": 8, "dense_units": [16, 8]}


def _embedding_model(head):
    return keras.Model(head.input, head.get_layer("embedding").output)


def test_cnn_rnn_default_widths_match_seed_000():
    # 64 px through ResNet50 -> a 2x2x2048 map.
    head = build_head(ModelConfig(), 2048, {"style": 27})
    features = np.random.rand(2, 2, 2, 2048).astype("float32")
    embedding = _embedding_model(head)(features)
    assert tuple(embedding.shape) == (2, 3072)  # 2048 + 4 * 256
    assert head.get_layer("head_proj").filters == 320
    rows = head.get_layer("head_rows_bigru")
    assert (rows.units, rows.num_layers, rows.direction) == (256, 2, "rows")
    assert tuple(head.get_layer("head_rows_attention").output.shape) == (None, 512)
    out = head(features)
    assert tuple(out["style"].shape) == (2, 27)
    np.testing.assert_allclose(np.sum(out["style"], axis=-1), 1.0, rtol=1e-5)


def test_head_structure_and_names():
    cfg = ModelConfig(dropout=0.4, **SMALL)
    head = build_head(cfg, 32, {"artist": 5, "genre": 3})
    assert head.name == "head"
    assert tuple(head.input.shape) == (None, None, None, 32)
    for layer in head.layers:
        assert layer.name.startswith("head_") or layer.name in (
            "embedding",
            "artist",
            "genre",
        ), layer.name
    assert head.get_layer("head_dropout").rate == 0.4
    rows = {v.path for v in head.get_layer("head_rows_bigru").weights}
    cols = {v.path for v in head.get_layer("head_cols_bigru").weights}
    assert rows and not rows & cols  # separate weights per direction


@pytest.mark.parametrize("head_name", list(HEADS))
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (7, 7), (12, 12)])
def test_any_spatial_size_and_multi_task_widths(head_name, hw):
    cfg = ModelConfig(head=head_name, **SMALL)
    head = build_head(cfg, 32, {"artist": 5, "genre": 3, "style": 4})
    out = head(np.random.rand(2, *hw, 32).astype("float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "artist": (2, 5),
        "genre": (2, 3),
        "style": (2, 4),
    }


@pytest.mark.parametrize(
    "head_name, dense_units, width",
    [
        ("cnn_rnn", [16, 8], 32 + 4 * 8),
        ("gap", [16, 8], 8),
        ("gap", [], 32),
        ("spp", [16, 8], 8),
        ("spp", [], 14 * 32),
    ],
)
def test_embedding_widths(head_name, dense_units, width):
    cfg = ModelConfig(head=head_name, proj_dim=16, gru_units=8, dense_units=dense_units)
    head = build_head(cfg, 32, {"artist": 5})
    assert tuple(head.get_layer("embedding").output.shape) == (None, width)


def test_dense_blocks_and_spp_follow_the_config():
    cfg = ModelConfig(
        head="spp",
        dense_units=[16, 8],
        dense_dropout=0.25,
        spp_levels=[1, 2],
        spp_pooling="avg",
    )
    head = build_head(cfg, 4, {"artist": 3})
    spp = head.get_layer("head_spp")
    assert (spp.levels, spp.pooling) == ([1, 2], "avg")
    assert head.get_layer("head_dense_0").units == 16
    assert head.get_layer("head_dense_1_dropout").rate == 0.25
    assert isinstance(
        head.get_layer("head_dense_1_bn"), keras.layers.BatchNormalization
    )
    assert tuple(head.get_layer("embedding").output.shape) == (None, 8)


def test_dense_blocks_without_batchnorm_and_a_plain_linear_head():
    # Seed 003: Linear(256)-ReLU-Dropout-Linear; seeds 001/004: a linear classifier.
    cfg = ModelConfig(head="gap", dense_units=[16], dense_batchnorm=False)
    head = build_head(cfg, 32, {"artist": 4})
    assert not [
        layer
        for layer in head.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    linear = build_head(ModelConfig(head="gap", dense_units=[]), 32, {"artist": 4})
    assert [type(layer).__name__ for layer in linear.layers if layer.weights] == [
        "Dense"
    ]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("head_name", list(HEADS))
def test_mixed_precision_outputs_are_float32(policy, head_name):
    keras.config.set_dtype_policy(policy)
    try:
        head = build_head(ModelConfig(head=head_name, **SMALL), 32, {"artist": 5})
        assert (
            head.get_layer(
                "head_dense_0" if head_name != "cnn_rnn" else "head_proj"
            ).compute_dtype
            != "float32"
        )
        out = head(np.random.rand(2, 3, 3, 32).astype("float32"))["artist"]
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))
    finally:
        keras.config.set_dtype_policy("float32")


def test_bad_head_and_classes():
    with pytest.raises(UserError, match="cnn_rnn, gap, spp"):
        build_head(ModelConfig(head="vit"), 32, {"artist": 5})
    with pytest.raises(UserError, match="at least one task"):
        build_head(ModelConfig(), 32, {})
    with pytest.raises(UserError, match="Received: 0"):
        build_head(ModelConfig(), 32, {"artist": 0})
