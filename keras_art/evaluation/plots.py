"""Evaluation figures as PNG files: confusion matrix, training curves, image galleries,
reliability diagrams.

Every function draws with matplotlib's headless Agg backend (selected when it is
called, never at import), writes one PNG atomically to ``path``, closes its figure
and returns the path. Text sizes are chosen so the figures read without zooming at
100 % in a browser.
"""

from __future__ import annotations

import csv
import io
import math
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.atomic_files import atomic_write_bytes
from keras_art.registry import MONITOR_METRIC

DPI = 100
LR_DROP_RATIO = 0.3  # a drop of more than 30 % between two epochs is a "step"
_FLAT_TOLERANCE = 0.01  # neighbouring epochs within 1 % count as the same LR
THUMBNAIL_PX = 200


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _text(value: Any) -> str:
    """Literal text for matplotlib: a ``$`` would otherwise start mathtext."""
    return str(value).replace("$", r"\$")


def _save(fig, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


# The helpers other figure modules draw with (`keras_art.evaluation.compare_plots`).
pyplot, save_figure, plain_text = _pyplot, _save, _text


# --------------------------------------------------------------------------------
# Confusion matrix


def confusion_order(confusion, sort: str = "recall") -> list[int]:
    """Row/column order of the classes in the plotted matrix.

    ``"recall"``: best recognised class first (ties: larger support first, then
    index), so the weak classes gather at the bottom right; ``"none"``: index order.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    n = confusion.shape[0]
    if sort == "none":
        return list(range(n))
    if sort != "recall":
        raise ValueError(f"sort must be 'recall' or 'none'. Received: sort={sort!r}")
    support = confusion.sum(axis=1)
    recall = np.divide(np.diag(confusion), support, out=np.zeros(n), where=support > 0)
    return sorted(range(n), key=lambda i: (-recall[i], -support[i], i))


def plot_confusion_matrix(
    confusion,
    class_names: list[str],
    path: str | os.PathLike,
    *,
    title: str = "",
    sort: str = "recall",
    order: list[int] | None = None,
    order_note: str = "",
) -> Path:
    """Row-normalised confusion matrix (rows = true class, values = share of the row).

    Classes are sorted by recall, best first (see `confusion_order`), or in
    ``order`` (class indices, e.g. another matrix's order, ``order_note`` saying
    which, so matrices drawn side by side line up); the y labels
    carry each class's support. The canvas grows with the number of classes (0.45 in
    per class, at least 6 in) and cells show the percentage (blank for 0) up to 30
    classes.
    """
    plt = _pyplot()
    confusion = np.asarray(confusion, dtype=np.float64)
    n = len(class_names)
    if confusion.shape != (n, n):
        raise ValueError(
            f"confusion must be ({n}, {n}) for {n} class names. "
            f"Received: shape={confusion.shape}"
        )
    order = confusion_order(confusion, sort) if order is None else list(order)
    matrix = confusion[np.ix_(order, order)]
    support = matrix.sum(axis=1)
    rates = np.divide(
        matrix, support[:, None], out=np.zeros_like(matrix), where=support[:, None] > 0
    )
    names = [_text(class_names[i]) for i in order]
    fig, ax = plt.subplots(figsize=_confusion_figsize(names), layout="constrained")
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    _label_confusion_axes(ax, names, support)
    if n <= 30:
        _write_cell_percentages(ax, rates)
    heading = _text(title) if title else "Confusion matrix"
    sorted_note = order_note or (
        "sorted by recall, best first" if sort == "recall" else "index order"
    )
    ax.set_title(
        f"{heading}\nrow-normalised, cells in % of the true class; {sorted_note}",
        fontsize=13,
    )
    bar = fig.colorbar(image, ax=ax, fraction=0.035, pad=0.02, format="{x:.0%}")
    bar.set_label("share of the true class", fontsize=11)
    return _save(fig, path)


def _confusion_figsize(names: list[str]) -> tuple[float, float]:
    """A square matrix of 0.45 in per class (at least 6 in) plus room for the
    rotated x and the left y labels."""
    longest = max((len(s) for s in names), default=1)
    label_in = min(0.09 * longest + 0.6, 3.5)  # room for the rotated/left labels
    side = max(6.0, 0.45 * len(names))
    # Rotated x labels take ~sin(50 deg) of their length in height.
    return (side + label_in + 1.0, side + 0.8 * label_in + 1.0)


def _label_confusion_axes(ax, names: list[str], support: np.ndarray) -> None:
    """Class names on both axes (support on the y labels), axis titles and a thin
    white grid between the cells."""
    n = len(names)
    label_size = 11 if n <= 30 else 9
    ax.set_xticks(range(n), names, rotation=50, ha="right", rotation_mode="anchor")
    ax.set_yticks(
        range(n), [f"{name} ({int(s)})" for name, s in zip(names, support, strict=True)]
    )
    ax.tick_params(labelsize=label_size, length=2)
    ax.set_xlabel("predicted class", fontsize=12)
    ax.set_ylabel("true class (support)", fontsize=12)
    # Thin white grid between cells makes rows easy to follow across a wide matrix.
    ax.set_xticks(np.arange(-0.5, n), minor=True)
    ax.set_yticks(np.arange(-0.5, n), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)


def _write_cell_percentages(ax, rates: np.ndarray) -> None:
    """Each non-zero cell's share in whole percent (blank when it rounds to 0)."""
    n = rates.shape[0]
    cell_size = 10 if n > 15 else 12
    for r in range(n):
        for c in range(n):
            value = rates[r, c]
            if round(100 * value) == 0:  # keep the matrix uncluttered
                continue
            ax.text(
                c,
                r,
                f"{100 * value:.0f}",
                ha="center",
                va="center",
                fontsize=cell_size,
                color="white" if value > 0.55 else "black",
            )


