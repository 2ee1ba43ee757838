"""ImageNet backbones truncated to their last feature map, weights and stages.

Every backbone is a functional `keras.Model` named ``"backbone"`` taking
``(None, None, 3)`` images (any size) and returning the last feature map:

=================  ==========================  ========  =========================
name               feature map                 channels  expected input
=================  ==========================  ========  =========================
``resnet50``       ``conv5_block3_out``        2048      ``resnet50.preprocess_input``
                   (layer4, stride 32)                   (caffe: BGR, mean-subtracted)
``efficientnetb0`` ``top_activation`` (s. 32)  1280      pixels in [0, 255]
``convnext_tiny``  final LayerNorm (s. 32)     768       pixels in [0, 255]
=================  ==========================  ========  =========================

(EfficientNet and ConvNeXt carry their normalisation inside the model; see
``BackboneSpec.preprocessing``.)

Stages are named like ResNet50's so ``train.unfreeze_from`` means the same thing
for every backbone; they are chosen by layer-name prefix, never by index, and
grouped by output stride:

=========  ==========================  =========================  ==================
stage      resnet50                    efficientnetb0             convnext_tiny
=========  ==========================  =========================  ==================
conv1      input, conv1_*, pool1_*     input, rescaling,          input, prestem
           (stride 2-4)                normalization, stem_*,     normalization,
                                       block1* (stride 2)         stem (stride 4)
conv2      conv2_* (stride 4)          block2* (stride 4)         stage_0 (stride 4)
conv3      conv3_* (stride 8)          block3* (stride 8)         downsampling_block_0,
                                                                  stage_1 (stride 8)
conv4      conv4_* (stride 16)         block4*, block5*           downsampling_block_1,
                                       (stride 16)                stage_2 (stride 16)
conv5      conv5_* (stride 32)         block6*, block7*, top_*    downsampling_block_2,
                                       (stride 32)                stage_3, final norm
=========  ==========================  =========================  ==================

ImageNet weights come from Keras's cache (``$KERAS_HOME/models`` or
``~/.keras/models``); offline, nothing is downloaded and the call never hangs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import keras

from keras_art.errors import UserError

logger = logging.getLogger(__name__)

STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5")
_ON_MISSING = ("error", "random")
_CONNECT_HOST = ("storage.googleapis.com", 443)
_CONNECT_TIMEOUT_S = 3.0


class WeightsUnavailableError(UserError):
    """ImageNet weights are neither cached nor downloadable (offline)."""


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and where its ImageNet weights live.

    ``preprocessing`` names what the model expects as input: ``"caffe"``
    (``keras.applications.resnet50.preprocess_input``) or ``"raw"`` (RGB pixels
    in [0, 255]; normalisation happens inside the model).
    """

    name: str
    constructor: Callable[..., keras.Model]
    channels: int
    weights_file: str
    weights_url: str
    preprocessing: str
    stage_prefixes: dict[str, tuple[str, ...]]

    def build(self) -> keras.Model:
        return self.constructor(
            weights=None, include_top=False, input_shape=(None, None, 3)
        )


def _resnet50(**kwargs):
    return keras.applications.ResNet50(**kwargs)


def _efficientnetb0(**kwargs):
    return keras.applications.EfficientNetB0(**kwargs)


def _convnext_tiny(**kwargs):
    return keras.applications.ConvNeXtTiny(**kwargs)


_CNX = "convnext_tiny_"
BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec(
        name="resnet50",
        constructor=_resnet50,
        channels=2048,
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_url="https://storage.googleapis.com/tensorflow/keras-applications/"
        "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        preprocessing="caffe",
        stage_prefixes={
            "conv1": ("input", "conv1_", "pool1_"),
            "conv2": ("conv2_",),
            "conv3": ("conv3_",),
            "conv4": ("conv4_",),
            "conv5": ("conv5_",),
        },
    ),
    "efficientnetb0": BackboneSpec(
        name="efficientnetb0",
        constructor=_efficientnetb0,
        channels=1280,
        weights_file="efficientnetb0_notop.h5",
        weights_url="https://storage.googleapis.com/keras-applications/"
        "efficientnetb0_notop.h5",
        preprocessing="raw",
        stage_prefixes={
            "conv1": ("input", "rescaling", "normalization", "stem_", "block1"),
            "conv2": ("block2",),
            "conv3": ("block3",),
            "conv4": ("block4", "block5"),
            "conv5": ("block6", "block7", "top_"),
        },
    ),
    "convnext_tiny": BackboneSpec(
        name="convnext_tiny",
        constructor=_convnext_tiny,
        channels=768,
        weights_file="convnext_tiny_notop.h5",
        weights_url="https://storage.googleapis.com/tensorflow/keras-applications/"
        "convnext/convnext_tiny_notop.h5",
        preprocessing="raw",
        stage_prefixes={
            "conv1": ("input", _CNX + "prestem", _CNX + "stem"),
            "conv2": (_CNX + "stage_0",),
            "conv3": (_CNX + "downsampling_block_0", _CNX + "stage_1"),
            "conv4": (_CNX + "downsampling_block_1", _CNX + "stage_2"),
            # The head-less model ends in an auto-named LayerNormalization.
            "conv5": (
                _CNX + "downsampling_block_2",
                _CNX + "stage_3",
                "layer_normalization",
            ),
        },
    ),
}

