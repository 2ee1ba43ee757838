"""TFRecord shards: the images' encoded bytes (never re-encoded) plus their labels.

A shard folder holds ``<split>-00000-of-00004.tfrecord`` files and a ``manifest.json``
(shards and counts per split, class names, tasks, source). Each record has:

    image/encoded   bytes   the file's bytes, exactly as read
    image/path      bytes   the source path (UTF-8, as the catalog wrote it)
    label/artist    int64   class index, -1 when unknown
    label/genre     int64
    label/style     int64

Every task key is always present, so one parse spec reads every shard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_art.errors import UserError
from keras_art.io_utils import atomic_write_json
from keras_art.registry import TASKS

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
DEFAULT_SHARD_SIZE = 1024
IMAGE_KEY, PATH_KEY = "image/encoded", "image/path"


def label_key(task: str) -> str:
    return f"label/{task}"


def shard_name(split_name: str, index: int, num_shards: int) -> str:
    return f"{split_name}-{index:05d}-of-{num_shards:05d}.tfrecord"


def write_shards(
    files: Sequence[str],
    labels: Mapping[str, np.ndarray],
    out_dir: str | os.PathLike,
    split_name: str,
    shard_size: int = DEFAULT_SHARD_SIZE,
    class_names: Mapping[str, Sequence[str]] | None = None,
    source: str | None = None,
) -> list[Path]:
    """Write ``files`` and their labels as ``<split_name>-*.tfrecord`` shards.

    Each shard is written under a temporary name and renamed when complete; the
    manifest's entry for ``split_name`` is then replaced (atomically), and shards of
    an earlier write of the same split that are no longer listed are removed.

    Args:
        files: image paths; their bytes are stored as they are.
        labels: task -> int array aligned with ``files`` (-1 = unknown). Tasks not
            given are stored as -1.
        out_dir: the shard folder (created if needed).
        split_name: ``"train"``, ``"val"``, ``"test"``, ...
        shard_size: records per shard.
        class_names: task -> names, recorded in the manifest.
        source: where the images came from (e.g. the dataset format), for the manifest.

    Returns:
        The shard paths, in order.
    """
    import tensorflow as tf

    if shard_size < 1:
        raise UserError(f"shard_size must be at least 1. Received: {shard_size}")
    if not split_name or "/" in split_name or "-" in split_name:
        raise UserError(
            f"split name {split_name!r} must be a plain word like train or val."
        )
    unknown = set(labels) - set(TASKS)
    if unknown:
        raise UserError(
            f"Unknown label task(s) {sorted(unknown)}; expected some of {TASKS}."
        )
    n = len(files)
    arrays = {}
    for task in TASKS:
        arr = np.asarray(labels.get(task, np.full(n, -1)), dtype=np.int64)
        if arr.shape != (n,):
            raise ValueError(f"labels[{task!r}] has shape {arr.shape}, expected ({n},)")
        arrays[task] = arr

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    num_shards = max(1, -(-n // shard_size))
    paths = []
    for s in range(num_shards):
        path = out / shard_name(split_name, s, num_shards)
        tmp = path.with_name(f".{path.name}.tmp")
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for i in range(s * shard_size, min(n, (s + 1) * shard_size)):
                writer.write(_example(files[i], {t: arrays[t][i] for t in TASKS}))
        os.replace(tmp, path)
        paths.append(path)

    manifest = read_manifest(out) if (out / MANIFEST).is_file() else _new_manifest()
    old = set(manifest["splits"].get(split_name, {}).get("shards", []))
    manifest["splits"][split_name] = {
        "shards": [p.name for p in paths],
        "count": n,
        "class_counts": {
            t: np.bincount(a[a >= 0], minlength=len((class_names or {}).get(t, [])))
            .astype(int)
            .tolist()
            for t, a in arrays.items()
            if t in labels
        },
    }
    manifest["tasks"] = sorted(set(manifest["tasks"]) | set(labels), key=TASKS.index)
    if class_names:
        manifest["class_names"].update({t: list(v) for t, v in class_names.items()})
    if source:
        manifest["source"] = source
    atomic_write_json(out / MANIFEST, manifest)
    for stale in old - {p.name for p in paths}:
        (out / stale).unlink(missing_ok=True)
    return paths


def _new_manifest() -> dict[str, Any]:
    return {
        "format": "keras_art.tfrecord",
        "version": MANIFEST_VERSION,
        "keys": {
            "image": IMAGE_KEY,
            "path": PATH_KEY,
            **{t: label_key(t) for t in TASKS},
        },
        "tasks": [],
        "class_names": {},
        "source": None,
        "splits": {},
    }


def _example(file: str, labels: Mapping[str, int]) -> bytes:
    import tensorflow as tf

    with open(file, "rb") as fh:
        data = fh.read()
    feature = {
        IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        PATH_KEY: tf.train.Feature(
            # surrogateescape keeps undecodable file names byte-exact
            bytes_list=tf.train.BytesList(
                value=[os.fsencode(file) if isinstance(file, str) else bytes(file)]
            )
        ),
    }
    for task, value in labels.items():
        feature[label_key(task)] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=[int(value)])
        )
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString()


def read_manifest(shard_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``manifest.json`` of a shard folder, or `UserError` if there is none."""
    path = Path(shard_dir) / MANIFEST
    if not path.is_file():
        raise UserError(
            f"{shard_dir}: no {MANIFEST}. Pass a folder written by "
            f"python -m data_scripts.make_tfrecords."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not valid JSON ({exc}). Rewrite the shards."
        ) from None
    if manifest.get("format") != "keras_art.tfrecord":
        raise UserError(f"{path}: not a keras_art shard manifest. Rewrite the shards.")
    return manifest


