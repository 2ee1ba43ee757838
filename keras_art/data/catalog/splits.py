"""Stratified, seeded, stable train/val/test splits.

Every row gets a number ``u`` in [0, 1) from a hash of ``(seed, key)``; a row goes to
train when ``u < f_train``, to val when ``u < f_train + f_val``, else to test. The
thresholds are the same for every class, so each class is split in the requested
proportions (in expectation), and the result of a row depends only on its own key:
adding files never moves an existing file. Keys are content hashes, or the keys
of near-duplicate groups, so identical bytes (even under two paths) and copies of
one painting at other sizes always land in the same split.

The one exception is a tiny class whose hash draw leaves a requested split empty:
the row nearest to that split's interval is moved into it, so every class with at
least as many images as there are splits appears in each of them. Those rows (few,
reported as ``filled_empty_splits``) may move back once the class grows.

With ``sizes`` (``data.split_sizes``, seed 003's 5,000 / 1,667 / 1,667) the split is
a seeded random sample instead: groups in the order of their hash draw fill train,
then val, then test up to those image counts; the rest is left out. Not stratified
(a random sample, as the seed's): the report counts the classes each split holds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np

from keras_art.errors import UserError

SPLITS = ("train", "val", "test")
_CHUNK = 1 << 20


def content_hash(path: str | os.PathLike) -> str:
    """SHA-1 of the file's bytes (hex): the key that makes duplicates share a split."""
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_unit(seed: int, key: str) -> float:
    """A number in [0, 1) that depends only on ``seed`` and ``key``."""
    digest = hashlib.sha1(f"{seed}\x00{key}".encode("utf-8", "surrogateescape"))
    return int.from_bytes(digest.digest()[:8], "big") / 2.0**64


def assign_splits(
    keys: Sequence[str],
    labels: np.ndarray,
    fractions: Sequence[float],
    seed: int,
    official: np.ndarray | None = None,
    small_classes: str = "drop",
    sizes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict]:
    """Assign every row to ``"train"``/``"val"``/``"test"`` (``""`` = dropped).

    Args:
        keys: one key per row, normally `content_hash` of the file or the key of
            its near-duplicate group (`near_duplicates.group_near_duplicates`);
            rows with equal keys are one group and always share a split.
        labels: class index per row (-1 = unlabelled; such rows are split but never
            dropped or used to fill a class).
        fractions: 2 or 3 fractions (train, val[, test]) summing to 1.
        seed: the split seed; same seed + same keys = same split.
        official: optional per-row ``"train"``/``"val"``/``"test"``/``""`` from the
            source. Official val/test rows are kept; official train rows stay train
            except a test part carved out of them when 3 fractions are given (the
            test fraction is relative to ALL rows). Rows with ``""`` are split by
            ``fractions``.
        small_classes: ``"drop"`` or ``"error"`` for a class with fewer images than
            there are non-empty splits.
        sizes: optional image counts (train, val[, test]) that replace
            ``fractions``: a seeded random sample (see the module doc).
        class_names: the names of the label indices, for error messages.

    Returns:
        ``(split, report)``: the split array (dtype object) and a JSON-safe report.
    """
    fractions = _three_fractions(fractions, small_classes)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(keys)
    if labels.shape != (n,):
        raise ValueError(f"labels has shape {labels.shape}, expected ({n},)")

    group_of, group_keys = _groups(keys)
    group_label = _group_labels(group_of, labels, len(group_keys))
    u = np.array([hash_unit(seed, k) for k in group_keys], dtype=np.float64)
    report = _base_report(seed, fractions, n, len(group_keys))

    try:
        group_split, split_report = _split_groups(
            group_of, official, u, group_label, fractions, small_classes, sizes
        )
    except _TooSmallClass as exc:
        raise UserError(exc.message(class_names)) from None
    report.update(split_report)

    split = group_split[group_of]
    report["counts"] = {s: int(np.sum(split == s)) for s in SPLITS}
    report["dropped_rows"] = int(np.sum(split == ""))
    return split, report


