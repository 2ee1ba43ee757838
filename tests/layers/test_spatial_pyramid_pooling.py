import keras
import numpy as np
import pytest

from keras_art.layers import SpatialPyramidPooling2D
from tests.layers.layer_checks import run_layer_checks


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_layer_checks(tmp_path, pooling):
    run_layer_checks(
        SpatialPyramidPooling2D,
        {"levels": [1, 2, 3], "pooling": pooling},
        input_shape=lambda h, w: (h, w, 4),
        output_shape=lambda h, w: (14 * 4,),
        num_weights=0,
        sizes=((7, 7), (12, 12), (5, 9), (2, 2), (1, 3)),
        tmp_path=tmp_path,
    )


def _reference(x, levels, pooling):
    """Adaptive-pooling bins written out with plain loops."""
    reduce = np.max if pooling == "max" else np.mean
    out = []
    _, h, w, _ = x.shape
    for n in levels:
        for i in range(n):
            for j in range(n):
                h0, h1 = (i * h) // n, -(-(i + 1) * h // n)
                w0, w1 = (j * w) // n, -(-(j + 1) * w // n)
                out.append(reduce(x[:, h0:h1, w0:w1, :], axis=(1, 2)))
    return np.concatenate(out, axis=-1)


def test_map_smaller_than_the_finest_level_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]], "float32").reshape(1, 2, 2, 1)
    level3_rows = [(0, 1), (0, 2), (1, 2)]  # ceil/floor bins on a 2-long axis
    assert [((i * 2) // 3, -(-(i + 1) * 2 // 3)) for i in range(3)] == level3_rows
    max_out = SpatialPyramidPooling2D(levels=(1, 2, 3), pooling="max")(x)
    np.testing.assert_array_equal(
        max_out[0], [4, 1, 2, 3, 4, 1, 2, 2, 3, 4, 4, 3, 4, 4]
    )
    avg_out = SpatialPyramidPooling2D(levels=(1, 2, 3), pooling="avg")(x)
    np.testing.assert_allclose(
        avg_out[0], [2.5, 1, 2, 3, 4, 1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]
    )


def test_level_three_on_a_7x7_map_by_hand():
    x = np.arange(49, dtype="float32").reshape(1, 7, 7, 1)
    out = SpatialPyramidPooling2D(levels=(3,), pooling="max")(x)
    # bins [0,3) [2,5) [4,7): bottom-right corner of each bin
    expected = [r * 7 + c for r in (2, 4, 6) for c in (2, 4, 6)]
    np.testing.assert_array_equal(out[0], expected)
    out = SpatialPyramidPooling2D(levels=(3,), pooling="avg")(x)
    expected = [r * 7 + c for r in (1, 3, 5) for c in (1, 3, 5)]
    np.testing.assert_allclose(out[0], expected)


@pytest.mark.parametrize("pooling", ["max", "avg"])
@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (7, 7), (12, 12), (5, 9), (9, 4)])
def test_matches_reference(pooling, hw):
    x = np.random.rand(2, *hw, 3).astype("float32")
    levels = (1, 2, 3, 4)
    out = SpatialPyramidPooling2D(levels=levels, pooling=pooling)(x)
    np.testing.assert_allclose(out, _reference(x, levels, pooling), rtol=1e-6)


def test_graph_mode_with_unknown_size():
    inputs = keras.Input(shape=(None, None, 2))
    model = keras.Model(inputs, SpatialPyramidPooling2D(levels=(1, 2))(inputs))
    for hw in [(2, 3), (8, 8)]:
        x = np.random.rand(1, *hw, 2).astype("float32")
        np.testing.assert_allclose(
            model.predict(x, verbose=0), _reference(x, (1, 2), "max"), rtol=1e-6
        )


def test_mixed_precision_dtype():
    layer = SpatialPyramidPooling2D(dtype="mixed_bfloat16")
    out = layer(np.random.rand(1, 3, 3, 2).astype("float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"


def test_bad_arguments_quote_the_value():
    with pytest.raises(ValueError, match="Received: pooling=max2"):
        SpatialPyramidPooling2D(pooling="max2")
    with pytest.raises(ValueError, match="Received: levels="):
        SpatialPyramidPooling2D(levels=(1, 0))
    with pytest.raises(ValueError, match="Received: levels="):
        SpatialPyramidPooling2D(levels=())
