"""Class subsets (seeds 001-003): top-N classes, a named list, per-class bounds."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from keras_art.data.catalog.class_names import normalise_class_name
from keras_art.data.catalog.splits import hash_unit
from keras_art.data.catalog_type import MISSING, Catalog
from keras_art.errors import UserError


def select_subset(
    catalog: Catalog,
    task: str,
    *,
    top_n: int | None = None,
    classes: Sequence[str] = (),
    min_per_class: int = 0,
    max_per_class: int | None = None,
    seed: int = 0,
) -> tuple[Catalog, dict]:
    """Keep the rows of the selected ``task`` classes; re-index them 0..K-1.

    Steps, in order: rows without a ``task`` label go; ``classes`` (names, matched
    exactly, then ignoring case/accents/``_`` vs space) restricts the classes;
    classes with fewer than ``min_per_class`` images go; ``top_n`` keeps the largest
    classes (ties: lower index first); ``max_per_class`` down-samples each class to
    the rows with the smallest ``hash(seed, path)``, so the choice is seeded and a
    new file never evicts more than one old one. Kept classes stay in their original
    order. Other tasks' labels are left as they are.

    Returns:
        ``(catalog, report)``; the report lists kept and dropped classes with counts.
    """
    _check_request(catalog, task, top_n, max_per_class)
    names = catalog.class_names[task]
    labels = catalog.labels[task]
    counts = np.bincount(labels[labels >= 0], minlength=len(names))
    keep, dropped = _select_classes(names, counts, task, classes, min_per_class, top_n)
    kept = np.flatnonzero(keep)
    if len(kept) == 0 or counts[kept].sum() == 0:
        raise UserError(
            f"The subset of {task} classes is empty (top_n={top_n}, classes="
            f"{list(classes)}, min_per_class={min_per_class}). Loosen the subset."
        )
    rows = np.flatnonzero((labels >= 0) & keep[np.maximum(labels, 0)])
    if max_per_class is not None:
        rows = _cap_per_class(catalog, labels, rows, max_per_class, seed)
    out = _reindex(catalog.take(rows), catalog.class_names, task, kept)
    after = np.bincount(out.labels[task], minlength=len(kept))
    report = {
        "task": task,
        "top_n": top_n,
        "classes": list(classes),
        "min_per_class": min_per_class,
        "max_per_class": max_per_class,
        "seed": seed,
        "rows_before": int(np.sum(labels >= 0)),
        "rows_after": len(out),
        "kept_classes": {
            names[i]: {"before": int(counts[i]), "after": int(after[j])}
            for j, i in enumerate(kept)
        },
        "dropped_classes": dropped,
    }
    return out, report


def _check_request(catalog: Catalog, task: str, top_n, max_per_class) -> None:
    if task not in catalog.labels:
        raise UserError(
            f"The {catalog.source} data has no {task!r} labels; it has: "
            f"{', '.join(catalog.tasks)}."
        )
    if top_n is not None and top_n < 1:
        raise UserError(f"data.top_n must be at least 1. Received: {top_n}")
    if max_per_class is not None and max_per_class < 1:
        raise UserError(
            f"data.max_per_class must be at least 1. Received: {max_per_class}"
        )


def _select_classes(names, counts, task, classes, min_per_class, top_n):
    """``(keep mask over classes, {dropped name: reason})``; classes left out of
    ``classes`` were not asked for, so they get no reason."""
    keep = np.ones(len(names), dtype=bool)
    dropped: dict[str, str] = {}
    if classes:
        wanted = _resolve_all(classes, names, task)
        keep = np.isin(np.arange(len(names)), sorted(wanted))
    if min_per_class > 0:
        for i in np.flatnonzero(keep & (counts < min_per_class)):
            keep[i] = False
            dropped[names[i]] = f"{counts[i]} image(s) < min_per_class {min_per_class}"
    if top_n is not None:
        order = sorted(np.flatnonzero(keep), key=lambda i: (-counts[i], i))
        for i in order[top_n:]:
            keep[i] = False
            dropped[names[i]] = f"not in the top {top_n} by count"
    return keep, dropped


def _reindex(out: Catalog, class_names, task: str, kept) -> Catalog:
    """Relabel ``task`` in ``out`` to 0..K-1 over the ``kept`` class indices."""
    names = class_names[task]
    remap = np.full(len(names), MISSING, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    out.labels[task] = remap[out.labels[task]]
    out.class_names = dict(class_names)
    out.class_names[task] = [names[i] for i in kept]
    return out


def _cap_per_class(catalog, labels, rows, cap, seed) -> np.ndarray:
    keep = []
    for cls in np.unique(labels[rows]):
        members = rows[labels[rows] == cls]
        if len(members) > cap:
            u = np.array([hash_unit(seed, catalog.files[i]) for i in members])
            members = np.sort(members[np.argsort(u, kind="stable")[:cap]])
        keep.append(members)
    return np.sort(np.concatenate(keep))


def _resolve_all(classes: Sequence[str], names: list[str], task: str) -> set[int]:
    """The class indices of ``classes``; one `UserError` naming every name the data
    lacks (with the nearest spellings), not only the first."""
    found, missing = set(), []
    for name in classes:
        index = _resolve(name, names)
        if index is None:
            missing.append(name)
        else:
            found.add(index)
    if not missing:
        return found
    if len(missing) == 1:
        hint = _hint(missing[0], names)
        what = f"unknown {task} class {missing[0]!r}." + (f" {hint}" if hint else "")
    else:
        listed = ", ".join(
            f"{name!r}" + (f" ({hint})" if (hint := _hint(name, names)) else "")
            for name in missing
        )
        what = f"{len(missing)} of the {len(classes)} {task} classes are unknown: "
        what += f"{listed}."
    raise UserError(
        f"data.classes: {what} Valid names: {', '.join(names[:30])}"
        f"{' ...' if len(names) > 30 else ''}"
    )


def _resolve(name: str, names: list[str]) -> int | None:
    """The index of ``name`` in ``names`` (exact, then `normalise_class_name`)."""
    if name in names:
        return names.index(name)
    folded = [normalise_class_name(n) for n in names]
    key = normalise_class_name(name)
    hits = [
        i for i, f in enumerate(folded) if " ".join(f.split()) == " ".join(key.split())
    ]
    return hits[0] if len(hits) == 1 else None


def _hint(name: str, names: list[str]) -> str:
    """``Did you mean: A, B?`` with the classes closest to ``name``, or ""."""
    folded = [normalise_class_name(n) for n in names]
    key = normalise_class_name(name)
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5) or (
        [names[folded.index(m)] for m in difflib.get_close_matches(key, folded, n=3)]
    )
    return f"Did you mean: {', '.join(close)}?" if close else ""
