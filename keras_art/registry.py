"""Every fixed vocabulary of keras_art, and every backbone fact, in one place.

Pure Python (no TensorFlow, no Keras): the config validates against it cheaply, and
the code that builds things (`keras_art.models.backbones`, `keras_art.models.heads`,
`keras_art.data.sources`, `keras_art.training.strategies`) reads it. Adding a backbone
is one `BackboneInfo` entry in `BACKBONES`; a test checks that every builder and every
CLI choice list agrees with these tuples.
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("artist", "genre", "style")
TASK_CHOICES = (*TASKS, "multi")

# Dataset layouts `keras_art.data.sources.load_catalog` reads ("sample" = the
# embedded demo data, chosen by leaving out --data).
DATASET_FORMATS = ("sample", "wikiart", "parquet", "best-artworks", "folder", "tfds")
# The image files the folder readers list (class folders, Best Artworks, the benches'
# image folders); TensorFlow's decode_image reads every one of them.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
HEADS = ("cnn_rnn", "gap", "spp")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
# "auto": float16 where a GPU is visible, off on CPU (resolved when a run starts).
MIXED_PRECISION = ("auto", "off", "float16", "bfloat16")
SCHEDULES = ("cosine", "plateau", "constant")
# How evaluation, export and predict bring an image to the model's square input:
# stretch, the largest central square, or aspect kept with black bars.
EVAL_RESIZE_MODES = ("resize", "center_crop", "letterbox")

# Backbone stages, named as ResNet50's, so `train.unfreeze_from` means the same for
# every backbone.
STAGES = ("conv1", "conv2", "conv3", "conv4", "conv5")

# What a training stage (`train.stages[i].trains`) trains: the head alone (backbone
# frozen), or the head and the backbone from the stage's `unfreeze_from` on.
STAGE_TRAINS = ("head", "all")

# The first layer of every backbone: RGB pixels in [0, 255] -> what the ImageNet
# weights expect (`keras_art.layers.ImageNormalization`). Its name puts it in conv1.
NORMALIZATION_LAYER = "input_normalization"

# TFLite export (python -m keras_art.export --format tflite --quantize ...): float32
# weights, float16 weights, or dynamic-range int8 weights.
QUANTIZE_MODES = ("none", "float16", "dynamic")

# KerasTuner searches (python -m tuning.search): the tuners, and what a search trains:
# "head" = the backbone stays frozen (trials train the head on cached features),
# "full" = trials run the whole staged schedule (the backbone learns when unfrozen).
TUNERS = ("hyperband", "bayesian", "random", "grid")
TUNE_STAGES = ("head", "full")

# The log key model selection watches (maximised): best checkpoint, early stopping,
# the plateau schedule, the curves' best epoch and a search's objective. The trainer
# logs it (`keras_art.training.epoch_metrics`): macro F1 on val, the mean over tasks.
MONITOR_METRIC = "val_macro_f1"
# Classes a top-k output shows or a top-k accuracy counts, unless told otherwise
# (evaluate, export, predict).
DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class Normalization:
    """What a backbone's ImageNet weights expect, as ``(x[..., order] - mean) / std``.

    ``mean`` and ``std`` are per output channel, in the order the weights expect
    (BGR for caffe-style ResNet50), on the 0-255 scale.
    """

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bgr: bool = False

    def as_config(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "bgr": self.bgr}


@dataclass(frozen=True)
class BackboneInfo:
    """The facts about one backbone that the rest of keras_art relies on.

    Args:
        name: the registry key, as ``--backbone`` spells it.
        application: the ``keras.applications`` constructor.
        feature_layer: the layer whose output the head sees (the last feature map).
        channels: that map's channels.
        stage_prefixes: stage -> layer-name prefixes of the application's top-level
            layers (a regex ``re.fullmatch`` where the prefix starts with ``^``).
        normalization: what the ImageNet weights expect (identity for applications
            that carry their own Rescaling/Normalization layers).
        weights_file / weights_url: Keras's cache name and source of the head-less
            ImageNet weights.
    """

    name: str
    application: str
    feature_layer: str
    channels: int
    stage_prefixes: dict[str, tuple[str, ...]]
    normalization: Normalization
    weights_file: str
    weights_url: str


_CNX = "convnext_tiny_"
BACKBONES: dict[str, BackboneInfo] = {
    "resnet50": BackboneInfo(
        name="resnet50",
        application="ResNet50",
        feature_layer="conv5_block3_out",
        channels=2048,
        stage_prefixes={
            "conv1": ("conv1_", "pool1_"),
            "conv2": ("conv2_",),
            "conv3": ("conv3_",),
            "conv4": ("conv4_",),
            "conv5": ("conv5_",),
        },
        # keras.applications.resnet50.preprocess_input ("caffe"): RGB -> BGR, minus
        # the ImageNet BGR means, no scaling.
        normalization=Normalization(mean=(103.939, 116.779, 123.68), bgr=True),
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_url="https://storage.googleapis.com/tensorflow/keras-applications/"
        "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "efficientnetb0": BackboneInfo(
        name="efficientnetb0",
        application="EfficientNetB0",
        feature_layer="top_activation",
        channels=1280,
        stage_prefixes={
            "conv1": ("rescaling", "normalization", "stem_", "block1"),
            "conv2": ("block2",),
            "conv3": ("block3",),
            "conv4": ("block4", "block5"),
            "conv5": ("block6", "block7", "top_"),
        },
        normalization=Normalization(),
        weights_file="efficientnetb0_notop.h5",
        weights_url="https://storage.googleapis.com/keras-applications/"
        "efficientnetb0_notop.h5",
    ),
    "convnext_tiny": BackboneInfo(
        name="convnext_tiny",
        application="ConvNeXtTiny",
        # The head-less application ends in an auto-named LayerNormalization.
        feature_layer=r"^layer_normalization(_\d+)?$",
        channels=768,
        stage_prefixes={
            "conv1": (_CNX + "prestem", _CNX + "stem"),
            "conv2": (_CNX + "stage_0",),
            "conv3": (_CNX + "downsampling_block_0", _CNX + "stage_1"),
            "conv4": (_CNX + "downsampling_block_1", _CNX + "stage_2"),
            "conv5": (
                _CNX + "downsampling_block_2",
                _CNX + "stage_3",
                r"^layer_normalization(_\d+)?$",
            ),
        },
        normalization=Normalization(),
        weights_file="convnext_tiny_notop.h5",
        weights_url="https://storage.googleapis.com/tensorflow/keras-applications/"
        "convnext/convnext_tiny_notop.h5",
    ),
}


def backbone_info(name: str) -> BackboneInfo:
    """The registry entry for backbone ``name``; a `UserError` naming the choices."""
    if name not in BACKBONES:
        from keras_art.errors import UserError

        raise UserError(
            f"Unknown backbone {name!r}. Choose one of: {', '.join(BACKBONES)}."
        )
    return BACKBONES[name]