# --------------------------------------------------------------------------------
# Training curves


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """``history.csv`` as rows of floats (empty or non-numeric cells become NaN)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        parsed = {}
        for key, value in row.items():
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError):
                parsed[key] = math.nan
        out.append(parsed)
    return out


def _column(rows, name) -> np.ndarray:
    return np.array([row.get(name, math.nan) for row in rows], dtype=np.float64)


def _epochs(rows) -> np.ndarray:
    epochs = _column(rows, "epoch")
    if np.isnan(epochs).any():
        return np.arange(1, len(rows) + 1, dtype=np.float64)
    return epochs


def _lr_column(rows) -> str | None:
    for name in ("learning_rate", "lr_head", "lr"):
        if any(not math.isnan(row.get(name, math.nan)) for row in rows):
            return name
    return None


def _same_lr(a: float, b: float) -> bool:
    return abs(a - b) <= _FLAT_TOLERANCE * max(abs(a), abs(b))


def curve_markers(
    rows: list[dict[str, float]],
    *,
    monitor: str = MONITOR_METRIC,
    drop_ratio: float = LR_DROP_RATIO,
) -> dict[str, Any]:
    """Epochs (1-based, from the ``epoch`` column) to mark on the training curves.

    ``lr_drops``: the first epoch at a learning rate more than ``drop_ratio`` below
    the previous epoch's, counted only for step-like drops (the LR was flat just
    before or stays flat just after), so a cosine decay, which falls every epoch,
    marks nothing. ``stage_changes``: the first epoch of a new ``stage``. ``best``:
    the epoch with the best ``monitor`` (max; min for ``*loss``; first on ties),
    None when the column is missing.
    """
    epochs = [int(e) for e in _epochs(rows)]
    markers: dict[str, Any] = {"lr_drops": [], "stage_changes": [], "best": None}
    lr_name = _lr_column(rows)
    if lr_name is not None:
        lr = _column(rows, lr_name)
        for i in range(1, len(lr)):
            prev, cur = lr[i - 1], lr[i]
            if not (np.isfinite(prev) and np.isfinite(cur)) or prev <= 0:
                continue
            if cur >= (1.0 - drop_ratio) * prev:
                continue
            flat_before = i < 2 or _same_lr(lr[i - 2], prev)
            flat_after = i + 1 < len(lr) and _same_lr(lr[i + 1], cur)
            if flat_before or flat_after:
                markers["lr_drops"].append(epochs[i])
    stage = _column(rows, "stage")
    for i in range(1, len(stage)):
        both = np.isfinite(stage[i]) and np.isfinite(stage[i - 1])
        if both and stage[i] != stage[i - 1]:
            markers["stage_changes"].append(epochs[i])
    values = _column(rows, monitor)
    if np.isfinite(values).any():
        filled = np.where(np.isfinite(values), values, np.nan)
        index = (
            np.nanargmin(filled) if monitor.endswith("loss") else np.nanargmax(filled)
        )
        markers["best"] = epochs[int(index)]
    return markers


def _fmt_lr(value: float) -> str:
    return f"{value:.2g}"


def plot_training_curves(
    history_csv_path: str | os.PathLike,
    path: str | os.PathLike,
    *,
    monitor: str = MONITOR_METRIC,
) -> Path:
    """Loss and macro-F1 per epoch, train and val, from a run's ``history.csv``.

    Vertical markers (see `curve_markers`): red dashed where the learning rate
    stepped down, grey dotted where the training stage changed (e.g. the backbone
    was unfrozen), black solid at the best epoch of ``monitor``. Multi-task runs plot
    the overall (mean over tasks) columns.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    rows = read_history(history_csv_path)
    epochs = _epochs(rows)
    markers = curve_markers(rows, monitor=monitor)
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6), layout="constrained")
    colours = {"train": "tab:blue", "val": "tab:orange"}
    _plot_curve_panels(axes, rows, epochs, colours)
    handles = [
        Line2D([], [], color=colours["train"], marker="o", linewidth=2, label="train"),
        Line2D([], [], color=colours["val"], marker="o", linewidth=2, label="val"),
    ]
    index_of = {int(e): i for i, e in enumerate(epochs)}
    handles += _mark_lr_drops(axes, rows, markers["lr_drops"], index_of)
    handles += _mark_stage_changes(axes, rows, markers["stage_changes"], index_of)
    handles += _mark_best(axes, rows, markers["best"], index_of, monitor)
    fig.suptitle("Training curves", fontsize=15)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 3),
        fontsize=11,
        frameon=False,
    )
    return _save(fig, path)


