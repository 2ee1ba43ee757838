"""Data a classifier cannot learn from: stop with one line before any model exists.

`require_classes`: every task needs images of at least `MIN_CLASSES` classes (one
class folder trains to a perfect, meaningless 1.000 everywhere).
`require_readable`: a dataset whose every file fails to decode is a wrong path or a
broken copy, not an empty split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_art.errors import ParameterError

MIN_CLASSES = 2
SHOWN = 5


def require_classes(catalog, tasks: Sequence[str], removed: Sequence[str] = ()) -> None:
    """`ParameterError` naming the classes found unless each of ``tasks`` has images
    of at least `MIN_CLASSES` classes in ``catalog``; ``removed``: notes saying
    which classes earlier steps removed (they end the message)."""
    for task in tasks:
        counts = catalog.counts(task)
        found = [catalog.class_names[task][i] for i in np.flatnonzero(counts > 0)]
        if len(found) >= MIN_CLASSES:
            continue
        shown = ", ".join(found[:SHOWN]) or "none"
        after = f"; removed before: {'; '.join(removed)}" if removed else ""
        raise ParameterError(
            f"task {task}: the data has images of {len(found)} class ({shown}), and "
            f"a classifier needs at least {MIN_CLASSES} classes per task{after}. "
            f"Point {{data.path}} at data with {MIN_CLASSES} or more classes (the "
            f"folder format: one subfolder per class)."
        )


def require_readable(scan, files: Sequence[str], where: str) -> None:
    """`ParameterError` when ``files`` is not empty and the `scan_images` result
    ``scan`` found none of them usable; ``where`` names the dataset."""
    if not files or any(scan.ok):
        return
    first, reason = scan.excluded[0]
    raise ParameterError(
        f"no readable images in {where}: {len(files)} files, all failed to decode "
        f"(first: {first}: {reason}). Check {{data.path}}."
    )