def _base_report(seed: int, fractions: list[float], rows: int, groups: int) -> dict:
    return {
        "seed": int(seed),
        "fractions": dict(zip(SPLITS, fractions, strict=False)),
        "rows": rows,
        "unique_contents": groups,
        "duplicate_rows": rows - groups,
    }


def _split_groups(
    group_of, official, u, group_label, fractions, small_classes, sizes
) -> tuple[np.ndarray, dict]:
    """Every group's split: a seeded sample of ``sizes`` when given, else after the
    source's ``official`` one when given, else hashed by ``fractions``."""
    if sizes:
        return _sized_groups(u, group_of, group_label, sizes, official)
    if official is not None:
        return _official_groups(
            group_of, official, u, group_label, fractions, small_classes
        )
    return _all_hashed(u, group_label, fractions, small_classes)


def _three_fractions(fractions: Sequence[float], small_classes: str) -> list[float]:
    """``fractions`` as (train, val, test), test 0 when two are given; `UserError`
    for fractions that do not sum to 1 or an unknown ``small_classes``."""
    fractions = [float(f) for f in fractions]
    if len(fractions) not in (2, 3) or abs(sum(fractions) - 1.0) > 1e-3:
        raise UserError(
            f"data.split must be 2 or 3 fractions summing to 1. Received: {fractions}"
        )
    if small_classes not in ("drop", "error"):
        raise UserError(
            f"data.small_classes must be 'drop' or 'error'. Received: {small_classes!r}"
        )
    return (fractions + [0.0])[:3]


def _official_groups(
    group_of, official, u, group_label, fractions, small_classes
) -> tuple[np.ndarray, dict]:
    """Every group split after the source's ``official`` split (see
    `assign_splits`); the group split and its report entries."""
    group_official = _group_official(group_of, np.asarray(official, dtype=object))
    report = {"duplicates_moved_to_eval": int(group_official.pop("_moved"))}
    group_split, official_report = _official(
        u, group_label, group_official["split"], fractions, small_classes
    )
    report.update(official_report)
    return group_split, report


def _all_hashed(
    u: np.ndarray, group_label: np.ndarray, fractions: list[float], small_classes: str
) -> tuple[np.ndarray, dict]:
    """Every group split by ``fractions`` (no official split); the group split and
    its report entries."""
    free = np.ones(len(u), dtype=bool)
    group_split = np.empty(len(u), dtype=object)
    group_split[:] = ""
    report = _hashed(u, group_label, free, fractions, small_classes, group_split)
    report["mode"] = "hashed"
    report["split_meaning"] = {
        "train": f"{fractions[0]:.0%} of the images (stratified, seeded)",
        "val": f"{fractions[1]:.0%} of the images (stratified, seeded)",
        "test": f"{fractions[2]:.0%} of the images (stratified, seeded)",
    }
    return group_split, report


def _sized_groups(u, group_of, group_label, sizes, official) -> tuple[np.ndarray, dict]:
    """Every group split by ``sizes`` (see `assign_splits`); the group split and its
    report entries, with the classes each split holds."""
    if official is not None:
        raise UserError(
            "data.split_sizes draws its own split, but the data has its own "
            "train/val lists. Set data.use_official_split=false to draw from all "
            "of its images, or drop data.split_sizes."
        )
    group_split, report = _sized(u, np.bincount(group_of, minlength=len(u)), sizes)
    report["classes"] = _classes_per_split(group_split, group_label)
    return group_split, report


