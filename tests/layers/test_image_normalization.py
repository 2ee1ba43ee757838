import keras
import numpy as np
import pytest

from keras_art.layers import ImageNormalization
from keras_art.registry import BACKBONES
from tests.layers.layer_checks import run_layer_checks

CAFFE = BACKBONES["resnet50"].normalization.as_config()


@pytest.mark.parametrize(
    "kwargs", [CAFFE, {"mean": [1.0, 2.0, 3.0], "std": [2.0, 4.0, 8.0], "bgr": False}]
)
def test_layer_checks(tmp_path, kwargs):
    run_layer_checks(
        ImageNormalization,
        kwargs,
        input_shape=lambda h, w: (h, w, 3),
        output_shape=lambda h, w: (h, w, 3),
        num_weights=0,
        tmp_path=tmp_path,
    )


def test_resnet50_entry_equals_keras_preprocess_input():
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    want = keras.applications.resnet50.preprocess_input(x.copy())
    got = keras.ops.convert_to_numpy(ImageNormalization(**CAFFE)(x))
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-4)


@pytest.mark.parametrize(
    "backbone, module",
    [("efficientnetb0", "efficientnet"), ("convnext_tiny", "convnext")],
)
def test_self_normalising_backbones_are_identity(backbone, module):
    x = np.random.default_rng(1).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    want = getattr(keras.applications, module).preprocess_input(x.copy())
    layer = ImageNormalization(**BACKBONES[backbone].normalization.as_config())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), want)


def test_uint8_input_gives_the_float_result():
    x = np.random.default_rng(2).integers(0, 256, (1, 5, 3, 3)).astype("uint8")
    layer = ImageNormalization(**CAFFE)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)),
        keras.ops.convert_to_numpy(layer(x.astype("float32"))),
    )


def test_output_follows_the_dtype_policy():
    layer = ImageNormalization(**CAFFE, dtype="mixed_bfloat16")
    out = layer(np.full((1, 2, 2, 3), 200.0, "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mean": [1.0, 2.0]}, "one value per RGB"),
        ({"std": [1.0, 0.0, 1.0]}, "positive"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImageNormalization(**kwargs)