# EfficientNet's ImageNet checkpoint stores the per-channel std where the
# Normalization layer expects the variance; Keras compensates with an extra
# Rescaling(1/sqrt(std)) that only exists when it loads the weights itself.
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def keras_cache_dir() -> Path:
    """Keras's cache root, resolved at call time (``$KERAS_HOME`` wins)."""
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"])
    home = Path.home()
    base = home if os.access(home, os.W_OK) else Path("/tmp")
    return base / ".keras"


def imagenet_weights_path(name: str) -> Path:
    """Where Keras caches the head-less ImageNet weights of backbone ``name``."""
    return keras_cache_dir() / "models" / _spec(name).weights_file


def network_available(timeout: float = _CONNECT_TIMEOUT_S) -> bool:
    """True when the weights host answers within ``timeout`` seconds.

    Runs in a daemon thread so a stalled DNS lookup cannot block the caller.
    """
    result = []

    def probe():
        try:
            with socket.create_connection(_CONNECT_HOST, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def build_backbone(
    name: str, weights: str | None = "imagenet", *, on_missing: str = "error"
) -> tuple[keras.Model, str]:
    """Build backbone ``name`` (any input size) and load its weights.

    Args:
        name: a key of `BACKBONES`.
        weights: ``"imagenet"``, ``"none"``/``None`` (random init) or a path to a
            local ``.h5`` / ``.weights.h5`` file holding head-less weights.
        on_missing: what to do when ImageNet weights are neither cached nor
            downloadable: ``"error"`` raises `WeightsUnavailableError`,
            ``"random"`` logs one line and keeps the random init.

    Returns:
        ``(model, weights_source)``: the model is named ``"backbone"``;
        ``weights_source`` says where its weights came from, e.g.
        ``"imagenet (/root/.keras/models/...h5)"`` or
        ``"random init (imagenet weights not available offline)"``.
    """
    spec = _spec(name)
    if on_missing not in _ON_MISSING:
        raise ValueError(
            f"`on_missing` must be one of {_ON_MISSING}. Received: "
            f"on_missing={on_missing}"
        )
    choice = "none" if weights is None else str(weights)
    path = None
    if choice.lower() == "imagenet":
        path = _imagenet_file(spec, on_missing)
    elif choice.lower() != "none":
        path = Path(choice).expanduser()
        if not path.is_file():
            raise UserError(
                f"--weights {choice}: no such file. Pass imagenet, none or the path "
                f"of a local head-less {name} .h5 weights file."
            )

    model = spec.build()
    model.name = "backbone"
    if path is None:
        source = (
            "random init (--weights none)"
            if choice.lower() == "none"
            else "random init (imagenet weights not available offline)"
        )
        return model, source
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad file
        raise UserError(
            f"--weights {path}: cannot load into {name} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Pass head-less "
            f"(include_top=False) {name} weights, imagenet or none."
        ) from None
    if choice.lower() == "imagenet":
        if name == "efficientnetb0":
            _fix_efficientnet_normalization(model)
        return model, f"imagenet ({path})"
    return model, f"file {path}"


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise UserError(
            f"Unknown backbone {name!r}. Choose one of: {', '.join(BACKBONES)}."
        )
    return BACKBONES[name]


def fetch_imagenet_weights(name: str, on_missing: str = "error") -> Path | None:
    """The cached ImageNet weights file of backbone ``name``, downloaded if online.

    Cheap to call before any long work (it never hangs: see `network_available`).
    Raises `WeightsUnavailableError` offline when ``on_missing="error"``; returns
    None with ``"random"``.
    """
    return _imagenet_file(_spec(name), on_missing)


def _imagenet_file(spec: BackboneSpec, on_missing: str) -> Path | None:
    path = imagenet_weights_path(spec.name)
    if path.is_file():
        return path
    if network_available():
        try:
            fetched = keras.utils.get_file(
                spec.weights_file,
                spec.weights_url,
                cache_subdir="models",
                cache_dir=str(keras_cache_dir()),
            )
            return Path(fetched)
        except Exception as exc:  # noqa: BLE001 - fall through to the offline path
            logger.warning("Downloading %s failed: %s", spec.weights_url, exc)
    if on_missing == "error":
        raise WeightsUnavailableError(
            f"ImageNet weights for {spec.name} are not available offline: place "
            f"{spec.weights_file} in {path.parent}/ (from {spec.weights_url}), or "
            f"pass --weights none (random init) or --weights PATH to a local .h5."
        )
    logger.warning(
        "ImageNet weights for %s not available offline (%s missing); "
        "using random init.",
        spec.name,
        path,
    )
    return None


def _fix_efficientnet_normalization(model: keras.Model) -> None:
    norm = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.Normalization)
    )
    # The checkpoint fills the layer's variables; `finalize_state` refreshes the
    # tensors the layer actually computes with.
    variance = keras.ops.convert_to_numpy(norm.adapt_variance)
    scale = keras.ops.convert_to_numpy(_IMAGENET_STDDEV_RGB).reshape(variance.shape)
    norm.adapt_variance.assign(variance * scale)
    norm.finalize_state()


