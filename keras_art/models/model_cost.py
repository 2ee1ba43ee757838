"""Model size and cost: parameters, ``.keras`` size on disk, multiply-accumulates.

Compute is counted analytically from layer shapes, in MACs (one multiply + one
add = 1 MAC; FLOPs ~ 2 x MACs). That is the convention behind the usual
"ResNet-50: 4.1 GFLOPs" figure (seed 004's table): ResNet50 without its top
counts 4.09 GMACs at 224 px here. Counted: Conv2D, DepthwiseConv2D, Dense
(applied per position), GRU steps (3 gates x (input + recurrent) matmuls per step
and direction) and the attention-scoring MLP. Not counted: normalisation,
activations, pooling, element-wise adds and softmax (a few percent at most).

A static graph profiler was not used because it counts a ``while`` loop's body
once, i.e. one GRU step instead of ``H x W``.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import keras

from keras_art.config import ModelConfig
from keras_art.layers import AttentionPooling, DirectionalBiGRU
from keras_art.models.backbones import build_backbone
from keras_art.models.classifier import build_classifier
from keras_art.models.heads import build_head_for_shape


def measure_model(
    cfg: ModelConfig, num_classes: dict[str, int], image_size: int
) -> dict:
    """Size and cost of the classifier ``cfg`` describes, per image at ``image_size``.

    Weights are random (``cfg.weights`` is ignored): counts do not depend on them.
    """
    cfg = ModelConfig(**{**vars(cfg), "weights": "none"})
    model, _ = build_classifier(cfg, num_classes)
    backbone = model.get_layer("backbone")
    head = model.get_layer("head")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        size = os.path.getsize(path)

    fixed_backbone, fixed_head = _fixed_size_parts(cfg, num_classes, image_size)
    _, fh, fw, channels = fixed_backbone.output.shape
    backbone_macs = count_macs(fixed_backbone)
    head_macs = count_macs(fixed_head)
    total_macs = backbone_macs + head_macs
    return {
        "backbone": cfg.backbone,
        "head": cfg.head,
        "image_size": image_size,
        "feature_map": [fh, fw, channels],
        "num_classes": dict(num_classes),
        "params": model.count_params(),
        "trainable_params": _count(model.trainable_weights),
        "backbone_params": backbone.count_params(),
        "head_params": head.count_params(),
        "size_mb": round(size / 2**20, 2),
        "backbone_gmacs": round(backbone_macs / 1e9, 3),
        "head_gmacs": round(head_macs / 1e9, 4),
        "gmacs": round(total_macs / 1e9, 3),
        "gflops": round(2 * total_macs / 1e9, 3),
    }


def measure_compute(
    cfg: ModelConfig, num_classes: dict[str, int], image_size: int
) -> dict:
    """Parameters and multiply-accumulates per image at ``image_size``, without
    building the variable-size classifier or saving it (`measure_model` does both):
    one backbone at a fixed size and its head. The parameters are the classifier's
    (its other layers hold none)."""
    backbone, head = _fixed_size_parts(cfg, num_classes, image_size)
    macs = count_macs(backbone) + count_macs(head)
    return {
        "params": backbone.count_params() + head.count_params(),
        "gmacs": round(macs / 1e9, 3),
        "gflops": round(2 * macs / 1e9, 3),
    }


def _fixed_size_parts(cfg: ModelConfig, num_classes: dict[str, int], image_size: int):
    """The backbone (random weights) at ``image_size`` and its head for the feature
    map's fixed shape: what the MAC count needs fully known shapes for."""
    backbone, _ = build_backbone(cfg.backbone, "none", image_size=image_size)
    _, fh, fw, channels = backbone.output.shape
    return backbone, build_head_for_shape(cfg, channels, num_classes, (fh, fw))


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of a fixed-shape functional model.

    The model's input shape must be fully known (batch aside).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        total += _layer_macs(layer, _shape(layer.input), _shape(layer.output))
    return total


def _layer_macs(layer, input_shape, output_shape) -> int:
    if isinstance(layer, keras.Sequential):
        total, shape = 0, input_shape
        for sub in layer.layers:
            out = tuple(sub.compute_output_shape(shape))
            total += _layer_macs(sub, shape, out)
            shape = out
        return total
    if isinstance(layer, keras.Model):
        return count_macs(layer)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _prod(output_shape[1:]) * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = input_shape[-1] // layer.groups
        return _prod(output_shape[1:]) * kh * kw * cin
    if isinstance(layer, keras.layers.Dense):
        return _prod(output_shape[1:]) * input_shape[-1]
    if isinstance(layer, DirectionalBiGRU):
        _, h, w, features = input_shape
        macs, units = 0, layer.units
        for _ in range(layer.num_layers):
            macs += 3 * (features * units + units * units)
            features = 2 * units
        return 2 * h * w * macs  # two directions, one step per map cell
    if isinstance(layer, AttentionPooling):
        _, steps, features = input_shape
        if layer.hidden_units is None:
            return steps * features
        return steps * (features * layer.hidden_units + layer.hidden_units)
    return 0


def _shape(tensor):
    if isinstance(tensor, (list, tuple)):
        return tuple(tensor[0].shape)
    if isinstance(tensor, dict):
        return tuple(next(iter(tensor.values())).shape)
    return tuple(tensor.shape)


def _prod(values) -> int:
    return math.prod(int(v) for v in values)


def _count(weights) -> int:
    return sum(_prod(w.shape) for w in weights)
