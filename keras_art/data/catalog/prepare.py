"""From a `Config` to the rows a run trains and evaluates on: the trainer's one call.

load_catalog -> keep rows labelled for the run's task(s) -> validate (scan, exclude,
convert, perceptual hashes) -> subset -> group near-duplicates -> stratified seeded
split (or a seeded sample of ``data.split_sizes`` images per split) -> drop classes
left empty.

Subsets (top_n, classes, min/max per class) select classes of ONE task, so they
need a single ``--task``; a multi-task run with a subset is a `UserError`.
Multi-task runs keep a row when any task labels it; an image that any task lists for
evaluation is never trained on (the WikiArt reader marks it "val"), and neither
identical bytes nor near-duplicates (`near_duplicates`) straddle splits.

Degenerate data stops with one line before any model exists: fewer than 2 classes
in a task (`input_checks.require_classes`), or no readable image at all
(`input_checks.require_readable`).
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from keras_art.data.catalog.input_checks import require_classes, require_readable
from keras_art.data.catalog.near_duplicates import group_near_duplicates
from keras_art.data.catalog.splits import SPLITS, assign_splits, content_hash
from keras_art.data.catalog.subset import select_subset
from keras_art.data.catalog.validate import scan_images
from keras_art.data.catalog_type import MISSING, Catalog
from keras_art.data.sources import load_catalog
from keras_art.data.sources.wikiart import MULTI_MOVED_PATTERN
from keras_art.errors import ParameterError, UserError
from keras_art.run_dir import RunDir

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """The rows of a run.

    Attributes:
        files: image paths (converted copies where validation converted a file).
        labels: task -> int64 labels, contiguous 0..C-1, -1 where missing.
        class_names: task -> names, index order.
        split: per row "train", "val" or "test".
        tasks: the tasks this run trains on.
        report: JSON-safe facts for ``data_report.json``.
    """

    files: list[str]
    labels: dict[str, np.ndarray]
    class_names: dict[str, list[str]]
    split: np.ndarray
    tasks: tuple[str, ...]
    report: dict = field(default_factory=dict)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of ``split`` ("train", "val" or "test")."""
        return np.flatnonzero(self.split == split)

    @property
    def num_classes(self) -> dict[str, int]:
        return {t: len(self.class_names[t]) for t in self.tasks}


def prepare_data(cfg) -> PreparedData:
    """Read, clean, subset and split the data ``cfg`` describes (see module doc)."""
    data = cfg.data
    catalog = load_catalog(data, task=cfg.task)
    tasks = _run_tasks(cfg.task, catalog)
    report: dict = {
        "source": catalog.source,
        "data_path": data.path,
        "tasks": list(tasks),
        "listed_rows": len(catalog),
    }
    catalog = _keep_labelled(catalog, tasks, report)
    require_classes(catalog, tasks)
    catalog, keys, converted = _scan(catalog, data, report)
    catalog, keys = _subset(catalog, keys, tasks, data, report)
    catalog, split, split_report = _split(catalog, keys, tasks, data, report)
    class_notes = _drop_empty_classes(catalog, tasks, split_report)
    require_classes(catalog, tasks, removed=class_notes)
    report.update(_report_after_split(catalog, split, split_report, tasks, data))
    report["converted"] = [{"file": f, "converted": c} for f, c in converted]
    report["notes"] = catalog.notes + class_notes
    if len(tasks) > 1:
        report["multi_task_moved_to_eval"] = _moved_to_eval(catalog.notes)
    if len(catalog) == 0 or not np.any(split == "train"):
        raise ParameterError(
            f"No training images left after validation, subset and split "
            f"({report['rows_without_label']} unlabelled, {len(catalog.excluded)} "
            f"excluded). Check {{data.path}} and the data.* settings."
        )
    return PreparedData(
        files=list(catalog.files),
        labels={t: catalog.labels[t] for t in tasks},
        class_names={t: list(catalog.class_names[t]) for t in tasks},
        split=split,
        tasks=tasks,
        report=report,
    )


