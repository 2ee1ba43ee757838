"""Each seed preset against what its seed states (issue #21).

One table per preset: ``(dotted config key, expected value, the seed's words)``. The
third field is one of:

- a short quote of the seed (documentation only: the tests never read the seeds,
  which a user's clone does not have);
- `NOT_STATED`: the seed names no such step, so the preset has none (no clipping,
  no MixUp, ...);
- ``Sub("phrase")``: a value the seed does not give, or that keras_art cannot do as
  the seed did; the preset's docstring must say so, with ``phrase`` in its
  "Substitutions" part.

Changing a listed preset value fails here until the table (and for a substitution
the docstring) changes with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np
import pytest

from keras_art.config import PRESETS, get_preset
from keras_art.data.catalog.subset import select_subset
from keras_art.data.sources.best_artworks import read_best_artworks_dir
from keras_art.errors import UserError
from tests.data.fixtures import write_jpeg

NOT_STATED = "(the seed names none, so there is none)"


@dataclass(frozen=True)
class Sub:
    """A substitution: ``phrase`` must be in the docstring's Substitutions part."""

    phrase: str


# ---------------------------------------------------------------- seed 000
SEED000 = [
    ("model.backbone", "resnet50", "Selected ResNet-50 backbone"),
    (
        "model.head",
        "cnn_rnn",
        "ResNet50 → BiGRU (Row) + BiGRU (Column) → Attention Pooling → FC Layer",
    ),
    ("model.proj_dim", 320, "reduce channels from 2048 to 320"),
    ("model.gru_layers", 2, "a 2-layer bidirectional GRU"),
    ("model.gru_units", 256, "attention collapse into a 512-dimensional vector"),
    ("model.dropout", 0.3, Sub("dropout 0.3")),
    ("augment.image_size", 384, "RandomResizedCrop: for size 384"),
    ("augment.random_resized_crop", True, "RandomResizedCrop: for size 384"),
    ("augment.crop_scale", [0.35, 1.0], Sub("crop scale 0.35-1")),
    ("augment.scale_jitter", [0.8, 1.2], Sub("scale jitter 0.8-1.2")),
    ("augment.hflip", True, "RandomHorizontalFlip: to safely double data variety"),
    ("augment.color_jitter", 0.2, Sub("colour jitter 0.2")),
    ("augment.hue_jitter", 0.02, Sub("hue 0.02")),
    ("augment.random_erasing", 0.25, Sub("erasing probability 0.25")),
    ("augment.eval_resize", "center_crop", Sub("evaluation on the central")),
    ("input.batch_size", 32, Sub("batch 32")),
    ("input.balanced_sampling", True, "Weighted sampler: on train_loader"),
    ("input.mixup_p", 0.35, "MixUp (p=0.35, α=0.3)"),
    ("input.mixup_alpha", 0.3, "MixUp (p=0.35, α=0.3)"),
    ("input.cutmix_p", 0.35, "CutMix (p=0.35, α=1.0)"),
    ("input.cutmix_alpha", 1.0, "CutMix (p=0.35, α=1.0)"),
    ("data.split", [0.8, 0.1, 0.1], Sub("the release's own train/val lists")),
    ("train.label_smoothing", 0.03, "Label smoothing (0.03)"),
    ("train.lr_head", 8e-4, "higher LR (8e-4) for new modules"),
    ("train.lr_backbone", 1.5e-4, "lower LR (1.5e-4) for unfrozen backbone"),
    ("train.weight_decay", 0.05, Sub("weight decay 0.05")),
    ("train.schedule", "cosine", "CosineAnnealingLR scheduler: (T_max=15"),
    ("train.cosine_t_max_epochs", 15, "(T_max=15, eta_min=1e-6)"),
    ("train.eta_min", 1e-6, "(T_max=15, eta_min=1e-6)"),
    ("train.epochs", 15, Sub("15 epochs")),
    ("train.unfreeze_epoch", 3, Sub("unfreeze at epoch 3")),
    ("train.unfreeze_from", "conv3", Sub("from conv3")),
    ("train.early_stopping_patience", 0, Sub("no early stopping")),
    ("train.clipnorm", 1.0, "Gradient clipping: (max_norm=1.0)"),
    ("train.mixed_precision", "auto", "Automatic Mixed Precision (AMP)"),
]

