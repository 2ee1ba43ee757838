import logging
import threading

import h5py
import keras
import numpy as np
import pytest

from keras_art.errors import UserError
from keras_art.models import backbones
from keras_art.models.backbones import (
    WeightsUnavailableError,
    backbone_stages,
    build_backbone,
    set_backbone_trainable,
)
from keras_art.registry import BACKBONES, NORMALIZATION_LAYER, STAGES


@pytest.fixture(scope="module")
def resnet():
    model, source = build_backbone("resnet50", "none")
    assert source == "random init (--weights none)"
    return model


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Keras cache and no network: nothing can be found or fetched."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(backbones, "network_available", lambda *a, **k: False)

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    return tmp_path / "keras_home" / "models"


def _write_legacy_h5(model, path):
    """The layout of Keras's cached ``*_notop.h5`` ImageNet files (order-based)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    layers = [layer for layer in model.layers if layer.weights]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in layers:
            group = f.create_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = [
                f"{layer.name}/{i}_{w.name}".encode() for i, w in enumerate(weights)
            ]
            group.attrs["weight_names"] = names
            for name, weight in zip(names, weights, strict=True):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(weight))


def _assert_same_weights(a, b):
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(wa), keras.ops.convert_to_numpy(wb)
        )


@pytest.mark.parametrize("name", list(BACKBONES))
def test_backbone_any_size_and_stages_cover_every_layer(name):
    model, _ = build_backbone(name, "none")
    assert model.name == "backbone"
    assert tuple(model.input.shape) == (None, None, None, 3)
    out = model(np.zeros((1, 64, 96, 3), "float32"))
    assert tuple(out.shape) == (1, 2, 3, BACKBONES[name].channels)
    stages = backbone_stages(model, name)
    assert list(stages) == list(STAGES)
    assert all(stages.values()), {k: len(v) for k, v in stages.items()}
    grouped = [layer.name for layers in stages.values() for layer in layers]
    assert sorted(grouped) == sorted(layer.name for layer in model.layers)
    assert len(grouped) == len(set(grouped))
    assert model.layers[1].name == NORMALIZATION_LAYER
    assert NORMALIZATION_LAYER in {layer.name for layer in stages["conv1"]}


def test_resnet_stage_names(resnet):
    names = {
        stage: {layer.name for layer in layers}
        for stage, layers in backbone_stages(resnet, "resnet50").items()
    }
    assert {"conv1_conv", "conv1_bn", "pool1_pool"} <= names["conv1"]
    assert all(n.startswith("conv2_") for n in names["conv2"])
    assert "conv3_block4_out" in names["conv3"]
    assert "conv4_block6_out" in names["conv4"]
    assert "conv5_block3_out" in names["conv5"]


def test_set_backbone_trainable(resnet):
    stages = backbone_stages(resnet, "resnet50")
    set_backbone_trainable(resnet, "resnet50", "conv4")
    for stage, layers in stages.items():
        for layer in layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                assert not layer.trainable, layer.name
            elif stage in ("conv4", "conv5") and layer.weights:
                assert layer.trainable, layer.name
            elif layer.weights:
                assert not layer.trainable, layer.name
    trainable = {v.path.split("/")[-2] for v in resnet.trainable_weights}
    assert trainable and all(n.startswith(("conv4_", "conv5_")) for n in trainable)
    assert not any(n.endswith("_bn") for n in trainable)

    set_backbone_trainable(resnet, "resnet50", "conv1")
    convs = [layer for layer in resnet.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(layer.trainable for layer in convs)
    bns = [
        layer
        for layer in resnet.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert bns and not any(layer.trainable for layer in bns)
    assert len(resnet.trainable_weights) == 2 * len(convs)  # kernel + bias

    set_backbone_trainable(resnet, "resnet50", None)
    assert resnet.trainable_weights == []


def test_unknown_stage_lists_the_valid_ones(resnet):
    with pytest.raises(UserError, match="conv1, conv2, conv3, conv4, conv5"):
        set_backbone_trainable(resnet, "resnet50", "layer4")


def test_unknown_backbone():
    with pytest.raises(UserError, match="resnet50, efficientnetb0, convnext_tiny"):
        build_backbone("vgg16", "none")


def test_offline_imagenet_error_says_what_to_do(offline):
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone("resnet50", "imagenet", on_missing="error")
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in message
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(offline) in message
    # The library's words name the config key; the train command shows its flag.
    assert "model.weights none" in message and "--" not in message
    assert "--weights none" in info.value.render({"model.weights": "--weights"})


def test_offline_imagenet_random_fallback(offline, caplog):
    with caplog.at_level(logging.WARNING, logger="keras_art.models.backbones"):
        model, source = build_backbone("resnet50", "imagenet", on_missing="random")
    assert source == "random init (imagenet weights not available offline)"
    assert model.name == "backbone"
    assert len(caplog.records) == 1 and "random init" in caplog.records[0].message


def test_cached_imagenet_file_is_used(offline, resnet):
    _write_legacy_h5(resnet, offline / BACKBONES["resnet50"].weights_file)
    model, source = build_backbone("resnet50", "imagenet")
    assert source.startswith("imagenet (") and str(offline) in source
    _assert_same_weights(model, resnet)


def test_cached_efficientnet_normalization_fix(offline):
    reference, _ = build_backbone("efficientnetb0", "none")
    norm = next(
        layer
        for layer in reference.layers
        if isinstance(layer, keras.layers.Normalization)
    )
    std = np.array([0.229, 0.224, 0.225], "float32")
    # The ImageNet file stores the std where the layer expects the variance.
    norm.adapt_variance.assign(std.reshape(norm.adapt_variance.shape))
    _write_legacy_h5(reference, offline / BACKBONES["efficientnetb0"].weights_file)
    model, source = build_backbone("efficientnetb0", "imagenet")
    assert source.startswith("imagenet (")
    loaded = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.variance).ravel(), std**2, rtol=1e-6
    )
    # Same normalisation as Keras's own imagenet path: (x - mean) / std.
    x = np.full((1, 1, 1, 3), 255.0, "float32")
    mean = keras.ops.convert_to_numpy(loaded.mean).ravel()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x / 255.0)).ravel(),
        (1.0 - mean) / std,
        rtol=1e-5,
    )


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_local_weights_path(tmp_path, resnet, suffix):
    path = tmp_path / f"resnet50_notop{suffix}"
    if suffix == ".weights.h5":
        resnet.save_weights(str(path))
    else:
        _write_legacy_h5(resnet, path)
    model, source = build_backbone("resnet50", str(path))
    assert source == f"file {path}"
    _assert_same_weights(model, resnet)


def test_missing_or_bad_local_weights(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        build_backbone("resnet50", str(tmp_path / "missing.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file")
    with pytest.raises(UserError, match="cannot load into resnet50"):
        build_backbone("resnet50", str(junk))


def test_network_check_does_not_wait_for_a_stalled_connection(monkeypatch):
    # The probe blocks until the test releases it: network_available must answer
    # (False) while it is still blocked, i.e. without waiting for it.
    release, finished = threading.Event(), threading.Event()

    def stall(*args, **kwargs):
        release.wait(30)
        finished.set()
        raise OSError("unreachable")

    monkeypatch.setattr(backbones.socket, "create_connection", stall)
    try:
        assert backbones.network_available(timeout=0.2) is False
        assert not finished.is_set()
    finally:
        release.set()


def test_bad_on_missing():
    with pytest.raises(ValueError, match="Received: on_missing=ignore"):
        build_backbone("resnet50", "none", on_missing="ignore")
