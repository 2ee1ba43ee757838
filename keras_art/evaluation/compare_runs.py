"""`compare`: runs and groups of repeats side by side, with paired tests.

    python -m keras_art.compare runs/gap runs/spp --layout seed002
    python -m keras_art.compare runs/artist-seeds-0-1-2 runs/other-run --out cmp/

Reads what each run already wrote (`keras_art.evaluation.compare_inputs`; a run
without a report for the split is evaluated first), computes every score with its
bootstrap interval and each entry's paired tests against the first
(`keras_art.evaluation.compare_results`), and writes ``out``: ``comparison.json``
(every number), ``report.md``, ``report.html`` and one PNG per figure. The folder is
built beside its place and renamed into it, replacing an earlier comparison there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from keras_art.atomic_files import atomic_dir, atomic_write_json
from keras_art.errors import ParameterError
from keras_art.evaluation import compare_plots
from keras_art.evaluation.compare_costs import entry_facts
from keras_art.evaluation.compare_inputs import Entry, common_tasks, load_entries
from keras_art.evaluation.compare_report import write_compare_reports
from keras_art.evaluation.compare_results import task_results
from keras_art.evaluation.compare_table import LAYOUT_TOP_K, check_layout
from keras_art.models.run_reader import SPLITS
from keras_art.registry import DEFAULT_TOP_K
from keras_art.run_dir import safe_name
from keras_art.user_input import check_output_folder, check_positive_int

logger = logging.getLogger(__name__)

COMPARISON_FILE = "comparison.json"  # marks a folder compare may replace
DEFAULT_OUT = "comparisons"
DENSE_BLOCK_HEADS = ("gap", "spp")


def compare(
    runs: Sequence[str | os.PathLike],
    *,
    split: str = "test",
    out: str | os.PathLike | None = None,
    layout: str = "default",
    top_k: int | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    measure: Callable | None = None,
) -> dict:
    """Compare ``runs`` (run directories or groups of repeats; the first is the
    baseline) on ``split`` and write the report to ``out`` (default
    ``comparisons/<name>-vs-<name>``); returns the ``comparison.json`` dict.

    ``layout``: ``default``, ``seed002`` or ``seed004`` (the seeds' tables). ``top_k``
    (default: 2 for seed002, else the registry's) is the top-k column; ``bootstrap``
    resamples with ``seed`` give the intervals and paired tests. ``measure`` counts
    parameters and GFLOPs (`keras_art.models.model_cost.measure_compute`)."""
    check_layout(layout)
    default_k = LAYOUT_TOP_K.get(layout, DEFAULT_TOP_K)
    k = check_positive_int(default_k if top_k is None else top_k, "top_k")
    check_positive_int(bootstrap, "bootstrap")
    if split not in SPLITS:
        raise ParameterError(f"{{split}} {split}: choose one of {', '.join(SPLITS)}.")
    folder = None if out is None else _out_folder(out)  # before any work
    entries = load_entries(runs, split, _evaluate)
    folder = folder or _default_out(entries)
    tasks = common_tasks(entries)
    logger.info(
        "compare: %s on %s, %d resamples",
        ", ".join(e.name for e in entries),
        split,
        bootstrap,
    )
    result = _result(entries, tasks, split, layout, k, bootstrap, seed, measure)
    with atomic_dir(folder, replace=True) as staging:
        images = _figures(staging, entries, result)
        atomic_write_json(staging / COMPARISON_FILE, result)
        write_compare_reports({**result, "images": images}, staging)
    result["out"] = str(folder)
    logger.info("compare: report in %s", folder / "report.html")
    return result


def _evaluate(run, split: str) -> None:
    from keras_art.evaluation.evaluate_run import evaluate

    evaluate(run, split=split)


def _default_out(entries: list[Entry]) -> Path:
    folder = Path(DEFAULT_OUT) / safe_name("-vs-".join(e.name for e in entries))
    return _out_folder(folder)


def _out_folder(out) -> Path:
    folder = check_output_folder(out, "out")
    earlier = (folder / COMPARISON_FILE).is_file()
    if folder.is_dir() and any(folder.iterdir()) and not earlier:
        raise ParameterError(
            f"{{out}} {folder}: holds other files. Pass a new or empty folder (an "
            "earlier comparison there is replaced)."
        )
    return folder


def _result(entries, tasks, split, layout, k, bootstrap, seed, measure) -> dict:
    import keras_art

    first = entries[0].runs[0]
    per_task = {
        task: task_results(entries, task, top_k=k, n_resamples=bootstrap, seed=seed)
        for task in tasks
    }
    return {
        "split": split,
        "split_note": first.metrics.get("split_note", ""),
        "n_images": per_task[tasks[0]]["n"],
        "layout": layout,
        "top_k": k,
        "bootstrap": {"n_resamples": bootstrap, "seed": seed, "level": 0.95},
        "baseline": entries[0].name,
        "entries": [_entry_info(e) for e in entries],
        "facts": entry_facts(entries, measure),
        "tasks": per_task,
        "keras_art_version": keras_art.__version__,
    }


def _entry_info(entry: Entry) -> dict:
    cfg = entry.runs[0].config
    model = cfg.get("model") or {}
    return {
        "name": entry.name,
        "path": str(entry.path),
        "group": entry.group,
        "runs": [str(r.run) for r in entry.runs],
        "seeds": [r.seed for r in entry.runs] if entry.group else [],
        "head": model.get("head"),
        "backbone": model.get("backbone"),
        # Only the gap and spp heads have dense blocks (seed 002's Dense 1, 2).
        "dense_units": (
            list(model.get("dense_units") or [])
            if model.get("head") in DENSE_BLOCK_HEADS
            else None
        ),
        "image_size": entry.runs[0].image_size,
    }


def _figures(staging: Path, entries: list[Entry], result: dict) -> dict:
    images = {}
    curves = [
        (e.name, [compare_plots.read_history_rows(r.run.history) for r in e.runs])
        for e in entries
    ]
    if any(rows for _, histories in curves for rows in histories):
        images["curves"] = compare_plots.plot_overlaid_curves(
            curves, staging / "curves.png"
        ).name
    for task, t in result["tasks"].items():
        stem = "" if len(result["tasks"]) == 1 else f"_{task}"
        named = [(e["name"], e) for e in t["entries"]]
        if len(named) > 1:
            images[f"f1_deltas_{task}"] = compare_plots.plot_f1_deltas(
                t["classes"],
                (named[0][0], named[0][1]["per_class_f1"]),
                [(n, e["per_class_f1"]) for n, e in named[1:]],
                staging / f"f1_deltas{stem}.png",
                title=f"{task}: per-class F1 against {named[0][0]}",
            ).name
        images[f"confusion_{task}"] = [
            p.name
            for p in compare_plots.plot_confusions(
                [(n, e["confusion"]) for n, e in named],
                t["classes"],
                staging,
                f"confusion{stem}",
            )
        ]
    return images
