"""WikiArt "refined" release: images in ``wikiart/``, label lists in ``wikiart_csv/``.

Layout and quirks (docs/datasets.md section 1): per task a ``*_class`` file ("index
name" lines, with or without ``.txt``) and train/val lists (with or without ``.csv``,
CRLF or LF, the artist lists with a header line, a blank line and ``path,,label``
rows). Labels are class INDICES from the lists; folder names are never used
(style 3 is ``Art_Nouveau`` but lives in ``Art_Nouveau_Modern/``). Paths are used
exactly as written, mojibake included.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_art.data.catalog_type import MISSING, Catalog
from keras_art.errors import ParameterError, UserError
from keras_art.registry import TASKS

LIST_SPLITS = ("train", "val")
# The note a multi-task read leaves; prepare reads the count back from it.
MULTI_MOVED_PATTERN = r"multi-task: (?P<n>\d+) image\(s\) in one task's train list"


def read_wikiart(data_cfg, task: str | None = None) -> Catalog:
    """Read the release at ``data_cfg.path`` (``images_dir``/``labels_dir`` override).

    ``task`` decides the official split: a single task uses its own train/val lists
    (rows only in other tasks' lists get ``""``); ``None`` or ``"multi"`` marks a row
    ``"val"`` when ANY task lists it for validation, so multi-task training never
    sees an evaluation image of another task.
    """
    root = Path(data_cfg.path).expanduser() if data_cfg.path else None
    images = Path(data_cfg.images_dir).expanduser() if data_cfg.images_dir else None
    labels = Path(data_cfg.labels_dir).expanduser() if data_cfg.labels_dir else None
    if images is None or labels is None:
        if root is None:
            raise ParameterError(
                "{data.format} wikiart needs {data.path} DIR (the folder holding "
                "wikiart/ and wikiart_csv/) or both data.images_dir and "
                "data.labels_dir."
            )
        images = images or root / "wikiart"
        labels = labels or root / "wikiart_csv"
    for what, path in (("images", images), ("labels", labels)):
        if not path.is_dir():
            raise ParameterError(
                f"wikiart: {what} folder {path} does not exist. Pass {{data.path}} DIR "
                f"holding wikiart/ and wikiart_csv/, or set data.{what}_dir."
            )
    return read_wikiart_dirs(images, labels, task=task)


def read_wikiart_dirs(
    images_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    task: str | None = None,
) -> Catalog:
    """Join the three tasks' lists into one catalog (one row per unique image path)."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    notes: list[str] = []
    class_names, lists = _read_all_lists(labels_dir, notes)
    joined = _JoinedLists.of(lists)
    notes.extend(_overlap_notes(lists, joined.in_train, joined.in_val))
    official = _official_split(joined, task, notes)
    keep, excluded = _present_on_disk(joined.paths, images_dir, notes)
    return Catalog(
        files=[str(images_dir / joined.paths[i]) for i in keep],
        labels={t: a[keep] for t, a in joined.labels.items()},
        class_names=class_names,
        source="wikiart",
        official_split=official[keep],
        notes=notes,
        excluded=excluded,
    )


def _read_all_lists(labels_dir: Path, notes: list[str]):
    """``(class_names, lists)``: task -> names, and task -> split -> {path: label}
    for every task folder present; an image in both lists of a task stays in val."""
    class_names: dict[str, list[str]] = {}
    lists: dict[str, dict[str, dict[str, int]]] = {}
    for t in TASKS:
        folder = _find_child(labels_dir, t.capitalize())
        if folder is None:
            notes.append(f"wikiart: no {t.capitalize()}/ folder in {labels_dir}")
            continue
        class_names[t] = _read_classes(_find_file(folder, f"{t}_class", (".txt", "")))
        lists[t] = {
            split: _read_split_list(folder, t, split, len(class_names[t]), notes)
            for split in LIST_SPLITS
        }
        both = lists[t]["train"].keys() & lists[t]["val"].keys()
        if both:
            notes.append(
                f"wikiart: {len(both)} {t} image(s) are in both train and val lists; "
                f"kept in val"
            )
            for p in both:
                del lists[t]["train"][p]
    if not lists:
        raise ParameterError(
            f"wikiart: {labels_dir} holds none of Style/, Genre/, Artist/. Point "
            f"data.labels_dir (or {{data.path}}) at the wikiart_csv folder."
        )
    return class_names, lists


def _read_split_list(folder: Path, task: str, split: str, num_classes, notes):
    path = _find_file(folder, f"{task}_{split}", (".csv", ""))
    rows, dups = _read_list(path, num_classes)
    if dups:
        notes.append(
            f"wikiart: {path.name} lists {dups} row(s) twice; duplicates ignored"
        )
    return rows


@dataclass
class _JoinedLists:
    """Every listed path once (first-listed order) with per-task labels and
    train/val membership flags, all aligned with ``paths``."""

    paths: list[str]
    labels: dict[str, np.ndarray]
    in_train: dict[str, np.ndarray]
    in_val: dict[str, np.ndarray]

    @classmethod
    def of(cls, lists) -> _JoinedLists:
        order: dict[str, int] = {}
        for t in lists:
            for split in LIST_SPLITS:
                for p in lists[t][split]:
                    order.setdefault(p, len(order))
        n = len(order)
        joined = cls(
            paths=list(order),
            labels={t: np.full(n, MISSING, dtype=np.int64) for t in lists},
            in_train={t: np.zeros(n, dtype=bool) for t in lists},
            in_val={t: np.zeros(n, dtype=bool) for t in lists},
        )
        for t in lists:
            for split, flags in (("train", joined.in_train), ("val", joined.in_val)):
                for p, lab in lists[t][split].items():
                    joined.labels[t][order[p]] = lab
                    flags[t][order[p]] = True
        return joined


def _official_split(joined: _JoinedLists, task: str | None, notes) -> np.ndarray:
    """Per row "train", "val" or "" (see `read_wikiart`)."""
    if task in joined.labels:
        val, train = joined.in_val[task], joined.in_train[task]
        return np.where(val, "val", np.where(train, "train", "")).astype(object)
    any_val = np.logical_or.reduce(list(joined.in_val.values()))
    any_train = np.logical_or.reduce(list(joined.in_train.values()))
    moved = int(np.sum(any_val & any_train))
    if moved:
        notes.append(
            f"wikiart: multi-task: {moved} image(s) in one task's train list and "
            f"another's val list are given split 'val' (never trained on)"
        )
    return np.where(any_val, "val", "train").astype(object)


def _present_on_disk(paths: list[str], images_dir: Path, notes: list[str]):
    """``(indices of the paths found under images_dir, excluded (file, reason))``."""
    on_disk = _existing_files(images_dir)
    present = np.array([p in on_disk for p in paths], dtype=bool)
    excluded = [
        (str(images_dir / p), "listed in the label files but missing on disk")
        for p, ok in zip(paths, present, strict=False)
        if not ok
    ]
    if excluded:
        notes.append(
            f"wikiart: {len(excluded)} listed image(s) missing under {images_dir}; "
            f"excluded"
        )
    keep = np.flatnonzero(present)
    if len(keep) == 0:
        raise UserError(
            f"wikiart: none of the {len(paths)} listed images exist under "
            f"{images_dir}. Check data.images_dir (it should hold the style folders)."
        )
    return keep, excluded


def _overlap_notes(lists, in_train, in_val) -> list[str]:
    notes = []
    for a in lists:
        for b in lists:
            if a == b:
                continue
            both = int(np.sum(in_val[a] & in_train[b]))
            if both:
                notes.append(
                    f"wikiart: overlap: {both} image(s) of the {a} val list are in "
                    f"the {b} train list"
                )
    return notes


def _find_child(parent: Path, name: str) -> Path | None:
    exact = parent / name
    if exact.is_dir():
        return exact
    for child in parent.iterdir():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _find_file(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path:
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    tried = " or ".join(f"{stem}{s}" for s in suffixes)
    raise UserError(
        f"wikiart: {folder} has no {tried}. Restore the file from the release."
    )


def _lines(path: Path):
    # surrogateescape keeps undecodable bytes, so a path is used exactly as written.
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            yield number, line.rstrip("\r\n").rstrip("\r")


def _read_classes(path: Path) -> list[str]:
    names: dict[int, str] = {}
    for number, line in _lines(path):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(
                f"{path}:{number}: expected 'index name', got {line!r}. Fix the line."
            )
        names[int(parts[0])] = parts[1].strip()
    if sorted(names) != list(range(len(names))):
        raise UserError(
            f"{path}: class indices must run 0..{len(names) - 1} without gaps; got "
            f"{sorted(names)[:10]}... Fix the file."
        )
    return [names[i] for i in range(len(names))]


def _read_list(path: Path, num_classes: int) -> tuple[dict[str, int], int]:
    """``{path: label}`` in file order and the number of duplicated rows skipped."""
    rows: dict[str, int] = {}
    conflicts: Counter[str] = Counter()
    dups = 0
    first = True
    for number, line in _lines(path):
        if not line.strip():
            continue
        head, sep, tail = line.rpartition(",")
        image = head.rstrip(",")
        try:
            label = int(tail)
        except ValueError:
            label = None
        if first and (label is None or not sep):
            first = False  # a header line, e.g. "(Path to image),, (Groundtruth class)"
            continue
        first = False
        if label is None or not sep or not image:
            raise UserError(
                f"{path}:{number}: expected 'path,label', got {line!r}. Fix or delete "
                f"the line."
            )
        if not 0 <= label < num_classes:
            raise UserError(
                f"{path}:{number}: label {label} is out of range 0..{num_classes - 1} "
                f"of the class file. Fix the line or the class file."
            )
        if image in rows:
            if rows[image] != label:
                conflicts[image] += 1
            dups += 1
            continue
        rows[image] = label
    if conflicts:
        some = ", ".join(list(conflicts)[:3])
        raise UserError(
            f"{path}: {len(conflicts)} image(s) listed twice with different labels "
            f"(e.g. {some}). Keep one row per image."
        )
    return rows, dups


def _existing_files(images_dir: Path) -> set[str]:
    # One directory walk instead of 80k stat calls; keys are '/'-joined relative
    # paths as the lists write them.
    found = set()
    for dirpath, _, filenames in os.walk(images_dir, followlinks=True):
        rel = os.path.relpath(dirpath, images_dir)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found.update(prefix + f for f in filenames)
    return found
