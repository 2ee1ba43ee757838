"""A folder per class: ``root/<class>/*.jpg`` or ``root/<split>/<class>/*.jpg``.

The folder names label ONE task, the run's (``--task style`` -> style labels). Split
folders (train, val/valid/validation, test) become the official split; class names
are the union over split folders, sorted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_art.data.catalog_type import Catalog
from keras_art.errors import ParameterError
from keras_art.registry import IMAGE_SUFFIXES, TASKS

SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


def read_folder(data_cfg, task: str | None = "style") -> Catalog:
    """Read ``data_cfg.path`` as class folders labelling ``task``."""
    if not data_cfg.path:
        raise ParameterError(
            "{data.format} folder needs {data.path} DIR (one sub-folder per class)."
        )
    return read_folder_dir(Path(data_cfg.path).expanduser(), task)


def read_folder_dir(root: Path, task: str | None = "style") -> Catalog:
    """Catalog of the images in ``root``'s class folders, labelled for ``task``."""
    if task not in TASKS:
        raise ParameterError(
            f"{{data.format}} folder labels one task, so {{task}} must be one of "
            f"{', '.join(TASKS)} (got {task!r}). Multi-task needs a labelled source."
        )
    if not root.is_dir():
        raise ParameterError(f"{{data.path}} {root}: no such folder. Check the path.")
    subdirs = _subdirs(root)
    if subdirs and all(d.name.lower() in SPLIT_FOLDERS for d in subdirs):
        parts = [(SPLIT_FOLDERS[d.name.lower()], d) for d in subdirs]
    else:
        parts = [("", root)]

    rows: list[tuple[str, str, str]] = []  # (file, class, split)
    empty: list[str] = []
    for split, base in parts:
        for class_dir in _subdirs(base):
            images = sorted(
                str(p)
                for p in class_dir.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not images:
                empty.append(str(class_dir.relative_to(root)))
            rows.extend((f, class_dir.name, split) for f in images)
    if not rows:
        raise ParameterError(
            f"{{data.path}} {root}: no images ({', '.join(IMAGE_SUFFIXES)}) in class "
            f"sub-folders. Expected {root}/<class>/*.jpg or {root}/train/<class>/*.jpg."
        )
    names = sorted({c for _, c, _ in rows})
    index = {n: i for i, n in enumerate(names)}
    notes = [f"folder: {len(names)} {task} classes from folder names"]
    if empty:
        notes.append(f"folder: no images in {', '.join(empty[:5])}")
    has_split = parts[0][0] != ""
    return Catalog(
        files=[f for f, _, _ in rows],
        labels={task: np.array([index[c] for _, c, _ in rows], dtype=np.int64)},
        class_names={task: names},
        source="folder",
        official_split=np.array([s for _, _, s in rows], dtype=object)
        if has_split
        else None,
        notes=notes,
    )


def _subdirs(path: Path) -> list[Path]:
    return sorted(
        p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
