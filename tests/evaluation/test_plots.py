"""Evaluation figures: valid PNGs of sensible size, the right curve markers, galleries
that survive unreadable images."""

import csv
import math

import numpy as np
import pytest
from PIL import Image

from keras_art.evaluation.plots import (
    confusion_order,
    curve_markers,
    plot_confusion_matrix,
    plot_gallery,
    plot_reliability,
    plot_training_curves,
    read_history,
)

STYLES = [
    "Abstract_Expressionism",
    "Action_painting",
    "Analytical_Cubism",
    "Art_Nouveau_Modern",
    "Baroque",
    "Color_Field_Painting",
    "Contemporary_Realism",
    "Cubism",
    "Early_Renaissance",
    "Expressionism",
    "Fauvism",
    "High_Renaissance",
    "Impressionism",
    "Mannerism_Late_Renaissance",
    "Minimalism",
    "Naive_Art_Primitivism",
    "New_Realism",
    "Northern_Renaissance",
    "Pointillism",
    "Pop_Art",
    "Post_Impressionism",
    "Realism",
    "Rococo",
    "Romanticism",
    "Symbolism",
    "Synthetic_Cubism",
    "Ukiyo_e",
]
GREY = (191, 191, 191)  # the "unreadable" tile (0.75 grey)


def synthetic_confusion(num_classes, seed=0):
    rng = np.random.default_rng(seed)
    confusion = np.zeros((num_classes, num_classes), dtype=int)
    for i in range(num_classes):
        p = rng.dirichlet(np.full(num_classes, 0.2))
        p[i] += rng.uniform(0.5, 3.0)
        confusion[i] = rng.multinomial(int(rng.integers(20, 300)), p / p.sum())
    return confusion


def write_history(path, *, epochs=12, stage_change=4, lr_drop=8, best=9):
    """A history.csv as `HistoryLogger` writes it: head LR steps down (plateau) at
    ``lr_drop``, the backbone unfreezes (stage 2) at ``stage_change``, val macro-F1
    peaks at ``best``."""
    rows = []
    for e in range(1, epochs + 1):
        lr = 1e-3 if e < lr_drop else 1e-4
        stage = 1 if e < stage_change else 2
        val_f1 = 0.55 - 0.04 * abs(e - best) - (0.01 if e > best else 0.0)
        rows.append(
            {
                "epoch": e,
                "epoch_time_s": 12.5,
                "learning_rate": lr,
                "loss": 2.5 * math.exp(-e / 4) + 0.3,
                "lr_backbone": lr / 10 if stage == 2 else 0.0,
                "lr_head": lr,
                "macro_f1": 0.9 - 0.8 * math.exp(-e / 4),
                "stage": stage,
                "top1": 0.5,
                "val_loss": 0.9 + 0.02 * (e - best) ** 2,
                "val_macro_f1": val_f1,
                "val_top1": 0.5,
            }
        )
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_images(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    files = []
    for k in range(count):
        h, w = (int(x) for x in rng.integers(120, 360, size=2))
        pixels = (rng.random((h, w, 3)) * 255).astype("uint8")
        file = folder / f"painting_{k}.jpg"
        Image.fromarray(pixels).save(file)
        files.append(file)
    return files


def open_png(path):
    assert path.is_file() and path.stat().st_size > 0
    image = Image.open(path)
    assert image.format == "PNG"
    image.load()
    return image


def grey_pixels(image):
    pixels = np.asarray(image.convert("RGB"))
    return int(np.all(pixels == GREY, axis=-1).sum())


# --- confusion matrix ------------------------------------------------------------


def test_confusion_canvas_grows_with_classes(tmp_path):
    big = plot_confusion_matrix(
        synthetic_confusion(27), STYLES, tmp_path / "cm27.png", title="style"
    )
    small = plot_confusion_matrix(
        synthetic_confusion(4), STYLES[:4], tmp_path / "cm4.png", title="genre"
    )
    big_image, small_image = open_png(big), open_png(small)
    # 6 in minimum at 100 dpi, plus labels; 27 classes at 0.45 in each is larger.
    assert min(small_image.size) >= 600
    assert big_image.size[0] > small_image.size[0] + 300
    assert big_image.size[1] > small_image.size[1] + 300
    assert big_image.size[0] >= 27 * 45


def test_confusion_order_sorts_by_recall_then_support():
    confusion = np.array([[1, 9, 0], [0, 10, 0], [5, 0, 5]])  # recall .1, 1, .5
    assert confusion_order(confusion) == [1, 2, 0]
    assert confusion_order(confusion, "none") == [0, 1, 2]
    tie = np.array([[2, 2], [4, 4]])  # same recall: larger support first
    assert confusion_order(tie) == [1, 0]
    with pytest.raises(ValueError, match="sort="):
        confusion_order(confusion, "alphabetical")


def test_confusion_matrix_odd_names_and_empty_rows(tmp_path):
    names = ["$x$ <b>&'\"", "Dürer_Ã¼", "empty"]
    confusion = np.array([[3, 1, 0], [2, 2, 0], [0, 0, 0]])  # a class with no support
    open_png(plot_confusion_matrix(confusion, names, tmp_path / "odd.png"))


def test_confusion_matrix_rejects_mismatched_names(tmp_path):
    with pytest.raises(ValueError, match="3 class names"):
        plot_confusion_matrix(np.eye(4), ["a", "b", "c"], tmp_path / "x.png")


# --- training curves -------------------------------------------------------------


def test_curve_markers_finds_plateau_drop_stage_change_and_best(tmp_path):
    rows = read_history(write_history(tmp_path / "history.csv"))
    assert curve_markers(rows) == {"lr_drops": [8], "stage_changes": [4], "best": 9}


def test_curve_markers_loss_monitor_is_minimised(tmp_path):
    rows = read_history(write_history(tmp_path / "history.csv", best=6))
    assert curve_markers(rows, monitor="val_loss")["best"] == 6
    assert curve_markers(rows, monitor="val_macro_f1")["best"] == 6


def test_curve_markers_ignore_cosine_decay():
    # Cosine to zero over 10 epochs: falls > 30 % per epoch near the end, but
    # never after or before a flat stretch, so it is not a plateau step.
    rows = [
        {"epoch": e, "learning_rate": 1e-3 * 0.5 * (1 + math.cos(math.pi * e / 10))}
        for e in range(0, 11)
    ]
    assert curve_markers(rows)["lr_drops"] == []


def test_curve_markers_consecutive_steps_and_missing_columns():
    lrs = [1e-3, 1e-3, 1e-3, 1e-3, 1e-4, 1e-5, 1e-5]
    rows = [{"epoch": e + 1, "learning_rate": lr} for e, lr in enumerate(lrs)]
    assert curve_markers(rows)["lr_drops"] == [5, 6]
    bare = [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}]
    assert curve_markers(bare) == {"lr_drops": [], "stage_changes": [], "best": None}


