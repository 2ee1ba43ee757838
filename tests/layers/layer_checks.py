"""One shared check run for every keras_art layer (keras-hub's run_layer_test idea).

`run_layer_checks` covers: the config round trip (JSON-equal after
``from_config``), weight counts after ``build``, output shape and dtype on a
symbolic call and on eager calls at several spatial sizes (7x7, 12x12 and a
non-square one), one ``fit`` step that changes the trainable weights, and a
``.keras`` save/reload with equal outputs.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import keras
import numpy as np

SIZES = ((7, 7), (12, 12), (5, 9))


def run_layer_checks(
    layer_cls,
    init_kwargs: dict,
    *,
    input_shape: Callable[[int | None, int | None], tuple],
    output_shape: Callable[[int | None, int | None], tuple],
    num_weights: int,
    num_trainable_weights: int | None = None,
    sizes=SIZES,
    tmp_path=None,
    batch: int = 2,
):
    """Run every generic check on ``layer_cls(**init_kwargs)``.

    ``input_shape(h, w)`` / ``output_shape(h, w)`` give the per-example shapes
    (no batch axis) for a spatial size; ``None`` means unknown (symbolic call).
    """
    rng = np.random.default_rng(0)

    def make_input(h, w):
        return rng.standard_normal((batch, *input_shape(h, w))).astype("float32")

    # Config round trip: JSON-serialisable and identical after from_config.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    text = json.dumps(config, sort_keys=True)
    for key, value in init_kwargs.items():
        expected = list(value) if isinstance(value, tuple) else value
        assert config[key] == expected, (key, config[key], value)
    revived = layer_cls.from_config(json.loads(text))
    assert json.dumps(revived.get_config(), sort_keys=True) == text

    # Weight counts after build (unknown spatial dims).
    symbolic_shape = (None, *input_shape(None, None))
    layer = layer_cls(**init_kwargs)
    layer.build(symbolic_shape)
    assert layer.built
    assert len(layer.weights) == num_weights, [w.path for w in layer.weights]
    if num_trainable_weights is None:
        num_trainable_weights = num_weights
    assert len(layer.trainable_weights) == num_trainable_weights

    # Symbolic call: variable spatial dims survive.
    inputs = keras.Input(shape=input_shape(None, None))
    outputs = layer_cls(**init_kwargs)(inputs)
    assert tuple(outputs.shape) == (None, *output_shape(None, None))
    assert outputs.dtype == "float32"

    # Eager calls at several sizes, one layer instance for all of them.
    layer = layer_cls(**init_kwargs)
    for h, w in sizes:
        out = layer(make_input(h, w))
        assert tuple(out.shape) == (batch, *output_shape(h, w)), (h, w, out.shape)
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))

    # One fit step inside a model with unknown spatial dims.
    inputs = keras.Input(shape=input_shape(None, None))
    model = keras.Model(inputs, layer_cls(**init_kwargs)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=False)
    h, w = sizes[-1]
    x = make_input(h, w)
    y = rng.standard_normal((batch, *output_shape(h, w))).astype("float32")
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    with warnings.catch_warnings():
        # Weightless layers (SPP) still run a fit step; Keras warns about it.
        warnings.filterwarnings("ignore", "The model does not have any trainable")
        history = model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    if before:
        assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))

    # .keras save and reload: same outputs.
    if tmp_path is not None:
        path = str(tmp_path / f"{layer_cls.__name__}.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)
        for h, w in (sizes[0], sizes[-1]):
            x = make_input(h, w)
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(model(x)),
                keras.ops.convert_to_numpy(reloaded(x)),
                rtol=1e-5,
                atol=1e-5,
            )
    return model
