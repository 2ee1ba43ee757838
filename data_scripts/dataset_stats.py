"""``python -m data_scripts.dataset_stats``: class counts and image sizes of a dataset.

    python -m data_scripts.dataset_stats --task artist --out stats/sample
    python -m data_scripts.dataset_stats --data /data/wikiart-release --task style \\
        --out stats/wikiart-style

Writes ``class_distribution_<task>.png`` (one horizontal bar per class, so 27+ class
names stay readable), ``image_sizes.png`` (width vs height, as in seed 002's figure),
``counts.csv`` (task, class, count per official split and in total), ``sizes.csv``
and ``stats.json``, and prints the counts as a markdown table. Sizes come from the
image headers (Pillow reads no pixels), on at most ``--max-images`` images.

Every image is also scanned as training scans it (the same cache, so either run
makes the other's scan free): ``stats.json``'s ``near_duplicates`` lists the groups
of near-duplicate images (`keras_art.data.catalog.near_duplicates`), with how many
span the source's own splits. Data a run would refuse or trim is named in
``warnings``: a task with fewer than 2 classes, classes with fewer images than
splits. A dataset with no readable image stops with one line (exit 2).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from data_scripts._common import DATA_FLAGS, add_data_flags, config_from_args
from keras_art.atomic_files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from keras_art.cli import ArgumentParser, run_command
from keras_art.config import TASK_CHOICES, DataConfig
from keras_art.errors import ParameterError
from keras_art.markdown import markdown_table


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m data_scripts.dataset_stats",
        description="Class distribution, image sizes and a counts table.",
    )
    add_data_flags(p)
    p.add_argument(
        "--task", choices=TASK_CHOICES, help="label (default: the config's, artist)"
    )
    p.add_argument("--out", required=True, help="folder for the plots and tables")
    p.add_argument(
        "--max-images",
        type=int,
        default=5000,
        help="images whose size is read (a seeded random subset; default 5000)",
    )
    return p


def dataset_stats(
    data_cfg: DataConfig, task: str, out: str, max_images: int = 5000
) -> dict[str, Any]:
    """Write the plots and tables for ``task`` (``"multi"``: every task) into
    ``out``; return the numbers they show."""
    from keras_art.data.sources import load_catalog

    if max_images < 1:
        raise ParameterError(
            f"{{max_images}} must be at least 1. Received: {max_images}"
        )
    catalog = load_catalog(data_cfg, task)
    tasks = catalog.tasks if task == "multi" else (task,)
    missing = [t for t in tasks if t not in catalog.labels]
    if missing:
        raise ParameterError(
            f"this dataset has no {missing[0]} labels; choose {{task}} from: "
            f"{', '.join(catalog.tasks)}."
        )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = _splits(catalog)
    rows, stats = [], {"source": catalog.source, "images": len(catalog), "tasks": {}}
    if data_cfg.validate:
        stats["near_duplicates"] = _near_duplicates(catalog, data_cfg, splits)
    for t in tasks:
        per_split, task_rows, stats["tasks"][t] = _task_counts(catalog, t, splits)
        rows += task_rows
        names = catalog.class_names[t]
        _bar_chart(out_dir / f"class_distribution_{t}.png", t, names, per_split)
    _write_csv(out_dir / "counts.csv", rows)

    sizes = _image_sizes(catalog.files, max_images)
    _write_csv(
        out_dir / "sizes.csv",
        [{"file": f, "width": w, "height": h} for f, (w, h) in sizes.items()],
    )
    _size_scatter(out_dir / "image_sizes.png", list(sizes.values()))
    if sizes:
        stats["sizes"] = _size_stats(sizes, min(len(catalog), max_images))
    stats["table"] = rows
    stats["warnings"] = _class_warnings(catalog, tasks, len(data_cfg.split))
    atomic_write_json(out_dir / "stats.json", stats)
    return stats


def _near_duplicates(catalog, data_cfg: DataConfig, splits: np.ndarray) -> dict:
    """Scan every image (through the scan cache) and group near-duplicates; the
    report, with the groups that span more than one of the source's splits."""
    from keras_art.data.catalog.input_checks import require_readable
    from keras_art.data.catalog.near_duplicates import group_near_duplicates
    from keras_art.data.catalog.validate import scan_images

    scan = scan_images(catalog.files, cache_dir=data_cfg.cache_dir)
    require_readable(scan, catalog.files, data_cfg.path or catalog.source)
    ok = np.flatnonzero(scan.ok)
    distance = data_cfg.near_duplicate_distance
    keys, report = group_near_duplicates(
        [catalog.files[i] for i in ok],
        [scan.hashes[i] for i in ok],
        [scan.phashes[i] if distance is not None else [] for i in ok],
        -1 if distance is None else distance,
    )
    spans: dict[str, set] = {}
    for key, split in zip(keys, splits[ok], strict=True):
        spans.setdefault(key, set()).add(split)
    report["groups_across_splits"] = sum(len(s) > 1 for s in spans.values())
    report["max_distance"] = distance  # None: byte-identical files only
    report["unreadable"] = len(scan.excluded)
    return report