def test_read_history_turns_empty_cells_into_nan(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_macro_f1\n1,0.5,\n2,0.4,0.3\n")
    rows = read_history(path)
    assert math.isnan(rows[0]["val_macro_f1"])
    assert curve_markers(rows)["best"] == 2


def test_plot_training_curves_writes_png(tmp_path):
    history = write_history(tmp_path / "history.csv")
    image = open_png(plot_training_curves(history, tmp_path / "curves.png"))
    width, height = image.size
    assert width >= 1200 and height >= 450  # two panels side by side


def test_plot_training_curves_without_markers(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n1,1.0,1.2\n2,0.8,1.1\n")
    open_png(plot_training_curves(path, tmp_path / "curves.png"))


def test_reliability_diagram_before_and_after(tmp_path):
    from keras_art.evaluation.calibration import calibration_report

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(5, 0.3), 200)
    labels = rng.integers(0, 5, 200)
    both = calibration_report(labels, probs, 1.7, "test")
    width, height = open_png(plot_reliability(both, tmp_path / "a.png")).size
    assert width >= 1200 and height >= 700  # two columns: before, after
    one = calibration_report(labels, probs, None, "no val split")
    assert open_png(plot_reliability(one, tmp_path / "b.png")).size[0] < width / 1.6


# --- galleries -------------------------------------------------------------------


def test_gallery_marks_missing_and_corrupt_images(tmp_path):
    files = write_images(tmp_path, 3)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    items = [
        {"file": str(f), "caption": f"true: {STYLES[k]}\npred: {STYLES[-k - 1]} (0.9)"}
        for k, f in enumerate(files)
    ]
    readable = open_png(plot_gallery(items, tmp_path / "ok.png", title="Top losses"))
    items += [
        {"file": str(tmp_path / "missing.jpg"), "caption": "missing"},
        {"file": str(corrupt), "caption": "corrupt"},
        {"file": None, "caption": "no file"},
    ]
    mixed = open_png(plot_gallery(items, tmp_path / "mixed.png", title="Top losses"))
    assert grey_pixels(readable) < 500  # the odd noise pixel, no tile
    # Three grey tiles of roughly 200 x 200 px each (minus the "unreadable" text).
    assert grey_pixels(mixed) > 3 * 150 * 150


def test_gallery_grid_grows_by_rows(tmp_path):
    files = write_images(tmp_path, 10)
    items = [{"file": str(f), "caption": f"image {k}"} for k, f in enumerate(files)]
    one_row = open_png(plot_gallery(items[:4], tmp_path / "four.png", columns=4))
    three_rows = open_png(plot_gallery(items, tmp_path / "ten.png", columns=4))
    assert three_rows.size[0] == one_row.size[0]
    assert three_rows.size[1] > 2.5 * one_row.size[1] - 100
    long_caption = [{"file": str(files[0]), "caption": "word " * 40}]
    tall = open_png(plot_gallery(long_caption, tmp_path / "long.png", columns=4))
    short = open_png(plot_gallery(items[:1], tmp_path / "short.png", columns=4))
    assert tall.size[1] > short.size[1]  # wrapped caption gets its own room


def test_gallery_empty_and_bad_columns(tmp_path):
    open_png(plot_gallery([], tmp_path / "empty.png", title="Audit"))
    with pytest.raises(ValueError, match="columns"):
        plot_gallery([], tmp_path / "x.png", columns=0)