def _sized(
    u: np.ndarray, group_size: np.ndarray, sizes: Sequence[int]
) -> tuple[np.ndarray, dict]:
    """Groups in the order of ``u`` fill train, val, test up to ``sizes`` rows (a
    group goes to the first split it fits whole); the group split and its report."""
    wanted = [int(n) for n in (list(sizes) + [0, 0])[:3]]
    available = int(group_size.sum())
    if len(sizes) not in (2, 3) or min(wanted) < 0 or sum(wanted) > available:
        raise UserError(
            f"data.split_sizes asks for {sum(wanted)} images ({list(sizes)}), but "
            f"{available} are left after the subset. Ask for at most {available} "
            f"(2 or 3 counts: train, val[, test]), or widen the subset "
            f"(data.classes, data.top_n, data.min_per_class)."
        )
    room = list(wanted)
    out = np.full(len(u), "", dtype=object)
    # A Python walk: numpy has no "fill bins in order with whole groups"; it stops
    # once every split is full (sum(sizes) groups at most when nothing repeats).
    for g in np.argsort(u, kind="stable"):
        n = int(group_size[g])
        for s in range(3):
            if room[s] >= n:
                out[g] = SPLITS[s]
                room[s] -= n
                break
        if not any(room):
            break
    report = {
        "mode": "sized",
        "sizes": dict(zip(SPLITS, wanted, strict=True)),
        "available_rows": available,
        "left_out_rows": available - (sum(wanted) - sum(room)),
        "dropped_classes": [],
        "filled_empty_splits": 0,
        "split_meaning": {
            s: f"{n} of the {available} images, drawn at random (seeded)"
            for s, n in zip(SPLITS, wanted, strict=True)
        },
    }
    return out, report


def _classes_per_split(group_split: np.ndarray, group_label: np.ndarray) -> dict:
    """How many classes each split holds (a random sample may miss small ones)."""
    labelled = group_label >= 0
    return {
        s: int(len(np.unique(group_label[labelled & (group_split == s)])))
        for s in SPLITS
    }