# ------------------------------------------------------------------------ stages
def backbone_stages(backbone: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    """Group the backbone's top-level layers into stages ``conv1`` ... ``conv5``.

    Every layer belongs to exactly one stage (the input layer to ``conv1``);
    a layer matching no stage prefix raises, so an unexpected architecture fails
    loudly instead of being silently left frozen or trainable.
    """
    spec = _spec_for_model(backbone)
    stages: dict[str, list[keras.layers.Layer]] = {s: [] for s in STAGES}
    for layer in backbone.layers:
        stage = _stage_of(layer, spec)
        if stage is None:
            raise ValueError(
                f"Layer {layer.name!r} of {spec.name} matches no stage prefix in "
                f"{spec.stage_prefixes}."
            )
        stages[stage].append(layer)
    return stages


def set_backbone_trainable(
    backbone: keras.Model, from_stage: str | None, *, train_bn: bool = False
) -> None:
    """Freeze the backbone up to ``from_stage``; train ``from_stage`` and later.

    ``None`` freezes everything. BatchNormalization layers stay frozen
    (``trainable=False`` = inference mode in Keras 3) whatever the stage, unless
    ``train_bn``: then those of the unfrozen stages learn too. That is only right
    for a randomly initialised backbone, whose BN statistics hold nothing worth
    protecting (with frozen, untrained statistics a deep ResNet has no
    normalisation at all and diverges once it learns).
    Re-compile the model afterwards for the change to reach ``fit``.
    """
    if from_stage is not None and from_stage not in STAGES:
        raise UserError(
            f"Unknown backbone stage {from_stage!r}. Choose one of: "
            f"{', '.join(STAGES)} (or none to freeze the whole backbone)."
        )
    stages = backbone_stages(backbone)
    if from_stage is None:
        backbone.trainable = False
        return
    backbone.trainable = True  # resets every sub-layer to trainable
    first = STAGES.index(from_stage)
    open_layers = []
    for index, stage in enumerate(STAGES):
        for layer in stages[stage]:
            layer.trainable = index >= first
            if index >= first:
                open_layers.append(layer)
    learning_bn = (
        {id(layer) for top in open_layers for layer in _all_layers_of(top)}
        if train_bn
        else set()
    )
    for layer in _all_layers(backbone):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = id(layer) in learning_bn


def _spec_for_model(backbone: keras.Model) -> BackboneSpec:
    names = {layer.name for layer in backbone.layers}
    if "conv5_block3_out" in names:
        return BACKBONES["resnet50"]
    if "top_activation" in names:
        return BACKBONES["efficientnetb0"]
    if _CNX + "stem" in names:
        return BACKBONES["convnext_tiny"]
    raise UserError(
        f"Cannot tell which backbone {backbone.name!r} is; expected one of "
        f"{', '.join(BACKBONES)}."
    )


def _stage_of(layer: keras.layers.Layer, spec: BackboneSpec) -> str | None:
    if isinstance(layer, keras.layers.InputLayer):
        return "conv1"
    for stage in reversed(STAGES):  # "conv5_" before a looser earlier match
        for prefix in spec.stage_prefixes[stage]:
            if prefix == "layer_normalization":
                if re.fullmatch(r"layer_normalization(_\d+)?", layer.name):
                    return stage
            elif layer.name.startswith(prefix):
                return stage
    return None


def _all_layers(layer):
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from _all_layers(sub)


def _all_layers_of(layer):
    """``layer`` itself and every layer nested in it."""
    yield layer
    yield from _all_layers(layer)