def _keep_labelled(catalog: Catalog, tasks, report: dict) -> Catalog:
    labelled = np.zeros(len(catalog), dtype=bool)
    for t in tasks:
        labelled |= catalog.labels[t] >= 0
    report["rows_without_label"] = int(np.sum(~labelled))
    return catalog.take(labelled)


def _scan(catalog: Catalog, data, report: dict):
    """With ``data.validate``, drop unreadable rows and point converted ones at
    their copies. Returns ``(catalog, row keys, converted (file, copy) pairs)``;
    a row key is ``(content hash, perceptual hashes)`` (none without a scan).
    """
    if not data.validate:
        return catalog, _row_keys(_hashes(catalog.files), None), []

    scan = scan_images(catalog.files, cache_dir=data.cache_dir)
    require_readable(scan, catalog.files, data.path or catalog.source)
    keys = _row_keys(scan.hashes, scan.phashes)
    catalog.files = scan.files
    ok = np.array(scan.ok, dtype=bool)
    excluded = catalog.excluded + scan.excluded
    catalog = catalog.take(ok)
    catalog.excluded = excluded
    report["scan"] = {"checked": len(ok), "from_cache": scan.from_cache}
    return catalog, keys[ok], scan.converted


def _subset(catalog: Catalog, keys, tasks, data, report: dict):
    asked = (
        data.top_n
        or data.classes
        or data.min_per_class
        or (data.max_per_class is not None)
    )
    if not asked:
        return catalog, keys
    if len(tasks) > 1:
        raise ParameterError(
            "data.top_n/classes/min_per_class/max_per_class select classes of one "
            "task; use {task} artist|genre|style, or drop the subset for multi."
        )

    # Paths are unique per row (converted copies too), so they re-align the keys.
    key_of = dict(zip(catalog.files, keys, strict=False))
    catalog, report["subset"] = select_subset(
        catalog,
        tasks[0],
        top_n=data.top_n,
        classes=data.classes,
        min_per_class=data.min_per_class,
        max_per_class=data.max_per_class,
        seed=data.split_seed,
    )
    kept = np.empty(len(catalog), dtype=object)
    kept[:] = [key_of[f] for f in catalog.files]
    return catalog, kept


def _row_keys(hashes: list[str], phashes: list[list[str]] | None) -> np.ndarray:
    """Per row, ``(content hash, perceptual hashes)`` as one object array."""
    out = np.empty(len(hashes), dtype=object)
    out[:] = list(zip(hashes, phashes or [()] * len(hashes), strict=True))
    return out


def _group(catalog: Catalog, keys, data, report: dict) -> list[str]:
    """Per row, the key of its near-duplicate group (`group_near_duplicates`);
    the groups go to ``report["near_duplicates"]``."""
    content = [k[0] for k in keys]
    if data.near_duplicate_distance is None or not data.validate:
        why = "data.validate is off" if data.validate is False else "it is off"
        report["near_duplicates"] = {
            "skipped": f"{why}: only byte-identical files are grouped"
        }
        return content
    group_keys, report["near_duplicates"] = group_near_duplicates(
        catalog.files, content, [k[1] for k in keys], data.near_duplicate_distance
    )
    return list(group_keys)


def _split(catalog: Catalog, keys, tasks, data, report: dict):
    """Assign every row a split, near-duplicates together; rows given none
    (``""``) leave the catalog."""
    official = catalog.official_split if data.use_official_split else None
    if official is not None and not np.any(official != ""):
        official = None
    stratify = catalog.labels[_stratify_task(tasks)]
    split, split_report = assign_splits(
        _group(catalog, keys, data, report),
        stratify,
        data.split,
        data.split_seed,
        official=official,
        small_classes=data.small_classes,
        sizes=data.split_sizes or None,
        class_names=catalog.class_names[_stratify_task(tasks)],
    )
    keep = split != ""
    return catalog.take(keep), split[keep], split_report