# ---------------------------------------------------------------- seed 001
SEED001_ARTISTS = [
    "Pablo Picasso",
    "Rembrandt",
    "Alfred Sisley",
    "Titian",
    "Amedeo Modigliani",
    "Andy Warhol",
    "Frida Kahlo",
    "Andrei Rublev",
    "Piet Mondrian",
    "Jackson Pollock",
]
SEED001 = [
    ("data.classes", SEED001_ARTISTS, "Pablo Picasso Cubism 439 ... Jackson Pollock"),
    ("data.top_n", None, "we select 10 artists whose works are the best ..."),
    ("data.split", [0.85, 0.15], "85% ... training group and 15% ... validation"),
    ("model.backbone", "resnet50", "ResNet-50 works the best"),
    ("model.weights", "imagenet", Sub("ImageNet weights")),
    ("model.head", "gap", Sub("global average pooling")),
    ("model.dense_units", [], Sub("no dense blocks")),
    ("augment.image_size", 224, Sub("224 px")),
    ("augment.random_resized_crop", True, Sub("RandomResizedCrop")),
    ("augment.crop_scale", [0.35, 1.0], Sub("scale 0.35-1")),
    ("augment.hflip", True, Sub("horizontal flip")),
    ("augment.eval_resize", "center_crop", Sub("central square")),
    ("augment.color_jitter", 0.0, NOT_STATED),
    ("augment.random_erasing", 0.0, NOT_STATED),
    ("augment.scale_jitter", [1.0, 1.0], NOT_STATED),
    ("input.batch_size", 32, "we use a small batch size of 32"),
    ("input.mixup_p", 0.0, NOT_STATED),
    ("input.cutmix_p", 0.0, NOT_STATED),
    ("input.balanced_sampling", False, NOT_STATED),
    ("train.epochs", 50, "Each model will run 50 epochs"),
    ("train.unfreeze_epoch", 0, Sub("every layer trains from the first epoch")),
    ("train.unfreeze_from", "conv1", Sub("every layer trains from the first epoch")),
    ("train.lr_head", 8e-4, "The initial learning rate is set as 0.0008"),
    ("train.lr_backbone", 8e-4, "The initial learning rate is set as 0.0008"),
    ("train.weight_decay", 0.01, "with weight decay as 0.01"),
    ("train.schedule", "constant", Sub("a constant LR")),
    ("train.label_smoothing", 0.0, NOT_STATED),
    ("train.early_stopping_patience", 0, "Each model will run 50 epochs"),
    ("train.clipnorm", 0.0, NOT_STATED),
    ("train.mixed_precision", "off", NOT_STATED),
]

# ---------------------------------------------------------------- seed 002
# ---------------------------------------------------------------- seed 002
SEED002 = [
    ("data.top_n", 10, "top 10 artists with the most artwork"),
    ("data.max_per_class", 200, Sub("200 of each top-10 artist")),
    ("data.split", [0.8, 0.2], "Data was split 80/20 train/validation"),
    ("augment.image_size", 224, "the images were resized to 224x224"),
    ("augment.eval_resize", "resize", "resized to 224x224"),
    ("augment.random_resized_crop", False, "resized to 224x224"),
    ("augment.color_jitter", 0.0, "rotating within a range of 30 degrees"),
    ("augment.hflip", True, "flipped horizontally and vertically"),
    ("augment.vflip", True, "flipped horizontally and vertically"),
    ("input.batch_size", 32, "a batch size of 32"),
    ("model.head", "gap", "GlobalAveragePooling2D"),
    ("train.lr_head", 1e-4, Sub("Adam at 1e-4")),
    ("train.schedule", "plateau", "learning rate reduction (ReduceLROnPlateau)"),
    ("train.plateau_patience", 4, "by a factor of .1 if the F1 score failed"),
    ("train.plateau_factor", 0.1, "multiplied the learning rate by a factor of .1"),
    ("train.early_stopping_patience", 10, Sub("plateau patience 10 cannot both hold")),
    ("train.epochs", 120, Sub("at 50 at most")),
    ("train.clipnorm", 0.0, Sub("no gradient clipping")),
    ("train.mixed_precision", "off", Sub("no mixed precision")),
    ("train.stages.0.augment.rotation", 30.0, "rotating within a range of 30"),
    ("train.stages.0.augment.zoom", [0.5, 1.5], ".5 zoom (.5-1.5 of the original"),
    ("train.stages.1.trains", "head", "Freezing the entire ResNet layer"),
    ("train.stages.1.epochs", 40, "An additional 40 epochs of training"),
    ("train.stages.1.augment.vflip", True, "flipped horizontally and vertically"),
    ("train.stages.2.trains", "all", "the ResNet layer was unfrozen"),
    ("train.stages.2.epochs", 30, "learning rate of 1E-7 for 30 epochs"),
    ("train.stages.2.lr_backbone", 1e-7, "learning rate of 1E-7 for 30 epochs"),
    ("train.stages.2.lr_head", 1e-7, "learning rate of 1E-7 for 30 epochs"),
]

