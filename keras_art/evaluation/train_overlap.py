"""Does the evaluated set share paintings with the run's training split?

A run split before near-duplicates were grouped (`keras_art.data.catalog
.near_duplicates`) can hold the same painting, resized or cropped, in train and in
test: its test numbers are then optimistic. `train_overlap` hashes the run's train
images and the evaluated ones (through the run's scan cache, so a run whose scan
already hashed them costs only file stats) and counts the evaluated images with a
near-duplicate in train. A run that grouped near-duplicates itself is skipped for
its own splits: none straddle them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from keras_art.config import DataConfig
from keras_art.data.catalog.near_duplicates import near_duplicates_across
from keras_art.data.catalog.validate import scan_images
from keras_art.run_dir import RunDir

logger = logging.getLogger(__name__)

EXAMPLES = 3


def train_overlap(run: RunDir, files: Sequence[str], name: str, *, own_split: bool):
    """``(record, warning)`` for the evaluated ``files`` (a split called ``name``);
    ``(None, None)`` when there is nothing to check or nothing found.

    ``own_split``: ``files`` are one of the run's own splits (skipped when the run
    grouped near-duplicates before splitting). The record goes to ``metrics.json``
    as ``near_duplicates_in_train``; the warning is one line for the console and
    the report."""
    data = run.read_config().get("data", {})
    distance = data.get("near_duplicate_distance", DataConfig().near_duplicate_distance)
    grouped = "max_distance" in _near_duplicate_report(run)
    if distance is None or (own_split and grouped):
        return None, None
    train = [r["file"] for r in run.read_splits() if r.get("split") == "train"]
    if not train or not files:
        return None, None
    logger.info(
        "evaluate: looking for near-duplicates of the %d %s images among the %d "
        "train images",
        len(files),
        name,
        len(train),
    )
    scan = scan_images(list(files) + train, cache_dir=data.get("cache_dir"))
    found, match = near_duplicates_across(
        scan.phashes[: len(files)], scan.phashes[len(files) :], distance
    )
    flagged = np.flatnonzero(found >= 0)
    if len(flagged) == 0:
        return None, None
    record = {
        "count": len(flagged),
        "of": len(files),
        "max_distance": int(found[flagged].max()),
        "threshold": distance,
        "examples": [
            {"file": files[i], "train": train[match[i]], "distance": int(found[i])}
            for i in flagged[:EXAMPLES]
        ],
    }
    return record, _warning(record, name, own_split)


def _near_duplicate_report(run: RunDir) -> dict:
    if not run.data_report.is_file():
        return {}
    return run.read_data_report().get("near_duplicates") or {}


def _warning(record: dict, name: str, own_split: bool) -> str:
    first = record["examples"][0]
    fix = (
        "the run was split before near-duplicates were grouped: train a new run "
        "for a clean split"
        if own_split
        else "these scores are optimistic"
    )
    return (
        f"{record['count']} {name} images have a near-duplicate in train (max "
        f"distance {record['max_distance']}): e.g. {first['file']} ~ "
        f"{first['train']} ({first['distance']} bits); {fix}."
    )