def _report_after_split(
    catalog: Catalog, split, split_report: dict, tasks, data
) -> dict:
    return {
        "rows": len(catalog),
        "seed": data.split_seed,
        "split_fractions": list(data.split),
        **({"split_sizes": list(data.split_sizes)} if data.split_sizes else {}),
        "split_mode": split_report["mode"],
        "split_meaning": split_report["split_meaning"],
        # One line for summary.json: which split every reported number is on.
        "split_note": "; ".join(
            f"{k}: {v}" for k, v in split_report["split_meaning"].items()
        ),
        "splits": split_report,
        "counts": _counts(catalog, split, tasks),
        "excluded": [{"file": f, "reason": r} for f, r in catalog.excluded],
    }


def write_data_files(prepared: PreparedData, run_dir: str | os.PathLike) -> None:
    """Write ``classes.json``, ``splits.csv`` and ``data_report.json`` atomically."""
    run = RunDir(run_dir)
    run.write_classes(prepared.class_names)
    run.write_splits(
        prepared.tasks, (_split_row(prepared, i) for i in range(len(prepared.files)))
    )
    run.write_data_report(prepared.report)


def _split_row(prepared: PreparedData, i: int) -> tuple[str, list[str], str]:
    """Row ``i`` of ``splits.csv``: file, class name per task ("" when missing),
    split."""
    names = []
    for t in prepared.tasks:
        lab = prepared.labels[t][i]
        names.append(prepared.class_names[t][lab] if lab >= 0 else "")
    return prepared.files[i], names, prepared.split[i]


def _run_tasks(task: str, catalog: Catalog) -> tuple[str, ...]:
    if task == "multi":
        tasks = catalog.tasks
        if not tasks:
            raise UserError(f"The {catalog.source} data has no labels at all.")
        return tasks
    if task not in catalog.labels:
        raise ParameterError(
            f"{{task}} {task}: the {catalog.source} data has no {task} labels (it has "
            f"{', '.join(catalog.tasks) or 'none'}). Pick one of those tasks."
        )
    return (task,)


def _hashes(files: list[str]) -> list[str]:
    def one(path):
        try:
            return content_hash(path)
        except OSError:
            return f"unreadable:{path}"  # its own group; the pipeline will report it

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, files))


def _drop_empty_classes(catalog: Catalog, tasks, split_report: dict) -> list[str]:
    """Remove the classes left without images; notes naming them and why (too small
    to split, per ``split_report``, or no usable image)."""
    notes = []
    too_small = set(split_report.get("dropped_classes", ()))
    for t in tasks:
        names = catalog.class_names[t]
        counts = catalog.counts(t)
        empty = np.flatnonzero(counts == 0)
        if len(empty) == 0:
            continue
        kept = np.flatnonzero(counts > 0)
        remap = np.full(len(names), MISSING, dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        lab = catalog.labels[t]
        catalog.labels[t] = np.where(lab >= 0, remap[np.maximum(lab, 0)], MISSING)
        catalog.class_names[t] = [names[i] for i in kept]
        small = [i for i in empty if t == _stratify_task(tasks) and i in too_small]
        if small:
            notes.append(
                f"{t}: {len(small)} class(es) with fewer images than splits dropped "
                f"({', '.join(names[i] for i in small[:10])}; data.small_classes="
                f"drop, set it to error to stop instead)"
            )
            logger.warning("data: %s", notes[-1])
        if other := [i for i in empty if i not in small]:
            notes.append(
                f"{t}: {len(other)} class(es) with no usable images removed "
                f"({', '.join(names[i] for i in other[:10])})"
            )
    return notes


def _stratify_task(tasks) -> str:
    """The task whose classes the split stratifies (style when a run has it)."""
    return "style" if "style" in tasks else tasks[0]


def _counts(catalog: Catalog, split: np.ndarray, tasks) -> dict:
    out = {}
    for t in tasks:
        names = catalog.class_names[t]
        lab = catalog.labels[t]
        out[t] = {}
        for s in SPLITS:
            sel = lab[(split == s) & (lab >= 0)]
            per = np.bincount(sel, minlength=len(names))
            out[t][s] = {names[i]: int(per[i]) for i in range(len(names))}
    return out


def _moved_to_eval(notes: list[str]) -> int:
    for note in notes:
        match = re.search(MULTI_MOVED_PATTERN, note)
        if match:
            return int(match["n"])
    return 0