SEED003_SHARED = [
    ("model.backbone", "resnet50", "ResNet50: Total params: 24,033,604"),
    ("model.head", "gap", "AdaptiveAvgPool2d-67 ... Linear-68 [32, 256]"),
    ("model.dense_units", [256], "Linear-68 [32, 256] ReLU-69 Dropout-70 Linear-71"),
    ("model.dense_batchnorm", False, "Linear-68, ReLU-69, Dropout-70, Linear-71"),
    ("augment.image_size", 224, "CenterCrop (size=224)"),
    (
        "augment.random_resized_crop",
        True,
        "RandomResizedCrop (size=256, scale=(0.8, 1.0))",
    ),
    ("augment.center_crop_from", 256, "RandomResizedCrop (size=256, ...)"),
    ("augment.crop_scale", [0.8, 1.0], "scale=(0.8, 1.0)"),
    ("augment.crop_ratio", [0.75, 1.3333], "RandomResizedCrop (torchvision ratio)"),
    ("augment.rotation", 15.0, "RandomRotation (degrees=15)"),
    ("augment.hflip", True, "RandomHorizontalFlip (... default probability of 50%)"),
    ("augment.vflip", False, NOT_STATED),
    ("augment.scale_jitter", [1.0, 1.0], NOT_STATED),
    ("augment.color_jitter", 0.0, NOT_STATED),
    ("augment.random_erasing", 0.0, NOT_STATED),
    ("augment.eval_resize", "center_crop", Sub("central square is resized to 224")),
    ("input.batch_size", 32, "Input Size: [32, 3, 224, 224]"),
    ("input.mixup_p", 0.0, NOT_STATED),
    ("input.cutmix_p", 0.0, NOT_STATED),
    ("input.balanced_sampling", False, NOT_STATED),
    ("train.unfreeze_epoch", -1, "Trainable params: 525,572"),
    ("train.weight_decay", 0.0, Sub("weight decay 0")),
    ("train.schedule", "constant", NOT_STATED),
    ("train.label_smoothing", 0.0, "Negative Loss Likelihood (NLLLoss)"),
    ("train.early_stopping_patience", 0, NOT_STATED),
    ("train.clipnorm", 0.0, NOT_STATED),
    ("train.mixed_precision", "off", NOT_STATED),
]
SEED003 = [
    *SEED003_SHARED,
    (
        "data.classes",
        [
            "vincent-van-gogh",
            "nicholas-roerich",
            "pierre-auguste-renoir",
            "claude-monet",
        ],
        "four major artists: Vincent Van Gogh, Nicholas Roerich, Pierre Auguste "
        "Renoir, Claude Monet",
    ),
    ("data.split", [0.6, 0.2, 0.2], "Train 3865 / Validation 1288 / Test 1289"),
    ("data.split_sizes", [], "Train 3865 / Validation 1288 / Test 1289"),
    ("model.dense_dropout", 0.3, "Best accuracy using ResNet18: Dropout = 0.3"),
    ("train.lr_head", 1e-5, "Learning rate = $1e-5$"),
    ("train.epochs", 7, "Epoch: 7/7"),
]
SEED003_SAMPLE = [
    *SEED003_SHARED,
    ("data.classes", [], "Sampled a subset due to dataset size."),
    ("data.split", [0.6, 0.2, 0.2], "Train data size: 5000 ... Test data size: 1667"),
    (
        "data.split_sizes",
        [5000, 1667, 1667],
        "Train data size: 5000 / Validation data size: 1667 / Test data size: 1667",
    ),
    ("data.drop_unknown", True, Sub("dropped (``data.drop_unknown``)")),
    ("model.dense_dropout", 0.4, "Results on a subset ...: dropout = 0.4"),
    ("train.lr_head", 1e-4, "learning rate = $1e-4$"),
    ("train.epochs", 5, "Epoch: 5/5"),
]