def _plot_curve_panels(axes, rows, epochs: np.ndarray, colours) -> None:
    """Loss (left) and macro-F1 (right), the train and val columns that have values."""
    panels = (("loss", "loss (cross-entropy)"), ("macro_f1", "macro-F1"))
    for ax, (name, label) in zip(axes, panels, strict=True):
        for split, column in (("train", name), ("val", f"val_{name}")):
            values = _column(rows, column)
            if np.isfinite(values).any():
                ax.plot(
                    epochs,
                    values,
                    color=colours[split],
                    marker="o",
                    markersize=4,
                    linewidth=2,
                )
        ax.set_title(label, fontsize=14)
        ax.set_xlabel("epoch", fontsize=12)
        ax.tick_params(labelsize=11)
        ax.grid(alpha=0.3)
        if len(epochs) and len(epochs) <= 30:
            ax.set_xticks(epochs)


def _mark_lr_drops(axes, rows, drops: list[int], index_of) -> list:
    """A red dashed line at each LR drop epoch; their legend handles."""
    from matplotlib.lines import Line2D

    lr_name = _lr_column(rows)
    lr = _column(rows, lr_name) if lr_name else np.zeros(len(rows))
    handles = []
    for epoch in drops:
        i = index_of[epoch]  # a drop implies an LR column
        for ax in axes:
            ax.axvline(epoch, color="tab:red", linestyle="--", linewidth=1.6)
        change = f"{_fmt_lr(lr[i - 1])} \u2192 {_fmt_lr(lr[i])}"
        handles.append(
            Line2D(
                [],
                [],
                color="tab:red",
                linestyle="--",
                label=f"LR drop, epoch {epoch}: {change}",
            )
        )
    return handles


def _mark_stage_changes(axes, rows, changes: list[int], index_of) -> list:
    """A grey dotted line at each stage change epoch; their legend handles."""
    from matplotlib.lines import Line2D

    stage = _column(rows, "stage")
    handles = []
    for epoch in changes:
        i = index_of[epoch]
        for ax in axes:
            ax.axvline(epoch, color="dimgrey", linestyle=":", linewidth=2.2)
        handles.append(
            Line2D(
                [],
                [],
                color="dimgrey",
                linestyle=":",
                linewidth=2.2,
                label=f"stage {stage[i - 1]:g} \u2192 {stage[i]:g}, epoch {epoch}",
            )
        )
    return handles