def shard_files(pattern_or_dir: str | os.PathLike, split_name: str | None) -> list[str]:
    """The shard paths that `read_shards` reads, in order."""
    import tensorflow as tf

    target = os.fspath(pattern_or_dir)
    if Path(target).is_dir():
        root = Path(target)
        if (root / MANIFEST).is_file():
            splits = read_manifest(root)["splits"]
            if split_name not in splits:
                raise UserError(
                    f"{target}: no {split_name!r} split in {MANIFEST}. Available: "
                    f"{', '.join(sorted(splits)) or 'none'}."
                )
            files = [str(root / name) for name in splits[split_name]["shards"]]
        else:
            files = sorted(tf.io.gfile.glob(str(root / f"{split_name}-*.tfrecord")))
    else:
        files = sorted(tf.io.gfile.glob(target))
    if not files:
        raise UserError(
            f"No TFRecord shards for split {split_name!r} at {target}. Write them "
            f"with python -m data_scripts.make_tfrecords."
        )
    return files


def parse_spec() -> dict[str, Any]:
    """The `tf.io.parse_example` features of a keras_art record."""
    import tensorflow as tf

    spec = {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        PATH_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    for task in TASKS:
        spec[label_key(task)] = tf.io.FixedLenFeature([], tf.int64, default_value=-1)
    return spec


def read_shards(
    pattern_or_dir: str | os.PathLike,
    split_name: str | None = None,
    *,
    cycle_length: int | None = None,
    deterministic: bool = True,
):
    """Records as a `tf.data.Dataset` of dicts: ``image`` (encoded bytes), ``path``,
    ``artist``, ``genre``, ``style`` (int64, -1 = unknown).

    Args:
        pattern_or_dir: a shard folder (uses its manifest, or ``<split>-*.tfrecord``)
            or a glob pattern of shard files.
        split_name: the split to read from a folder; ignored for a pattern.
        cycle_length: shards read in parallel (default: all, up to 8).
        deterministic: keep the record order fixed; ``False`` is a little faster.
    """
    import tensorflow as tf

    files = shard_files(pattern_or_dir, split_name)
    cycle = cycle_length or min(len(files), 8)
    spec = parse_spec()

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        out = {"image": ex[IMAGE_KEY], "path": ex[PATH_KEY]}
        out.update({task: ex[label_key(task)] for task in TASKS})
        return out

    return (
        tf.data.Dataset.from_tensor_slices(files)
        .interleave(
            tf.data.TFRecordDataset,
            cycle_length=cycle,
            block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    )