# ---------------------------------------------------------------- seed 004
SEED004 = [
    ("data.top_n", 31, "from a total of 31 artists"),
    ("data.classes", [], Sub("the 31 with the most images")),
    ("data.split", [0.8, 0.2], "20,80 splits for the test and train sets"),
    ("model.backbone", "resnet50", "ResNet-50 ... (default)"),
    ("model.head", "gap", Sub("linear layer on global average pooling")),
    ("model.dense_units", [], Sub("linear layer on global average pooling")),
    ("augment.image_size", 224, "resized to 224x224 with the use of padding"),
    ("augment.eval_resize", "letterbox", "resized to 224x224 with the use of padding"),
    ("augment.random_resized_crop", False, "resized to 224x224 with ... padding"),
    ("augment.hflip", True, "RandomHorizontalFlip True"),
    ("augment.vflip", False, NOT_STATED),
    ("augment.rotation", 10.0, "RandomRotation 10"),
    ("augment.color_jitter", 0.1, "ColorJitter 0.1, 0.1, 0.1"),
    ("augment.hue_jitter", 0.0, "ColorJitter 0.1, 0.1, 0.1"),
    ("augment.random_erasing", 0.0, NOT_STATED),
    ("augment.scale_jitter", [1.0, 1.0], NOT_STATED),
    ("input.batch_size", 32, "Batch size 32"),
    ("input.mixup_p", 0.0, NOT_STATED),
    ("input.cutmix_p", 0.0, NOT_STATED),
    ("input.balanced_sampling", False, NOT_STATED),
    ("train.epochs", 20, "Epochs 20*"),
    ("train.unfreeze_epoch", 0, "finetune them with our data"),
    ("train.unfreeze_from", "conv1", "Early layers: 1e-6"),
    ("train.lr_head", 1e-3, "Final layer: 1e-3"),
    ("train.lr_backbone", 1e-5, "Intermediate layers: 1e-5"),
    ("train.lr_groups", {"conv1": 1e-6, "conv2": 1e-6}, Sub('"early" = conv1-conv2')),
    ("train.weight_decay", 0.0, Sub("Adam = AdamW with weight decay 0")),
    ("train.schedule", "constant", NOT_STATED),
    ("train.label_smoothing", 0.0, NOT_STATED),
    ("train.early_stopping_patience", 5, "did not approve for 5 consecutive epochs"),
    ("train.clipnorm", 0.0, NOT_STATED),
    ("train.mixed_precision", "off", NOT_STATED),
]
_BASELINE_CHANGES = [
    ("train.epochs", 10, "*Baseline fitting was done on 10 epochs"),
    ("train.unfreeze_epoch", -1, "a pretrained ResNet50 model with only its output"),
    ("train.lr_groups", {}, "with only its output layer changed"),
]
SEED004_BASELINE = [
    row for row in SEED004 if row[0] not in {key for key, _, _ in _BASELINE_CHANGES}
] + _BASELINE_CHANGES

TABLES = {
    "seed000": SEED000,
    "seed001": SEED001,
    "seed002": SEED002,
    "seed003": SEED003,
    "seed003-sample": SEED003_SAMPLE,
    "seed004": SEED004,
    "seed004-baseline": SEED004_BASELINE,
}
# What every seed states one way or another: a table must pin each of these.
COVERED = (
    "train.epochs",
    "train.lr_head",
    "input.batch_size",
    "augment.image_size",
    "data.split",
    "model.head",
    "train.clipnorm",
    "train.mixed_precision",
)


def _value(cfg, dotted: str) -> Any:
    """``a.b.0.c``: attributes, list indices and dict keys."""

    def step(obj, part):
        if isinstance(obj, list):
            return obj[int(part)]
        if isinstance(obj, dict):
            return obj[part]
        return getattr(obj, part)

    return reduce(step, dotted.split("."), cfg)


ROWS = [(name, *row) for name, table in TABLES.items() for row in table]


