"""ImageNet backbones truncated to their last feature map, weights and stages.

Every backbone is a functional `keras.Model` named ``"backbone"`` taking RGB pixels in
[0, 255] (float or uint8, ``(None, None, 3)``: any size) and returning the last feature
map. Its first layer, ``input_normalization`` (`keras_art.layers.ImageNormalization`),
turns pixels into what the ImageNet weights expect, so nothing outside the model
normalises. The facts per backbone (application, feature layer, channels, stage
prefixes, normalisation, weights file) live in `keras_art.registry.BACKBONES`.

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

import logging
import os
import re
import socket
import threading
from pathlib import Path

import keras

from keras_art.errors import ParameterError, UserError
from keras_art.layers import ImageNormalization
from keras_art.models.walk import all_sublayers
from keras_art.registry import (
    NORMALIZATION_LAYER,
    STAGES,
    BackboneInfo,
    backbone_info,
)

logger = logging.getLogger(__name__)

_ON_MISSING = ("error", "random")
_CONNECT_HOST = ("storage.googleapis.com", 443)
_CONNECT_TIMEOUT_S = 3.0


class WeightsUnavailableError(ParameterError):
    """ImageNet weights are neither cached nor downloadable (offline)."""


# EfficientNet's ImageNet checkpoint stores the per-channel std where the
# Normalization layer expects the variance; Keras compensates with an extra
# Rescaling(1/sqrt(std)) that only exists when it loads the weights itself.
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def _build_application(info: BackboneInfo, image_size: int | None) -> keras.Model:
    """The head-less application behind ``input_normalization``, random init."""
    pixels = keras.Input(shape=(image_size, image_size, 3), name="pixels")
    normalized = ImageNormalization(
        **info.normalization.as_config(), name=NORMALIZATION_LAYER
    )(pixels)
    constructor = getattr(keras.applications, info.application)
    # With `input_tensor` the application's layers join this graph, so they stay
    # top-level layers of the backbone (stages are found by their names).
    model = constructor(include_top=False, weights=None, input_tensor=normalized)
    return keras.Model(pixels, model.output, name="backbone")


def keras_cache_dir() -> Path:
    """Keras's cache root, resolved at call time (``$KERAS_HOME`` wins)."""
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"])
    home = Path.home()
    base = home if os.access(home, os.W_OK) else Path("/tmp")
    return base / ".keras"


def imagenet_weights_path(name: str) -> Path:
    """Where Keras caches the head-less ImageNet weights of backbone ``name``."""
    return keras_cache_dir() / "models" / backbone_info(name).weights_file


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


def resolve_weights(
    name: str, weights: str | None = "imagenet", *, on_missing: str = "error"
) -> Path | None:
    """The weights file ``weights`` names for backbone ``name``; None = random init.

    Cheap and never hangs (see `network_available`), so a run calls it before any
    long work. Raises `UserError` for a missing local file and
    `WeightsUnavailableError` for unavailable ImageNet weights when
    ``on_missing="error"`` (``"random"`` logs one line and returns None).
    """
    info = backbone_info(name)
    if on_missing not in _ON_MISSING:
        raise ValueError(
            f"`on_missing` must be one of {_ON_MISSING}. Received: "
            f"on_missing={on_missing}"
        )
    choice = "none" if weights is None else str(weights)
    if choice.lower() == "none":
        return None
    if choice.lower() == "imagenet":
        return _imagenet_file(info, on_missing)
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ParameterError(
            f"{{model.weights}} {choice}: no such file. Pass imagenet, none or the "
            f"path of a local head-less {name} .h5 weights file."
        )
    return path


def build_backbone(
    name: str,
    weights: str | None = "imagenet",
    *,
    on_missing: str = "error",
    image_size: int | None = None,
) -> tuple[keras.Model, str]:
    """Build backbone ``name`` and load its weights.

    Args:
        name: a key of `keras_art.registry.BACKBONES`.
        weights: ``"imagenet"``, ``"none"``/``None`` (random init) or a path to a
            local ``.h5`` / ``.weights.h5`` file holding head-less weights.
        on_missing: what to do when ImageNet weights are neither cached nor
            downloadable: ``"error"`` raises `WeightsUnavailableError`,
            ``"random"`` logs one line and keeps the random init.
        image_size: a fixed square input size (``None``: any size).

    Returns:
        ``(model, weights_source)``: the model is named ``"backbone"`` and takes
        RGB pixels in [0, 255]; ``weights_source`` says where its weights came
        from, e.g. ``"imagenet (/root/.keras/models/...h5)"`` or
        ``"random init (imagenet weights not available offline)"``.
    """
    info = backbone_info(name)
    path = resolve_weights(name, weights, on_missing=on_missing)
    model = _build_application(info, image_size)
    choice = "none" if weights is None else str(weights).lower()
    if path is None:
        source = (
            "random init (--weights none)"
            if choice == "none"
            else "random init (imagenet weights not available offline)"
        )
        return model, source
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad file
        raise ParameterError(
            f"{{model.weights}} {path}: cannot load into {name} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Pass head-less "
            f"(include_top=False) {name} weights, imagenet or none."
        ) from None
    if choice == "imagenet":
        if name == "efficientnetb0":
            _fix_efficientnet_normalization(model)
        return model, f"imagenet ({path})"
    return model, f"file {path}"


