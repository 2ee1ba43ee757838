"""A resumed run must see the data it started with: same classes, same splits.

Resuming re-reads the dataset; if a class appeared, vanished or was renamed, the
label indices would shift silently and the checkpoint's classifier would learn the
wrong classes. `check_same_data` compares the fresh preparation with the run's
``classes.json`` and ``splits.csv`` and stops with one line naming the difference.
"""

from __future__ import annotations

import os

from keras_art.errors import ParameterError
from keras_art.run_dir import CLASSES_FILE, RunDir


def check_same_data(prepared, run_dir: str | os.PathLike) -> None:
    """Raise a `ParameterError` naming ``run_dir`` unless ``prepared`` has the
    run's classes and splits."""
    run = RunDir(run_dir)
    _check_classes(prepared.class_names, run)
    _check_rows(prepared, run)


def _check_classes(class_names: dict, run_dir: RunDir) -> None:
    recorded = run_dir.read_classes()
    for task in sorted(set(recorded) | set(class_names)):
        before, now = recorded.get(task, []), class_names.get(task, [])
        if before == now:
            continue
        gone = [c for c in before if c not in now]
        new = [c for c in now if c not in before]
        detail = (
            f"missing now: {gone[:3]}; new: {new[:3]}"
            if gone or new
            else "same names in another order"
        )
        raise ParameterError(
            f"{{run_dir}} {run_dir}: the data no longer gives this run's {task} "
            f"classes ({len(before)} in {CLASSES_FILE}, {len(now)} now; {detail}). "
            f"Resume with the data and settings the run started with, or start a "
            f"new run."
        )


def _check_rows(prepared, run_dir: RunDir) -> None:
    # Paths with undecodable bytes compare exactly as written (`RunDir.read_splits`).
    recorded = {row["file"]: row for row in run_dir.read_splits()}
    changed = []
    for i, path in enumerate(prepared.files):
        row = recorded.pop(path, None)
        now = _row(prepared, i)
        if row is None or any(row.get(k, "") != v for k, v in now.items()):
            changed.append(path)
    if changed or recorded:
        example = changed[0] if changed else next(iter(recorded))
        raise ParameterError(
            f"{{run_dir}} {run_dir}: {len(changed)} file(s) are new or changed split "
            f"or label and {len(recorded)} of the run's file(s) are gone since it "
            f"started (e.g. {example}). Resume with the data the run started with, "
            f"or start a new run."
        )


def _row(prepared, i: int) -> dict[str, str]:
    """Row ``i`` as splits.csv writes it: class names (empty when missing), split."""
    out = {"split": str(prepared.split[i])}
    for task in prepared.tasks:
        label = int(prepared.labels[task][i])
        out[task] = prepared.class_names[task][label] if label >= 0 else ""
    return out
