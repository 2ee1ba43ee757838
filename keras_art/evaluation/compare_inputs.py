"""What `compare` compares: runs and groups of repeats, read from their folders.

Each argument is a finished run directory or a group (``group.json`` with its
``seed-<seed>/`` runs, written by ``python -m keras_art.train --seeds``). Every run
is read from what it already wrote: ``eval/<split>/predictions.npz`` and
``metrics.json`` (a run without them is evaluated first), ``summary.json``,
``config.json``, ``history.csv``. All runs must have been evaluated on the same
images with the same labels and classes, or the comparison stops with one line
naming the two runs that differ. Errors name ``runs`` (the arguments) and
``split``; commands render them as their flags.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_art.errors import ParameterError
from keras_art.evaluation.prediction_file import SplitPredictions, read_predictions
from keras_art.models.model_record import read_model_record
from keras_art.run_dir import (
    CONFIG_FILE,
    GROUP_FILE,
    GroupDir,
    RunDir,
    open_finished,
)

logger = logging.getLogger(__name__)


@dataclass
class ComparedRun:
    """One finished run and what it wrote for the compared split."""

    run: RunDir
    predictions: SplitPredictions  # aligned to the comparison's image order
    metrics: dict  # eval/<split>/metrics.json
    summary: dict
    config: dict
    class_names: dict[str, list[str]]
    image_size: int
    seed: int | None = None  # the repeat's seed within a group


@dataclass
class Entry:
    """One column of the comparison: a run, or a group of repeats."""

    name: str
    path: Path
    runs: list[ComparedRun]
    group: bool

    def __post_init__(self):
        self.path = Path(self.path)


def resolve(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, list, bool]]:
    """``(path, [(RunDir, seed)...], is_group)`` per argument; one `ParameterError`
    for an unknown path, a group with fewer than two finished repeats, a path given
    twice or nothing to compare."""
    if not paths:
        raise ParameterError("{runs}: pass at least two runs, or a group of repeats.")
    seen, out = {}, []
    for given in paths:
        path = Path(given).expanduser()
        key = path.resolve()
        if key in seen:
            raise ParameterError(f"{{runs}} {given}: given twice. Pass each once.")
        seen[key] = given
        out.append(_resolve_one(path, given))
    if len(out) == 1 and not out[0][2]:
        raise ParameterError(
            f"{{runs}} {paths[0]}: one run has nothing to compare with. Pass at "
            "least two runs, or a group of repeats."
        )
    return out


def _resolve_one(path: Path, given) -> tuple[Path, list, bool]:
    group = GroupDir(path)
    if group.is_group():
        seeds = [int(s) for s in group.read_manifest()["seeds"]]
        if len(seeds) < 2:
            raise ParameterError(
                f"{{runs}} {given}: a group with one run ({GROUP_FILE} seeds {seeds})"
                " has no spread to show. Pass the run itself, or train more repeats."
            )
        for seed in seeds:
            run = group.run(seed)
            if not run.is_finished():
                raise ParameterError(
                    f"{{runs}} {given}: repeat {run.name} is unfinished. Re-run the "
                    "group's train command to finish it."
                )
        return path, [(group.run(s), s) for s in seeds], True
    if not path.exists():
        raise ParameterError(
            f"{{runs}} {given}: no such run or group. Pass run directories or groups "
            "that python -m keras_art.train printed."
        )
    if not RunDir(path).is_run():
        raise ParameterError(
            f"{{runs}} {given}: neither a run directory (no {CONFIG_FILE}) nor a group "
            f"of repeats (no {GROUP_FILE})."
        )
    return path, [(open_finished(path), None)], False


def load_entries(
    paths: Sequence[str | os.PathLike],
    split: str,
    evaluate: Callable[[RunDir, str], object],
) -> list[Entry]:
    """The entries ``paths`` name, each run read for ``split``; ``evaluate(run,
    split)`` writes the report of a run that lacks it. Checks that every run saw
    the same images, labels and classes."""
    resolved = resolve(paths)
    names = _names([path for path, _, _ in resolved])
    entries = []
    for name, (path, runs, group) in zip(names, resolved, strict=True):
        loaded = [_load_run(run, seed, split, evaluate) for run, seed in runs]
        entries.append(Entry(name, path, loaded, group))
    _align_images(entries, split)
    return entries


def _names(paths: list[Path]) -> list[str]:
    """Folder names; a name two paths share gets its parent's name in front."""
    names = [p.name or str(p) for p in paths]
    for i, p in enumerate(paths):
        if names.count(p.name) > 1:
            names[i] = f"{p.parent.name}/{p.name}"
    return names