def _class_warnings(catalog, tasks, n_splits: int) -> list[str]:
    """What a training run would refuse (a task with fewer than 2 classes) or drop
    (classes with fewer images than ``n_splits``)."""
    from keras_art.data.catalog.input_checks import MIN_CLASSES

    warnings = []
    for t in tasks:
        counts, names = catalog.counts(t), catalog.class_names[t]
        present = np.flatnonzero(counts > 0)
        if len(present) < MIN_CLASSES:
            shown = ", ".join(names[i] for i in present) or "none"
            warnings.append(
                f"{t}: images of {len(present)} class ({shown}); training needs at "
                f"least {MIN_CLASSES} classes per task and refuses this data."
            )
        small = [i for i in present if counts[i] < n_splits]
        if small:
            shown = ", ".join(f"{names[i]}: {counts[i]}" for i in small[:10])
            warnings.append(
                f"{t}: {len(small)} class(es) with fewer images than the {n_splits} "
                f"splits ({shown}); training drops them (data.small_classes=drop) "
                f"or stops (error)."
            )
    return warnings


def _task_counts(catalog, task: str, splits: np.ndarray):
    """``task``'s class counts per split; its ``counts.csv`` rows (one a class) and
    its ``stats.json`` entry."""
    lab = catalog.labels[task]
    names = catalog.class_names[task]
    per_split = {
        s: np.bincount(lab[(lab >= 0) & (splits == s)], minlength=len(names))
        for s in sorted(set(splits.tolist()))
    }
    total = catalog.counts(task)
    rows = [
        {"task": task, "class": name, "index": i}
        | {s: int(c[i]) for s, c in per_split.items()}
        | {"total": int(total[i])}
        for i, name in enumerate(names)
    ]
    nonzero = total[total > 0]
    entry = {
        "classes": len(names),
        "labelled": int(total.sum()),
        "unlabelled": int((lab < 0).sum()),
        "largest_to_smallest": float(nonzero.max() / nonzero.min())
        if len(nonzero)
        else None,
    }
    return per_split, rows, entry


def _size_stats(sizes: dict[str, tuple[int, int]], sampled: int) -> dict[str, Any]:
    """Medians and the portrait share of the measured ``sizes``, of ``sampled``
    images tried."""
    wh = np.asarray(list(sizes.values()), dtype=float)
    return {
        "measured": len(wh),
        "unreadable": int(sampled - len(wh)),
        "median_width": float(np.median(wh[:, 0])),
        "median_height": float(np.median(wh[:, 1])),
        "portrait_fraction": float(np.mean(wh[:, 1] > wh[:, 0])),
    }


def _splits(catalog) -> np.ndarray:
    if catalog.official_split is None:
        return np.full(len(catalog), "all", dtype=object)
    return np.asarray([s or "unsplit" for s in catalog.official_split], dtype=object)


def _image_sizes(files: list[str], max_images: int) -> dict[str, tuple[int, int]]:
    from PIL import Image

    idx = np.arange(len(files))
    if len(files) > max_images:
        idx = np.sort(np.random.default_rng(0).choice(idx, max_images, replace=False))
    sizes = {}
    for i in idx:
        try:
            with Image.open(files[i]) as im:  # lazy: parses the header only
                sizes[files[i]] = im.size
        except (OSError, ValueError):  # unreadable files are the validator's job
            continue
    return sizes


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r)) or ["file"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _bar_chart(path: Path, task: str, names, per_split: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Horizontal bars, one row per class, sized to the class count: long names fit.
    n = len(names)
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.32 * n + 1.2)))
    left = np.zeros(n)
    for split, counts in per_split.items():
        ax.barh(np.arange(n), counts, left=left, label=split)
        left += counts
    for y, total in enumerate(left):
        ax.text(total, y, f" {int(total)}", va="center", fontsize=8)
    ax.set_yticks(np.arange(n), [str(s).replace("_", " ") for s in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.set_title(f"{task}: images per class")
    if len(per_split) > 1:
        ax.legend(loc="lower right")
    fig.tight_layout()
    atomic_write_bytes(path, _figure_bytes(fig))
    plt.close(fig)


def _size_scatter(path: Path, sizes: list[tuple[int, int]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    if sizes:
        wh = np.asarray(sizes)
        ax.scatter(wh[:, 0], wh[:, 1], s=6, alpha=0.4)
        top = wh.max() * 1.05
        ax.plot([0, top], [0, top], "k--", lw=0.8, label="square")
        ax.legend(loc="upper left")
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title(f"Image sizes ({len(sizes)} images)")
    fig.tight_layout()
    atomic_write_bytes(path, _figure_bytes(fig))
    plt.close(fig)


def counts_table(rows: list[dict]) -> str:
    """The counts rows as a markdown table: task and class, then the counts."""
    if not rows:
        return ""
    fields = list(dict.fromkeys(k for r in rows for k in r if k != "index"))
    cells = [[r.get(f, "") for f in fields] for r in rows]
    names = sum(f in ("task", "class") for f in fields)  # the leading columns
    return markdown_table(fields, cells, name_columns=names)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    stats = dataset_stats(cfg.data, cfg.task, args.out, args.max_images)
    print(counts_table(stats["table"]))
    for t, s in stats["tasks"].items():
        print(
            f"{t}: {s['classes']} classes, {s['labelled']} labelled, "
            f"largest/smallest {s['largest_to_smallest']:.1f}"
        )
    near = stats.get("near_duplicates")
    if near:
        print(
            f"near-duplicates: {near['groups']} groups of {near['rows_in_groups']} "
            f"images (largest {near['largest_group']}; {near['groups_across_splits']} "
            f"groups span the source's splits; max distance {near['max_distance']})"
        )
    for warning in stats["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Wrote plots and tables to {args.out}")
    return 0


# The library's parameter names and config keys -> this script's flags.
FLAGS = {**DATA_FLAGS, "max_images": "--max-images"}


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _main(argv), flags=FLAGS)


if __name__ == "__main__":
    raise SystemExit(main())
