"""Evaluation from TFRecord shards: a run's split read from ``make_tfrecords`` shards.

    python -m keras_art.evaluate --run RUN --shards /data/shards/style-576

A model trained on the original files is evaluated on the same split as stored in
shards (often prepared: re-encoded once at a bounded size, see
`keras_art.data.pipeline.reencode`). Before any model work the shards' manifest is
checked against the run (`check_manifest`: the split, the class names, the split's
count and image files); the records are then matched to the run's ``splits.csv``
rows by path (`align_records`) and their labels checked against the run's
(`check_labels`). Anything that does not match is a `ParameterError` naming
``shard_dir`` and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from keras_art.data.pipeline.reencode import ImageEncoding
from keras_art.data.pipeline.tfrecord import members_digest, read_shards, short_list
from keras_art.errors import ParameterError
from keras_art.registry import TASKS
from keras_art.run_dir import SPLITS_FILE, RunDir


class ShardRecord(NamedTuple):
    """One record of a split's shards."""

    path: str  # the source path as the catalog wrote it
    image: bytes  # the encoded image
    labels: dict[str, int]  # task -> class index, -1 = unknown


def rewrite_fix(shard_dir: str | os.PathLike, run: str | os.PathLike) -> str:
    """The fix for shards that do not hold the run's split: write them from the
    run's own settings (``config.json`` holds its data settings and task)."""
    run = RunDir(run)
    config = run.config
    task = run.read_config().get("task", "artist")
    return (
        f"write them with python -m data_scripts.make_tfrecords --task {task} "
        f"--config {config} --out {shard_dir}, or pass the shards written from "
        f"the run's data."
    )


def check_manifest(
    manifest: Mapping[str, Any],
    shard_dir: str | os.PathLike,
    run: str | os.PathLike,
    split: str,
    class_names: Mapping[str, Sequence[str]],
    files: Sequence[str],
) -> None:
    """Raise a `ParameterError` naming ``shard_dir`` unless ``manifest`` (of
    ``shard_dir``) holds the run's ``split``: the split is there, every task's
    class names are the run's (same order: labels are stored as indices), and the
    split has the run's ``files`` (same count and, for manifests that record it,
    the same ``members`` digest)."""

    fix = rewrite_fix(shard_dir, run)
    splits = manifest.get("splits", {})
    if split not in splits:
        raise ParameterError(
            f"{{shard_dir}} {shard_dir} has no {split} split (it has "
            f"{', '.join(sorted(splits)) or 'none'}): {fix}"
        )
    for task, wanted in class_names.items():
        written = manifest.get("class_names", {}).get(task)
        if written is None:
            raise ParameterError(
                f"{{shard_dir}} {shard_dir} has no {task} labels (tasks: "
                f"{', '.join(manifest.get('tasks', [])) or 'none'}) but the run "
                f"predicts {task}: {fix}"
            )
        if list(written) != list(wanted):
            raise ParameterError(
                f"{{shard_dir}} {shard_dir} was written for {task} classes "
                f"{short_list(written)} but the run has {short_list(wanted)}: {fix}"
            )
    entry = splits[split]
    if entry.get("count") != len(files):
        raise ParameterError(
            f"{{shard_dir}} {shard_dir} holds {entry.get('count')} {split} images but "
            f"the run's {SPLITS_FILE} has {len(files)}: {fix}"
        )
    digest = entry.get("members")
    if digest and digest != members_digest(files):
        raise ParameterError(
            f"{{shard_dir}} {shard_dir} holds other {split} image files than the run's "
            f"{SPLITS_FILE} (the same count, {len(files)}): {fix}"
        )


def read_records(shard_dir: str | os.PathLike, split: str) -> list[ShardRecord]:
    """Every record of ``split`` in ``shard_dir``, in shard order."""

    return [
        ShardRecord(
            os.fsdecode(r["path"]),  # the writer stored os.fsencode(path)
            bytes(r["image"]),
            {t: int(r[t]) for t in TASKS},
        )
        for r in read_shards(shard_dir, split).as_numpy_iterator()
    ]


def align_records(
    files: Sequence[str], paths: Sequence[str], shard_dir: str | os.PathLike
) -> list[int]:
    """For each of ``files`` (the run's rows), the index of its record in ``paths``
    (the records' stored paths); a `ParameterError` for a file with no record, a path
    stored twice or a record of no file.

    Matched on the path as the catalog wrote it. When that leaves files unmatched,
    matched on the file name instead, if every name is unique on both sides: the
    data folder may have moved between training and writing the shards, which the
    manifest's ``members`` digest (file names only) deliberately allows."""
    index = _unique_index(paths, shard_dir)
    if any(f not in index for f in files):
        names = [os.path.basename(p) for p in paths]
        wanted = [os.path.basename(f) for f in files]
        if len(set(names)) == len(names) and len(set(wanted)) == len(wanted):
            index, files = _unique_index(names, shard_dir), wanted
    missing = [f for f in files if f not in index]
    if missing:
        raise ParameterError(
            f"{{shard_dir}} {shard_dir}: {len(missing)} of the run's images have no "
            f"record (e.g. {missing[0]}). Rewrite the shards from the run's data."
        )
    if len(paths) != len(files):
        raise ParameterError(
            f"{{shard_dir}} {shard_dir}: {len(paths) - len(files)} records are not in "
            f"the run's split. Rewrite the shards from the run's data."
        )
    return [index[f] for f in files]


def _unique_index(keys: Sequence[str], shard_dir) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in index:
            raise ParameterError(
                f"{{shard_dir}} {shard_dir}: {key} is stored twice. Rewrite the shards "
                f"with python -m data_scripts.make_tfrecords."
            )
        index[key] = i
    return index


def check_labels(
    labels: Mapping[str, np.ndarray],
    records: Sequence[ShardRecord],
    files: Sequence[str],
    shard_dir: str | os.PathLike,
    run: str | os.PathLike,
) -> None:
    """Raise a `ParameterError` naming ``shard_dir`` unless the (aligned)
    ``records`` carry the run's ``labels`` (task -> class indices, aligned with
    ``files``)."""
    for task, wanted in labels.items():
        stored = np.array([r.labels[task] for r in records], np.int64)
        differ = np.flatnonzero(stored != wanted)
        if differ.size:
            i = differ[0]
            raise ParameterError(
                f"{{shard_dir}} {shard_dir}: {differ.size} {task} labels differ from "
                f"the run's {SPLITS_FILE} (e.g. {files[i]}: shards {stored[i]}, run "
                f"{wanted[i]}): {rewrite_fix(shard_dir, run)}"
            )


def image_source(shard_dir: str | os.PathLike, images: Mapping | None) -> dict:
    """The ``image_source`` entry of ``metrics.json`` for shards whose manifest's
    ``images`` entry is ``images``."""

    encoding = ImageEncoding.from_manifest(dict(images or {}))
    folder = Path(shard_dir).expanduser().resolve()
    if encoding.original:
        how = f"shards {folder} (original bytes)"
    else:
        how = (
            f"prepared shards {folder} ({encoding.bound.replace('_', ' ')} at most "
            f"{encoding.side} px, JPEG quality {encoding.quality})"
        )
    return {
        "kind": "shards",
        "dir": str(folder),
        "encoding": encoding.to_manifest(),
        "description": how,
    }