def _imagenet_file(info: BackboneInfo, on_missing: str) -> Path | None:
    path = imagenet_weights_path(info.name)
    if path.is_file():
        return path
    if network_available():
        try:
            fetched = keras.utils.get_file(
                info.weights_file,
                info.weights_url,
                cache_subdir="models",
                cache_dir=str(keras_cache_dir()),
            )
            return Path(fetched)
        except Exception as exc:  # noqa: BLE001 - fall through to the offline path
            logger.warning("Downloading %s failed: %s", info.weights_url, exc)
    if on_missing == "error":
        raise WeightsUnavailableError(
            f"ImageNet weights for {info.name} are not available offline: place "
            f"{info.weights_file} in {path.parent}/ (from {info.weights_url}), or "
            f"pass {{model.weights}} none (random init) or {{model.weights}} PATH to "
            f"a local .h5."
        )
    logger.warning(
        "ImageNet weights for %s not available offline (%s missing); "
        "using random init.",
        info.name,
        path,
    )
    return None


def _fix_efficientnet_normalization(model: keras.Model) -> None:
    norm = next(
        layer
        for layer in model.layers
        if type(layer) is keras.layers.Normalization  # not our ImageNormalization
    )
    # The checkpoint fills the layer's variables; `finalize_state` refreshes the
    # tensors the layer actually computes with.
    variance = keras.ops.convert_to_numpy(norm.adapt_variance)
    scale = keras.ops.convert_to_numpy(_IMAGENET_STDDEV_RGB).reshape(variance.shape)
    norm.adapt_variance.assign(variance * scale)
    norm.finalize_state()


# ------------------------------------------------------------------------ stages
def backbone_stages(
    backbone: keras.Model, name: str
) -> dict[str, list[keras.layers.Layer]]:
    """Group backbone ``name``'s top-level layers into stages ``conv1`` ... ``conv5``.

    Every layer belongs to exactly one stage (the input and ``input_normalization``
    to ``conv1``); a layer matching no stage prefix of the registry raises, so an
    unexpected architecture fails loudly instead of being silently left frozen or
    trainable.
    """
    info = backbone_info(name)
    stages: dict[str, list[keras.layers.Layer]] = {s: [] for s in STAGES}
    for layer in backbone.layers:
        stage = _stage_of(layer, info)
        if stage is None:
            raise ValueError(
                f"Layer {layer.name!r} of {name} matches no stage prefix in "
                f"{info.stage_prefixes} (keras_art.registry)."
            )
        stages[stage].append(layer)
    return stages


def set_backbone_trainable(
    backbone: keras.Model,
    name: str,
    from_stage: str | None,
    *,
    train_bn: bool = False,
) -> None:
    """Freeze backbone ``name`` up to ``from_stage``; train ``from_stage`` and later.

    ``None`` freezes everything. BatchNormalization layers stay frozen
    (``trainable=False`` = inference mode in Keras 3) whatever the stage, unless
    ``train_bn``: then those of the unfrozen stages learn too. That is only right
    for a randomly initialised backbone, whose BN statistics hold nothing worth
    protecting (with frozen, untrained statistics a deep ResNet has no
    normalisation at all and diverges once it learns).
    Re-trace the train step afterwards for the change to take effect.
    """
    if from_stage is not None and from_stage not in STAGES:
        raise UserError(
            f"Unknown backbone stage {from_stage!r}. Choose one of: "
            f"{', '.join(STAGES)} (or none to freeze the whole backbone)."
        )
    stages = backbone_stages(backbone, name)
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
    learning_bn = set()
    if train_bn:
        for top in open_layers:
            learning_bn.update(id(sub) for sub in all_sublayers(top, include_self=True))
    for layer in all_sublayers(backbone):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = id(layer) in learning_bn


def _stage_of(layer: keras.layers.Layer, info: BackboneInfo) -> str | None:
    if isinstance(layer, keras.layers.InputLayer) or layer.name == NORMALIZATION_LAYER:
        return "conv1"
    for stage in reversed(STAGES):  # "conv5_" before a looser earlier match
        for prefix in info.stage_prefixes[stage]:
            if prefix.startswith("^"):
                if re.fullmatch(prefix[1:].rstrip("$"), layer.name):
                    return stage
            elif layer.name.startswith(prefix):
                return stage
    return None
