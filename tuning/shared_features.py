"""The head stage's feature cache, computed once for all the workers of a distributed
search and shared through the search folder.

With ``--stage head`` every trial trains on the frozen backbone's features
(`tuning.hypermodel`); computing them is most of a small search's time, and every
worker would otherwise compute the same arrays again. The first worker to take the
lock (``<folder>/.feature_cache.lock``, an operating-system file lock, released when
its holder exits, even by ``kill -9``) computes them and publishes
``<folder>/feature_cache/`` in one rename (`keras_art.atomic_files.atomic_dir`); the
others wait on the lock, then read that folder. A worker killed while computing
leaves no folder, so the next one in line computes it.

The folder belongs to the search (``--overwrite`` removes it with the rest). It holds
the features as float16 (7 x 7 x 2048 values, 200 KB, per image at 224 px; twice
that for a training image and its flip) and the backbone's weights (about 100 MB for
ResNet50), so that every worker's models start from the backbone the features came
from, also when it was randomly initialised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import filelock
import numpy as np

from keras_art.atomic_files import atomic_dir

logger = logging.getLogger(__name__)

CACHE_DIR = "feature_cache"
LOCK_FILE = ".feature_cache.lock"
SPLITS = ("train", "val")


@dataclass
class FeatureArrays:
    """``train`` and ``val`` as `keras_art.training.feature_cache.compute_features`
    returns them (features, {task: targets}, {task: weights}), and the weights of the
    backbone that computed them."""

    train: tuple
    val: tuple
    backbone_weights: list


def shared_features(
    folder: Path, compute: Callable[[], FeatureArrays]
) -> FeatureArrays:
    """The arrays in ``folder/feature_cache``; the first caller computes them with
    ``compute()`` and writes them there while the others wait (see module doc)."""
    cache = Path(folder) / CACHE_DIR
    if not cache.is_dir():
        cache.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(cache.parent / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            logger.info(
                "search: another worker is computing the shared feature cache %s; "
                "waiting for it",
                cache,
            )
            lock.acquire()  # as long as its holder lives and computes
        try:
            if not cache.is_dir():
                arrays = compute()
                save(cache, arrays)
                logger.info("search: feature cache written to %s", cache)
                return arrays
        finally:
            lock.release()
    logger.info("search: reading the shared feature cache %s", cache)
    return load(cache)


def save(cache: Path, arrays: FeatureArrays) -> None:
    with atomic_dir(cache) as tmp:
        for split in SPLITS:
            feats, targets, weights = getattr(arrays, split)
            named = {f"y.{t}": v for t, v in targets.items()}
            named |= {f"w.{t}": v for t, v in weights.items()}
            np.savez(tmp / f"{split}.npz", features=feats, **named)
        np.savez(tmp / "backbone.npz", *arrays.backbone_weights)


def load(cache: Path) -> FeatureArrays:
    splits = {}
    for split in SPLITS:
        with np.load(cache / f"{split}.npz") as z:
            splits[split] = (
                z["features"],
                {k[2:]: z[k] for k in z.files if k.startswith("y.")},
                {k[2:]: z[k] for k in z.files if k.startswith("w.")},
            )
    with np.load(cache / "backbone.npz") as z:
        weights = [z[f"arr_{i}"] for i in range(len(z.files))]
    return FeatureArrays(splits["train"], splits["val"], weights)
