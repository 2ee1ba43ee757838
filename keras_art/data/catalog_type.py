"""The catalog type: one row per image, whatever the source.

Every reader returns a `Catalog`; everything downstream (validation, subsets, splits,
the tf.data pipeline) sees only this. Labels are per task (artist, genre, style), an
index into that task's ``class_names`` or -1 when the source has no such label.

A leaf (it imports only `keras_art.registry`), below both the readers
(`keras_art.data.sources`) and the catalog's operations (`keras_art.data.catalog`),
so neither package imports the other to name the type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from keras_art.registry import TASKS

MISSING = -1


@dataclass
class Catalog:
    """Images and their labels.

    Attributes:
        files: path of each image, exactly as the source wrote it (never normalised).
        labels: task -> int64 array of class indices, ``MISSING`` (-1) where unknown.
        class_names: task -> names, index order.
        source: the reader's format name (``"wikiart"``, ``"folder"``, ...).
        official_split: per row ``"train"``/``"val"``/``"test"`` or ``""`` when the
            source defines no split for it; ``None`` when the source has none at all.
        notes: human-readable facts the reader found (overlaps, renamed classes, ...),
            copied into the run's data report.
        excluded: ``(path, reason)`` for every image the source listed but that is
            not a row (missing on disk, unreadable, no label, ...); the data report
            lists them. Validation appends to it.
    """

    files: list[str]
    labels: dict[str, np.ndarray]
    class_names: dict[str, list[str]]
    source: str
    official_split: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.files)
        for task, arr in list(self.labels.items()):
            if task not in TASKS:
                raise ValueError(f"Unknown task {task!r}; expected one of {TASKS}.")
            arr = np.asarray(arr, dtype=np.int64)
            if arr.shape != (n,):
                raise ValueError(
                    f"labels[{task!r}] has shape {arr.shape}, expected ({n},)"
                )
            self.labels[task] = arr
        if self.official_split is not None:
            self.official_split = np.asarray(self.official_split, dtype=object)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t in TASKS if t in self.labels)

    def take(self, index: Sequence[int] | np.ndarray) -> Catalog:
        """A new catalog with the rows at ``index`` (bool mask or integer indices)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return Catalog(
            files=[self.files[i] for i in idx],
            labels={t: a[idx] for t, a in self.labels.items()},
            class_names=dict(self.class_names),
            source=self.source,
            official_split=None
            if self.official_split is None
            else self.official_split[idx],
            notes=list(self.notes),
            excluded=list(self.excluded),
        )

    def counts(self, task: str) -> np.ndarray:
        """Images per class for ``task`` (missing labels not counted)."""
        lab = self.labels[task]
        return np.bincount(lab[lab >= 0], minlength=len(self.class_names[task]))
