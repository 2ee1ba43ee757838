import keras
import numpy as np
import pytest

from keras_art.layers import DirectionalBiGRU
from tests.layers.layer_checks import run_layer_checks


@pytest.mark.parametrize("direction", ["rows", "cols"])
def test_layer_checks(tmp_path, direction):
    kwargs = {"units": 4, "num_layers": 2, "direction": direction, "dropout": 0.1}
    run_layer_checks(
        DirectionalBiGRU,
        kwargs,
        input_shape=lambda h, w: (h, w, 6),
        output_shape=lambda h, w: (h if direction == "rows" else w, 8),
        # per layer: 2 directions x (kernel, recurrent_kernel, bias)
        num_weights=12,
        tmp_path=tmp_path,
    )


def test_defaults_follow_seed_000():
    config = DirectionalBiGRU().get_config()
    assert (config["units"], config["num_layers"], config["direction"]) == (
        256,
        2,
        "rows",
    )
    assert config["dropout"] == 0.0


def test_gru_settings_stay_cudnn_eligible():
    layer = DirectionalBiGRU(units=4, num_layers=2, dropout=0.2)
    layer.build((None, None, None, 3))
    for bigru in layer.bigrus:
        for gru in (bigru.forward_layer, bigru.backward_layer):
            config = gru.get_config()
            assert config["activation"] == "tanh"
            assert config["recurrent_activation"] == "sigmoid"
            assert config["use_bias"] and config["reset_after"]
            assert config["recurrent_dropout"] == 0.0 and config["dropout"] == 0.0
            assert not config["unroll"]


def test_cols_equals_rows_on_the_transposed_map():
    x = np.random.rand(2, 5, 3, 6).astype("float32")
    rows = DirectionalBiGRU(units=4, num_layers=2, direction="rows")
    cols = DirectionalBiGRU(units=4, num_layers=2, direction="cols")
    rows.build(x.shape)
    cols.build(x.shape)
    cols.set_weights(rows.get_weights())
    out_cols = keras.ops.convert_to_numpy(cols(x))
    out_rows_t = keras.ops.convert_to_numpy(rows(np.transpose(x, (0, 2, 1, 3))))
    assert out_cols.shape == (2, 3, 8)
    np.testing.assert_allclose(out_cols, out_rows_t, rtol=1e-5, atol=1e-6)
    # Same weights, different direction: a generic map gives different outputs.
    square = np.random.rand(1, 4, 4, 6).astype("float32")
    assert not np.allclose(rows(square), cols(square))


def test_each_row_is_an_independent_sequence():
    x = np.random.rand(1, 4, 5, 3).astype("float32")
    layer = DirectionalBiGRU(units=4, num_layers=1, direction="rows")
    before = keras.ops.convert_to_numpy(layer(x))
    x2 = x.copy()
    x2[0, 2] += 1.0  # change row 2 only
    after = keras.ops.convert_to_numpy(layer(x2))
    changed = ~np.all(np.isclose(before, after), axis=-1)[0]
    np.testing.assert_array_equal(changed, [False, False, True, False])


def test_mixed_float16_dtype():
    layer = DirectionalBiGRU(units=4, num_layers=1, dtype="mixed_float16")
    out = layer(np.random.rand(1, 3, 3, 2).astype("float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert layer.bigrus[0].forward_layer.dtype_policy.name == "mixed_float16"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"direction": "diagonal"}, "Received: direction=diagonal"),
        ({"units": 0}, "Received: units=0"),
        ({"num_layers": -1}, "Received: num_layers=-1"),
        ({"dropout": 1.5}, "Received: dropout=1.5"),
    ],
)
def test_bad_arguments_quote_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DirectionalBiGRU(**kwargs)