def _mark_best(axes, rows, best: int | None, index_of, monitor: str) -> list:
    """A black line at the best epoch of ``monitor`` (if any); its legend handle."""
    from matplotlib.lines import Line2D

    if best is None:
        return []
    value = _column(rows, monitor)[index_of[best]]
    for ax in axes:
        ax.axvline(best, color="black", linestyle="-", linewidth=1.4, alpha=0.8)
    return [
        Line2D(
            [],
            [],
            color="black",
            linewidth=1.4,
            label=f"best epoch {best} ({_text(monitor)} = {value:.3f})",
        )
    ]


# --------------------------------------------------------------------------------
# Reliability diagram


def plot_reliability(
    calibration: dict, path: str | os.PathLike, *, title: str = ""
) -> Path:
    """Reliability diagrams with their confidence histograms, before and (when
    ``calibration["after"]``) after temperature scaling, side by side.

    ``calibration``: `keras_art.evaluation.calibration.calibration_report`'s dict.
    Top: per confidence bin, the accuracy (blue bars) against the diagonal of
    perfect calibration, the gap to the bin's mean confidence in red. Bottom: the
    share of images per bin, with the mean confidence and the accuracy marked.
    """
    plt = _pyplot()
    panels = [("before calibration (T = 1)", calibration["before"])]
    if calibration.get("after"):
        t = calibration["temperature"]
        label = f"after temperature scaling (T = {t:.2f})"
        panels.append((label, calibration["after"]))
    fig, axes = plt.subplots(
        2,
        len(panels),
        figsize=(6.2 * len(panels), 7.4),
        gridspec_kw={"height_ratios": [3, 1.2]},
        layout="constrained",
        squeeze=False,
    )
    for column, (label, m) in enumerate(panels):
        _reliability_panel(axes[0, column], m, label)
        _confidence_histogram(axes[1, column], m)
    fig.suptitle(_text(title) if title else "Reliability diagram", fontsize=15)
    return _save(fig, path)


def _reliability_panel(ax, m: dict, label: str) -> None:
    bins = m["bins"]
    edges = np.asarray(bins["edges"])
    width = np.diff(edges)
    acc = np.array([np.nan if a is None else a for a in bins["accuracy"]])
    conf = np.array([np.nan if c is None else c for c in bins["confidence"]])
    filled = np.isfinite(acc)
    ax.bar(
        edges[:-1][filled],
        acc[filled],
        width=width[filled],
        align="edge",
        color="#7fb0e6",
        edgecolor="navy",
        linewidth=0.8,
        label="accuracy",
    )
    ax.bar(
        edges[:-1][filled],
        (conf - acc)[filled],
        bottom=acc[filled],
        width=width[filled],
        align="edge",
        # Unfilled: where accuracy exceeds confidence the gap lies over the blue
        # bar and must not hide it.
        fill=False,
        edgecolor="tab:red",
        linewidth=1.0,
        hatch="///",
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], color="dimgrey", linestyle="--", label="perfect")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy", fontsize=12)
    ax.set_title(
        f"{label}\nECE {m['ece']:.3f}, classwise ECE {m['classwise_ece']:.3f}, "
        f"NLL {m['nll']:.3f}, Brier {m['brier']:.3f}",
        fontsize=12,
    )
    ax.legend(loc="upper left", fontsize=10)
    ax.tick_params(labelsize=10)
    ax.grid(alpha=0.3)


def _confidence_histogram(ax, m: dict) -> None:
    bins = m["bins"]
    edges = np.asarray(bins["edges"])
    count = np.asarray(bins["count"], np.float64)
    share = count / max(count.sum(), 1.0)
    ax.bar(
        edges[:-1],
        share,
        width=np.diff(edges),
        align="edge",
        color="tab:grey",
        edgecolor="black",
        linewidth=0.6,
    )
    conf = np.array([0.0 if c is None else c for c in bins["confidence"]])
    acc = np.array([0.0 if a is None else a for a in bins["accuracy"]])
    mean_conf = float((conf * count).sum() / max(count.sum(), 1.0))
    accuracy = float((acc * count).sum() / max(count.sum(), 1.0))
    ax.axvline(
        mean_conf,
        color="tab:red",
        linestyle="--",
        linewidth=1.6,
        label=f"mean confidence {mean_conf:.2f}",
    )
    ax.axvline(
        accuracy, color="tab:blue", linewidth=1.6, label=f"accuracy {accuracy:.2f}"
    )
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence (top probability)", fontsize=12)
    ax.set_ylabel("share of images", fontsize=11)
    ax.legend(loc="upper left", fontsize=9)
    ax.tick_params(labelsize=10)
    ax.grid(alpha=0.3)


