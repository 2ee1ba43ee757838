"""The comparison's figures, one PNG each: overlaid training curves, per-class F1
differences against the baseline, and confusion matrices in one class order.

Drawn like `keras_art.evaluation.plots` (headless Agg, atomic writes, text sized to
read at 100 %), one colour per compared entry.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from keras_art.evaluation import plots

COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
)


def read_history_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """``history.csv`` as text rows (``[]`` when missing): the ``stage`` column may
    hold numbers or names, so it is compared as written, never parsed."""
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def stage_changes(rows: list[dict[str, str]]) -> list[tuple[int, str, str]]:
    """``(epoch, stage before, stage after)`` wherever ``stage`` changes value."""
    out = []
    for i in range(1, len(rows)):
        before, after = rows[i - 1].get("stage"), rows[i].get("stage")
        if before not in (None, "") and after not in (None, "") and before != after:
            out.append((_epoch(rows[i], i), before, after))
    return out


def _epoch(row: dict[str, str], index: int) -> int:
    try:
        return int(float(row.get("epoch", "")))
    except ValueError:
        return index + 1


def _series(rows: list[dict[str, str]], column: str) -> tuple[np.ndarray, np.ndarray]:
    epochs = np.array([_epoch(r, i) for i, r in enumerate(rows)], np.float64)
    values = []
    for row in rows:
        try:
            values.append(float(row.get(column, "")))
        except ValueError:
            values.append(math.nan)
    return epochs, np.array(values, np.float64)


def _mean_series(histories: list[list[dict]], column: str):
    """Per epoch, the mean and sd of ``column`` over the repeats that ran it."""
    by_epoch: dict[float, list[float]] = {}
    for rows in histories:
        for epoch, value in zip(*_series(rows, column), strict=True):
            if np.isfinite(value):
                by_epoch.setdefault(epoch, []).append(value)
    epochs = np.array(sorted(by_epoch))
    mean = np.array([np.mean(by_epoch[e]) for e in epochs])
    sd = np.array([np.std(by_epoch[e]) for e in epochs])
    return epochs, mean, sd


def plot_overlaid_curves(
    entries: list[tuple[str, list[list[dict]]]], path: str | os.PathLike
) -> Path:
    """Loss and macro-F1 per epoch: train solid, val dashed, one colour per entry
    (``(name, [history rows per repeat])``; a group draws its repeats' mean with a
    band of one sd); dotted lines in the entry's colour where its stage changes
    (its first repeat's)."""
    plt = plots.pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(14, 5.8), layout="constrained")
    handles = []
    for n, (name, histories) in enumerate(entries):
        colour = COLOURS[n % len(COLOURS)]
        for ax, metric in zip(axes, ("loss", "macro_f1"), strict=True):
            _draw_entry(ax, histories, metric, colour)
        label = name + (f" (mean of {len(histories)})" if len(histories) > 1 else "")
        handles.append(Line2D([], [], color=colour, linewidth=2, label=label))
    for ax, title in zip(axes, ("loss (cross-entropy)", "macro-F1"), strict=True):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=14)
        ax.set_xlabel("epoch", fontsize=12)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=11)
    handles += [
        Line2D([], [], color="black", linestyle="-", label="train"),
        Line2D([], [], color="black", linestyle="--", label="val"),
        Line2D([], [], color="black", linestyle=":", label="stage change"),
    ]
    fig.suptitle("Training curves", fontsize=15)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        fontsize=11,
        ncol=min(len(handles), 4),
        frameon=False,
    )
    return plots.save_figure(fig, path)


def _draw_entry(ax, histories: list[list[dict]], metric: str, colour: str) -> None:
    """One entry's train and val ``metric`` (mean over repeats, a band of one sd
    for a group) and its first repeat's stage changes."""
    for column, style in ((metric, "-"), (f"val_{metric}", "--")):
        epochs, mean, sd = _mean_series(histories, column)
        if not epochs.size:
            continue
        ax.plot(
            epochs, mean, style, color=colour, marker="o", markersize=3, linewidth=2
        )
        if len(histories) > 1:
            ax.fill_between(
                epochs, mean - sd, mean + sd, color=colour, alpha=0.15, linewidth=0
            )
    for epoch, _, _ in stage_changes(histories[0] if histories else []):
        ax.axvline(epoch, color=colour, linestyle=":", linewidth=1.8)


def plot_f1_deltas(
    class_names: list[str],
    baseline: tuple[str, list[float]],
    others: list[tuple[str, list[float]]],
    path: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """Per class, each entry's F1 minus the baseline's, as horizontal bars (sorted
    by the first entry's difference, largest gain on top)."""
    plt = plots.pyplot()
    base = np.asarray(baseline[1], np.float64)
    deltas = [np.asarray(f1, np.float64) - base for _, f1 in others]
    order = np.argsort(-deltas[0], kind="stable")[::-1]
    n, k = len(class_names), len(others)
    height = 0.8 / k
    fig, ax = plt.subplots(
        figsize=(10, max(3.5, 0.4 * n * max(1, k / 2) + 1.5)), layout="constrained"
    )
    for j, ((name, _), delta) in enumerate(zip(others, deltas, strict=True)):
        ys = np.arange(n) + (j - (k - 1) / 2) * height
        label = f"{plots.plain_text(name)} \u2212 {plots.plain_text(baseline[0])}"
        colour = COLOURS[(j + 1) % len(COLOURS)]
        ax.barh(ys, delta[order], height=height, color=colour, label=label)
    ax.set_yticks(range(n), [plots.plain_text(class_names[i]) for i in order])
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlabel("\u0394 F1 (per class)", fontsize=12)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(labelsize=11)
    ax.legend(fontsize=11, loc="best")
    ax.set_title(
        plots.plain_text(title) or "Per-class F1 against the baseline", fontsize=14
    )
    return plots.save_figure(fig, path)


def plot_confusions(
    confusions: list[tuple[str, list[list[int]]]],
    class_names: list[str],
    folder: Path,
    stem: str,
) -> list[Path]:
    """One row-normalised matrix per entry, every one in the baseline's class order
    (its recall, best first), so cells line up between the images side by side."""
    order = plots.confusion_order(confusions[0][1], "recall")
    note = f"sorted by {confusions[0][0]}'s recall, best first"
    return [
        plots.plot_confusion_matrix(
            confusion, class_names, folder / f"{stem}_{n + 1}.png",
            title=name, order=order, order_note=note,
        )
        for n, (name, confusion) in enumerate(confusions)
    ]  # fmt: skip
