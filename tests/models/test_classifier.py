import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_art.config import ModelConfig
from keras_art.models.classifier import (
    build_classifier,
    feature_and_output_model,
    split_model,
)

TASKS = {"artist": 5, "genre": 3, "style": 4}


@pytest.fixture(scope="module")
def multi_task():
    cfg = ModelConfig(weights="none", proj_dim=16, gru_units=8)
    model, source = build_classifier(cfg, TASKS)
    return model, source


def test_multi_task_outputs(multi_task):
    model, source = multi_task
    assert source == "random init (--weights none)"
    assert model.output_names == list(TASKS)
    assert model.input.name == "image"
    assert tuple(model.input.shape) == (None, None, None, 3)
    out = model(np.random.rand(2, 64, 48, 3).astype("float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        t: (2, c) for t, c in TASKS.items()
    }
    backbone, head = split_model(model)
    assert (backbone.name, head.name) == ("backbone", "head")
    assert backbone.output.shape[-1] == 2048
    # One shared trunk: every task's classifier sits on the same embedding.
    assert tuple(head.get_layer("embedding").output.shape) == (None, 2048 + 32)


def test_fixed_image_size_and_weights_source():
    cfg = ModelConfig(backbone="efficientnetb0", head="gap", weights="none")
    model, _ = build_classifier(cfg, {"artist": 7}, image_size=32)
    assert tuple(model.input.shape) == (None, 32, 32, 3)
    assert model.output_names == ["artist"]


def test_feature_and_output_model_gradient(multi_task):
    model, _ = multi_task
    fmodel = feature_and_output_model(model)
    x = np.random.rand(2, 64, 64, 3).astype("float32")
    with tf.GradientTape() as tape:
        features, embedding, outputs = fmodel(x)
        score = outputs["genre"][:, 1]
    grads = tape.gradient(score, features)
    assert tuple(features.shape) == (2, 2, 2, 2048)
    assert tuple(embedding.shape) == (2, 2080)
    assert grads is not None and float(tf.reduce_max(tf.abs(grads))) > 0
    expected = model(x)
    for task in TASKS:
        np.testing.assert_allclose(outputs[task], expected[task], rtol=1e-5, atol=1e-6)
    # It shares the classifier's weights rather than copying them.
    assert fmodel.get_layer("backbone") is model.get_layer("backbone")


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_task_dict_losses_and_keras_save_load(tmp_path):
    cfg = ModelConfig(
        backbone="efficientnetb0", weights="none", proj_dim=8, gru_units=4
    )
    model, _ = build_classifier(cfg, {"artist": 3, "style": 2}, image_size=32)
    x = np.random.rand(2, 32, 32, 3).astype("float32")
    # y dicts keyed by task line up with the outputs (a full train step is the
    # training engineer's test; tracing it here costs ~1 min on 2 cores).
    model.compile(
        optimizer="adam",
        loss={t: "sparse_categorical_crossentropy" for t in ("artist", "style")},
    )
    y = {"artist": np.array([0, 2]), "style": np.array([1, 0])}
    loss = model.compute_loss(x=x, y=y, y_pred=model(x))
    assert np.isfinite(keras.ops.convert_to_numpy(loss))
    path = tmp_path / "classifier.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.output_names == ["artist", "style"]
    assert reloaded.get_layer("head").get_layer("head_rows_bigru").units == 4
    a, b = model(x), reloaded(x)
    for task in a:
        np.testing.assert_allclose(a[task], b[task], rtol=1e-5, atol=1e-6)