# --------------------------------------------------------------------------------
# Galleries


def _thumbnail(source: str | os.PathLike | bytes | None) -> np.ndarray | None:
    """A thumbnail of an image file, or of its encoded ``bytes``; None if unreadable."""
    if not source:
        return None
    from PIL import Image

    try:
        with Image.open(
            io.BytesIO(source) if isinstance(source, bytes) else source
        ) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            return np.asarray(image)
    except (OSError, ValueError, SyntaxError):  # missing, truncated, not an image
        return None


def _wrap(caption: str, width: int = 30) -> list[str]:
    lines: list[str] = []
    for part in str(caption).splitlines() or [""]:
        lines += textwrap.wrap(part, width=width, break_long_words=True) or [""]
    return lines


def plot_gallery(
    items: list[dict],
    path: str | os.PathLike,
    *,
    title: str = "",
    columns: int = 4,
) -> Path:
    """Thumbnails (~200 px) in a grid with each item's caption under its image.

    ``items``: ``[{"file": image path, "caption": str}, ...]``; an item's
    ``"image"`` (encoded bytes, e.g. from TFRecord shards) is drawn instead of its
    file when present. Captions wrap at
    about 30 characters and every row reserves room for the longest caption, so
    captions never overlap. A missing or unreadable image becomes a grey tile
    marked "unreadable"; an empty list gives a small "no images" figure.
    """
    plt = _pyplot()
    if columns < 1:
        raise ValueError(f"columns must be >= 1. Received: columns={columns}")
    items = list(items)
    title_h = 0.6 if title else 0.1
    if not items:
        fig = plt.figure(figsize=(5, 1.5))
        fig.text(0.5, 0.6, _text(title), ha="center", fontsize=13)
        fig.text(0.5, 0.3, "no images", ha="center", fontsize=12, color="dimgrey")
        return _save(fig, path)
    captions = [_wrap(item.get("caption", "")) for item in items]
    caption_h = _LINE_H * max(len(c) for c in captions) + _PAD
    cols = min(columns, len(items))
    rows = math.ceil(len(items) / cols)
    row_h = _IMAGE_H + caption_h + _PAD
    width, height = cols * _CELL_W, rows * row_h + title_h
    fig = plt.figure(figsize=(width, height))
    if title:
        fig.text(
            0.5, 1 - 0.35 / height, _text(title), ha="center", va="center", fontsize=14
        )
    for k, (item, lines) in enumerate(zip(items, captions, strict=True)):
        r, c = divmod(k, cols)
        top = height - title_h - r * row_h
        _draw_tile(fig, item, lines, (c * _CELL_W, top), (width, height))
    return _save(fig, path)


# The gallery's layout, in inches: a cell's width, its image's height, a caption
# line's height, the padding below a caption.
_CELL_W, _IMAGE_H, _LINE_H, _PAD = 2.5, 2.2, 0.2, 0.15


def _draw_tile(fig, item: dict, lines: list[str], left_top, fig_size) -> None:
    """One item's thumbnail (or a grey "unreadable" tile) with its caption below,
    in the cell whose top-left corner is ``left_top`` (inches) of a ``fig_size``
    figure."""
    (cell_left, top), (width, height) = left_top, fig_size
    left = cell_left + 0.15
    ax = fig.add_axes(
        (
            left / width,
            (top - _IMAGE_H) / height,
            (_CELL_W - 0.3) / width,
            _IMAGE_H / height,
        )
    )
    ax.set_axis_off()
    thumb = _thumbnail(item.get("image") or item.get("file"))
    if thumb is None:
        ax.imshow(np.full((8, 8, 3), 0.75))
        ax.text(3.5, 3.5, "unreadable", ha="center", va="center", fontsize=11)
    else:
        ax.imshow(thumb, interpolation="lanczos")
    fig.text(
        (cell_left + _CELL_W / 2) / width,
        (top - _IMAGE_H - 0.08) / height,
        _text("\n".join(lines)),
        ha="center",
        va="top",
        fontsize=10,
        linespacing=1.25,
    )