@pytest.mark.parametrize(
    "preset,key,expected,says", ROWS, ids=[f"{r[0]}:{r[1]}" for r in ROWS]
)
def test_preset_holds_what_its_seed_states(preset, key, expected, says):
    assert _value(get_preset(preset), key) == expected, says


def test_every_seed_preset_has_a_table_covering_what_seeds_state():
    seeds = {name for name in PRESETS if name.startswith("seed")}
    assert seeds == set(TABLES)
    for name, table in TABLES.items():
        keys = [key for key, _, _ in table]
        assert len(keys) == len(set(keys)), name
        missing = [key for key in COVERED if key not in keys]
        assert not missing, f"{name}: no row for {missing}"
        augment = [k for k in keys if k.startswith("augment.") and "size" not in k]
        assert len(augment) >= 3, name
        assert all(says for _, _, says in table), name


def _substitutions(name: str) -> str:
    """The docstring's Substitutions part, plus that of a preset it refers to
    ("Substitutions: as ``seed004``")."""
    doc = " ".join(PRESETS[name].__doc__.split())
    assert "Substitutions" in doc, f"{name}: the docstring has no Substitutions part"
    part = doc.split("Substitutions", 1)[1]
    for other in re.findall(r"as ``(seed[\w-]+)``", part):
        part += " " + _substitutions(other)
    return part


@pytest.mark.parametrize("preset", sorted(TABLES))
def test_every_substitution_is_in_the_docstring(preset):
    part = _substitutions(preset)
    for key, _, says in TABLES[preset]:
        if isinstance(says, Sub):
            assert says.phrase in part, f"{preset}: {key} ({says.phrase!r})"
    doc = PRESETS[preset].__doc__
    assert f"--preset {preset} " in doc


def test_seed004_reports_its_tables_scores_with_bootstrap_intervals():
    # "Model Accuracy Precision Recall F1", recall equal to accuracy in every row:
    # the weighted scores. The evaluation gives each a 95% interval.
    from keras_art.evaluation.metrics import bootstrap_ci, classification_metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 80)
    probs = rng.dirichlet(np.ones(5), 80)
    probs[np.arange(50), labels[:50]] += 2.0
    ci = bootstrap_ci(labels, probs, n_resamples=50)
    point = classification_metrics(labels, probs, list("abcde"))
    assert point["weighted_recall"] == pytest.approx(point["top1"])
    for key in ("top1", "weighted_precision", "weighted_recall", "weighted_f1"):
        lo, hi = ci[key]
        assert lo <= point[key] <= hi, key


# ------------------------------------------------- seed 001's named artists
def _best_artworks(root, artists):
    """artists.csv (display names) and one image per artist folder
    (``Pablo_Picasso/Pablo_Picasso_1.jpg``), as the Kaggle release has them."""
    root.mkdir(parents=True)
    rows = ["id,name,years,genre,nationality,bio,wikipedia,paintings"]
    rows += [f"{i},{name},1900,Cubism,x,bio,w,1" for i, name in enumerate(artists)]
    (root / "artists.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for i, name in enumerate(artists):
        folder = name.replace(" ", "_")
        write_jpeg(root / "images" / "images" / folder / f"{folder}_1.jpg", seed=i)
    return read_best_artworks_dir(root)


def test_seed001_names_the_best_artworks_readers_classes(tmp_path):
    others = ["Vincent van Gogh", "Edgar Degas", "Albrecht Dürer"]
    catalog = _best_artworks(tmp_path / "ba", others + SEED001_ARTISTS[::-1])
    out, report = select_subset(
        catalog, "artist", classes=get_preset("seed001").data.classes
    )
    assert sorted(out.class_names["artist"]) == sorted(SEED001_ARTISTS)
    assert len(out) == 10 and not report["dropped_classes"]


def test_seed001_names_every_artist_the_data_lacks(tmp_path):
    present = [a for a in SEED001_ARTISTS if a not in ("Titian", "Andy Warhol")]
    catalog = _best_artworks(tmp_path / "ba", present)
    with pytest.raises(UserError) as err:
        select_subset(catalog, "artist", classes=get_preset("seed001").data.classes)
    message = str(err.value)
    assert message.startswith("data.classes: 2 of the 10 artist classes are unknown: ")
    assert "'Titian'" in message and "'Andy Warhol'" in message