def _load_run(run: RunDir, seed, split: str, evaluate) -> ComparedRun:
    if not (
        run.eval_predictions(split).is_file() and run.eval_metrics(split).is_file()
    ):
        logger.info(
            "compare: %s has no %s report with predictions; evaluating it first",
            run,
            split,
        )
        evaluate(run, split)
    record = read_model_record(run)
    return ComparedRun(
        run=run,
        predictions=read_predictions(run.eval_predictions(split)),
        metrics=run.read_eval_metrics(split),
        summary=run.read_summary(),
        config=run.read_config(),
        class_names={t: list(record.class_names[t]) for t in record.tasks},
        image_size=int(record.image_size),
        seed=seed,
    )


def _align_images(entries: list[Entry], split: str) -> None:
    """Put every run's predictions in the first run's image order; a
    `ParameterError` naming both runs when images, labels or classes differ."""
    first = entries[0].runs[0]
    order = {f: i for i, f in enumerate(first.predictions.files)}
    for entry in entries:
        for other in entry.runs:
            if other is first:
                continue
            _check_same_images(first, other, order, split)
            pos = np.array([order[f] for f in other.predictions.files])
            inverse = np.argsort(pos)
            p = other.predictions
            other.predictions = SplitPredictions(
                files=list(first.predictions.files),
                labels={t: v[inverse] for t, v in p.labels.items()},
                probs={t: v[inverse] for t, v in p.probs.items()},
            )
            _check_same_labels(first, other, split)


def _check_same_images(first, other, order, split) -> None:
    files = other.predictions.files
    if len(files) == len(order) and all(f in order for f in files):
        return
    common = sum(f in order for f in files)
    raise ParameterError(
        f"{{runs}}: {first.run} and {other.run} were evaluated on different "
        f"{{split}} {split} images ({len(order)} and {len(files)} images, {common} in "
        "common). Compare runs trained on the same data with the same data.split_seed."
    )


def _check_same_labels(first, other, split) -> None:
    for task in set(first.class_names) & set(other.class_names):
        if first.class_names[task] != other.class_names[task]:
            raise ParameterError(
                f"{{runs}}: {first.run} and {other.run} have different {task} classes "
                f"({len(first.class_names[task])} and "
                f"{len(other.class_names[task])}). Compare runs trained on the same "
                "classes."
            )
        a, b = first.predictions.labels.get(task), other.predictions.labels.get(task)
        if a is not None and b is not None and not np.array_equal(a, b):
            raise ParameterError(
                f"{{runs}}: {first.run} and {other.run} label {int((a != b).sum())} "
                f"{{split}} {split} images differently ({task}). Compare runs "
                "trained on the same data."
            )


def common_tasks(entries: list[Entry]) -> list[str]:
    """The tasks every run was evaluated on, in the first run's order."""
    runs = [run for entry in entries for run in entry.runs]
    tasks = [
        t
        for t in runs[0].predictions.labels
        if all(t in r.predictions.labels for r in runs)
    ]
    if not tasks:
        raise ParameterError(
            "{runs}: the runs share no task (e.g. an artist run and a style run). "
            "Compare runs of the same task."
        )
    return tasks