def _groups(keys: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    index: dict[str, int] = {}
    group_of = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        group_of[i] = index.setdefault(key, len(index))
    return group_of, list(index)


def _group_labels(group_of: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    # A group's class is its first labelled row's (identical bytes with two labels is
    # a label-noise case; the group still stays together).
    out = np.full(n, -1, dtype=np.int64)
    for g, lab in zip(group_of[::-1], labels[::-1], strict=False):
        if lab >= 0:
            out[g] = lab
    return out


def _group_official(group_of: np.ndarray, official: np.ndarray) -> dict:
    # Evaluation wins: a group with any row in val (or test) is evaluated, never
    # trained on.
    rank = {"": 0, "train": 1, "test": 2, "val": 3}
    n = int(group_of.max()) + 1 if len(group_of) else 0
    best = np.zeros(n, dtype=np.int64)
    seen_train = np.zeros(n, dtype=bool)
    for g, s in zip(group_of, official, strict=False):
        s = "" if s is None else str(s)
        if s not in rank:
            raise ValueError(f"official split values must be train/val/test/''; {s!r}")
        best[g] = max(best[g], rank[s])
        seen_train[g] |= s == "train"
    names = np.array(["", "train", "test", "val"], dtype=object)
    moved = int(np.sum(seen_train & (best >= 2)))
    return {"split": names[best], "_moved": moved}


def _hashed(
    u: np.ndarray,
    label: np.ndarray,
    free: np.ndarray,
    fractions: list[float],
    small_classes: str,
    out: np.ndarray,
) -> dict:
    """Threshold-split the rows in ``free`` into ``out``; fix tiny classes."""
    edges = np.cumsum(fractions)
    wanted = [s for s, f in zip(SPLITS, fractions, strict=False) if f > 0]
    # Fractions may sum to a little under 1: the rest of [0, 1) goes to the last
    # requested split, never to one with fraction 0.
    last = max(i for i, f in enumerate(fractions) if f > 0)
    idx = np.flatnonzero(free)
    out[idx] = np.array(SPLITS, dtype=object)[
        np.minimum(np.searchsorted(edges, u[idx], side="right"), last)
    ]
    dropped, filled = [], 0
    for cls in np.unique(label[idx]):
        if cls < 0:
            continue
        rows = idx[label[idx] == cls]
        if len(rows) < len(wanted):
            if small_classes == "error":
                raise _TooSmallClass(int(cls), len(rows), len(wanted))
            out[rows] = ""
            dropped.append(int(cls))
            continue
        filled += _fill_empty(rows, u, out, wanted, edges)
    return {"dropped_classes": dropped, "filled_empty_splits": filled}


class _TooSmallClass(UserError):
    """A class with fewer images than splits, under small_classes="error"."""

    def __init__(self, index: int, images: int, splits: int):
        self.index, self.images, self.splits = index, images, splits
        super().__init__(self.message())

    def message(self, class_names: Sequence[str] | None = None) -> str:
        name = f"class index {self.index}"
        if class_names is not None:
            name = f"class {class_names[self.index]} (index {self.index})"
        return (
            f"{name} has {self.images} image(s), fewer than the {self.splits} "
            f"splits requested. Drop it with data.small_classes=drop, raise "
            f"data.min_per_class, or use fewer splits."
        )


def _fill_empty(rows, u, out, wanted, edges) -> int:
    moved = 0
    lows = dict(zip(SPLITS, np.concatenate([[0.0], edges[:-1]]), strict=False))
    highs = dict(zip(SPLITS, edges, strict=False))
    # val first: a class must be evaluated before it can be tested.
    for target in sorted(wanted, key=lambda s: {"val": 0, "test": 1, "train": 2}[s]):
        members = out[rows]
        if np.any(members == target):
            continue
        sizes = {s: int(np.sum(members == s)) for s in wanted}
        # Never empty another split. There is always a donor: every row is in a
        # requested split and the class has at least one row per requested split.
        donors = rows[[sizes[str(m)] > 1 for m in members]]
        centre = (lows[target] + highs[target]) / 2
        pick = donors[np.argmin(np.abs(u[donors] - centre))]
        out[pick] = target
        moved += 1
    return moved


def _official(u, label, official, fractions, small_classes):
    out = official.copy()
    is_train = out == "train"
    unassigned = out == ""
    report: dict = {"mode": "official"}
    if np.any(unassigned):
        report.update(_hashed(u, label, unassigned, fractions, small_classes, out))
    carved = 0
    test_fraction = fractions[2]
    n_total = len(out)
    n_train = int(is_train.sum())
    # A source with its own test split keeps it; otherwise test comes out of train.
    if test_fraction > 0 and n_train and not np.any(official == "test"):
        # Test is a fraction of ALL rows, taken from official train only.
        p = min(1.0, test_fraction * n_total / n_train)
        # The top of the hash range becomes test so it matches the hashed layout.
        carve = is_train & (u >= 1.0 - p)
        for cls in np.unique(label[is_train]):
            rows = np.flatnonzero(is_train & (label == cls))
            if cls < 0:
                continue
            if len(rows) < 2:
                carve[rows] = False
            elif not np.any(carve[rows]):
                carve[rows[np.argmax(u[rows])]] = True
            elif np.all(carve[rows]):
                carve[rows[np.argmin(u[rows])]] = False
        out[carve] = "test"
        carved = int(carve.sum())
        report["test_fraction_of_official_train"] = round(p, 4)
    report["carved_test_from_train"] = carved
    report["split_meaning"] = {
        "train": "the source's official train list"
        + (" minus the carved test part" if carved else ""),
        "val": "the source's official val list (used for model selection, so val "
        "numbers are optimistic)",
        "test": (
            f"carved out of the official train list ({test_fraction:.0%} of all "
            f"images, stratified, seeded); never seen in training or selection"
            if carved
            else "the source's official test list"
            if np.any(official == "test")
            else "none (the source has no test split; pass 3 fractions to carve one)"
        ),
    }
    return out, report
