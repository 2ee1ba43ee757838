"""The classifier: backbone -> head, one shared trunk, one softmax per task."""

from __future__ import annotations

import keras

from keras_art.config import ModelConfig
from keras_art.models.backbones import build_backbone
from keras_art.models.heads import build_head


def build_classifier(
    cfg: ModelConfig,
    num_classes: dict[str, int],
    *,
    image_size: int | None = None,
    on_missing_weights: str = "error",
) -> tuple[keras.Model, str]:
    """Build ``image -> backbone -> head -> {task: probabilities}``.

    The input ``"image"`` is ``(image_size, image_size, 3)`` RGB pixels in
    [0, 255], float or uint8 (``None``: any size); the backbone's first layer
    normalises them, so the saved model needs no preprocessing from keras_art.
    The backbone and head are nested models named ``"backbone"`` and ``"head"``;
    the model's outputs are a dict keyed by task (``model.output_names`` are the
    tasks), so ``y`` dicts keyed by task work with ``fit``.

    Returns:
        ``(model, weights_source)`` as from `build_backbone`.
    """
    backbone, source = build_backbone(
        cfg.backbone, cfg.weights, on_missing=on_missing_weights
    )
    head = build_head(cfg, backbone.output.shape[-1], num_classes)
    image = keras.Input(shape=(image_size, image_size, 3), name="image")
    outputs = head(backbone(image))
    # Named pass-throughs make the model's output names the task names (a nested
    # model's outputs would all be called "head"); float32 keeps the softmax dtype.
    outputs = {
        task: keras.layers.Identity(dtype="float32", name=task)(outputs[task])
        for task in num_classes
    }
    model = keras.Model(image, outputs, name="classifier")
    return model, source


def split_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The nested ``(backbone, head)`` of a `build_classifier` model."""
    return model.get_layer("backbone"), model.get_layer("head")


def feature_and_output_model(model: keras.Model) -> keras.Model:
    """A model ``image -> [feature_map, embedding, {task: probabilities}]``.

    It shares every weight with ``model``. Inner layer outputs of a nested
    backbone cannot be wired to the outer input (Keras raises "not connected"),
    so this re-applies the backbone to a fresh input and the head, extended to
    also return its ``"embedding"``, to the resulting symbolic feature map. The
    feature map is therefore a real graph tensor: ``tape.gradient(score,
    feature_map)`` works for Grad-CAM.
    """
    backbone, head = split_model(model)
    head_outputs = head.output
    extended_head = keras.Model(
        head.input,
        [head.get_layer("embedding").output, head_outputs],
        name="head_with_embedding",
    )
    image = keras.Input(shape=model.input_shape[1:], name="image")
    features = backbone(image)
    embedding, outputs = extended_head(features)
    return keras.Model(
        image, [features, embedding, outputs], name="features_and_outputs"
    )
