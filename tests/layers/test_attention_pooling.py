import keras
import numpy as np
import pytest

from keras_art.layers import AttentionPooling
from tests.layers.layer_checks import run_layer_checks


@pytest.mark.parametrize(
    "hidden_units, num_weights", [(8, 4), (None, 2)], ids=["mlp", "linear"]
)
def test_layer_checks(tmp_path, hidden_units, num_weights):
    run_layer_checks(
        AttentionPooling,
        {"hidden_units": hidden_units},
        input_shape=lambda h, w: (h, 16),
        output_shape=lambda h, w: (16,),
        num_weights=num_weights,
        tmp_path=tmp_path,
    )


def _zero_scores(layer):
    layer.score.kernel.assign(np.zeros(layer.score.kernel.shape, "float32"))


def test_equal_scores_give_the_mean():
    x = np.random.rand(3, 5, 4).astype("float32")
    layer = AttentionPooling(hidden_units=None)
    layer.build(x.shape)
    _zero_scores(layer)
    np.testing.assert_allclose(layer(x), x.mean(axis=1), rtol=1e-5)


def test_weights_follow_scores():
    # A linear score that only looks at feature 0 prefers the step where it is big.
    x = np.zeros((1, 3, 2), "float32")
    x[0, 1] = [30.0, 7.0]
    layer = AttentionPooling(hidden_units=None)
    layer.build(x.shape)
    layer.score.kernel.assign(np.array([[1.0], [0.0]], "float32"))
    np.testing.assert_allclose(layer(x), [[30.0, 7.0]], rtol=1e-5)


def test_mask_ignores_steps_and_all_masked_rows_are_zero():
    x = np.random.rand(2, 6, 4).astype("float32")
    mask = np.array([[True] * 4 + [False] * 2, [False] * 6])
    layer = AttentionPooling(hidden_units=8)
    masked = keras.ops.convert_to_numpy(layer(x, mask=mask))
    truncated = keras.ops.convert_to_numpy(layer(x[:1, :4]))
    np.testing.assert_allclose(masked[0], truncated[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(masked[1], np.zeros(4))


def test_mask_from_embedding_propagates():
    tokens = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    model = keras.Model(tokens, AttentionPooling(hidden_units=4)(x))
    a = model(np.array([[3, 4, 0, 0]]))
    b = model(np.array([[3, 4]]))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mixed_float16_is_finite_and_close_to_float32():
    x = (np.random.rand(2, 12, 8) * 50).astype("float32")
    ref = AttentionPooling(hidden_units=None)
    ref.build(x.shape)
    ref.score.kernel.assign(np.full((8, 1), 1.0, "float32"))  # scores ~ 200
    half = AttentionPooling(hidden_units=None, dtype="mixed_float16")
    half.build(x.shape)
    half.set_weights(ref.get_weights())
    out = half(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    out = keras.ops.convert_to_numpy(out).astype("float32")
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref(x), rtol=2e-2, atol=0.1)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_hidden_units(bad):
    with pytest.raises(ValueError, match=f"Received: hidden_units={bad}"):
        AttentionPooling(hidden_units=bad)


def test_attention_weights_are_the_pooling_weights():
    x = np.random.rand(3, 5, 4).astype("float32")
    layer = AttentionPooling(hidden_units=8)
    weights = keras.ops.convert_to_numpy(layer.attention_weights(x))
    assert weights.shape == (3, 5) and weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(weights > 0)
    pooled = (weights[..., None] * x).sum(axis=1)
    np.testing.assert_allclose(layer(x), pooled, rtol=1e-5, atol=1e-6)


def test_attention_weights_follow_scores_and_mask():
    x = np.zeros((2, 3, 2), "float32")
    x[:, 1] = [30.0, 7.0]
    layer = AttentionPooling(hidden_units=None)
    layer.build(x.shape)
    layer.score.kernel.assign(np.array([[1.0], [0.0]], "float32"))
    mask = np.array([[True, True, True], [True, False, True]])
    weights = keras.ops.convert_to_numpy(layer.attention_weights(x, mask=mask))
    # Row 0 puts (almost) all weight on step 1; row 1 masks it: the rest share.
    np.testing.assert_allclose(weights[0], [0.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(weights[1], [0.5, 0.0, 0.5], atol=1e-6)
