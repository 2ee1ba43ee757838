"""A dataset's splits as TFRecord shards: the library behind ``make_tfrecords``.

`make_tfrecords` prepares the data exactly as a training run does (validation,
subsets, splits: `keras_art.data.catalog.prepare`) and writes each split with
`keras_art.data.pipeline.tfrecord.write_shards`. Evaluation from shards
(`keras_art.evaluation.shards`) and training from them (``input.tfrecords``) read
what this writes, so the split loop lives here, once; the script only maps flags.
It sits above ``catalog`` and ``pipeline`` (it needs both; they do not import each
other).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from keras_art.config import Config
from keras_art.data.catalog.prepare import PreparedData, prepare_data
from keras_art.data.catalog.splits import SPLITS
from keras_art.data.pipeline.reencode import ImageEncoding
from keras_art.data.pipeline.tfrecord import (
    DEFAULT_SHARD_SIZE,
    check_encoding,
    read_manifest,
    write_shards,
)
from keras_art.errors import ParameterError

logger = logging.getLogger(__name__)


def make_tfrecords(
    cfg: Config,
    out: str,
    shard_size: int = DEFAULT_SHARD_SIZE,
    encoding: ImageEncoding | None = None,
    threads: int = 0,
) -> dict[str, Any]:
    """Prepare ``cfg``'s data and write one set of shards per split; return the
    manifest.

    ``encoding`` stores images re-encoded at a bounded size (default: original
    bytes); ``threads`` re-encode them (0: every usable core). Shards that an
    earlier call with the same settings finished are kept."""
    if shard_size < 1:
        raise ParameterError(
            f"{{shard_size}} must be at least 1. Received: {shard_size}"
        )
    encoding = (encoding or ImageEncoding()).validate()
    check_encoding(out, encoding)  # before the catalog scan, which can take long
    _warn_if_below_image_size(encoding, cfg.augment.image_size)
    threads = threads or os.cpu_count() or 1
    prepared = prepare_data(cfg)
    write_split_shards(
        prepared,
        out,
        seed=cfg.data.split_seed,
        source=cfg.data.format,
        shard_size=shard_size,
        encoding=encoding,
        threads=threads,
    )
    return read_manifest(out)


def write_split_shards(
    prepared: PreparedData,
    out: str,
    *,
    seed: int,
    source: str,
    shard_size: int,
    encoding: ImageEncoding,
    threads: int,
) -> None:
    """Write each non-empty split of ``prepared`` as shards in ``out``.

    Records go in a ``seed``ed shuffled order: readers list files sorted by class,
    and a split is read back as one stream through a shuffle buffer far smaller
    than the split."""
    for split in SPLITS:
        idx = prepared.indices(split)
        if len(idx) == 0:
            continue
        idx = np.random.default_rng(seed % 2**32).permutation(idx)
        write_shards(
            [prepared.files[i] for i in idx],
            {t: prepared.labels[t][idx] for t in prepared.tasks},
            out,
            split,
            shard_size=shard_size,
            class_names={t: prepared.class_names[t] for t in prepared.tasks},
            source=source,
            encoding=encoding,
            threads=threads,
        )


def _warn_if_below_image_size(encoding: ImageEncoding, image_size: int) -> None:
    if not encoding.original and encoding.side < image_size:
        logger.warning(
            "--%s %d is below augment.image_size %d: evaluation will upsample "
            "every image.",
            encoding.bound.replace("_", "-"), encoding.side, image_size,
        )  # fmt: skip
