"""TFRecord shards: the images' encoded bytes (never re-encoded) plus their labels.

A shard folder holds ``<split>-00000-of-00004.tfrecord`` files and a ``manifest.json``
(shards, counts, class counts and a membership digest per split, class names, tasks,
source). `check_shards_match` compares it with a run's prepared data: shards written
for other classes or other splits are a `UserError`, not a silent mismatch. Each
record has:

    image/encoded   bytes   the file's bytes, exactly as read
    image/path      bytes   the source path (UTF-8, as the catalog wrote it)
    label/artist    int64   class index, -1 when unknown
    label/genre     int64
    label/style     int64

Every task key is always present, so one parse spec reads every shard.
"""

from __future__ import annotations

import hashlib
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
        "members": members_digest(files),
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


def members_digest(files: Sequence[str]) -> str:
    """A digest of which images a split holds, in any order.

    File names only: the data folder may move between writing the shards and
    training (the labels are compared through the class counts)."""
    names = sorted(os.path.basename(os.fsdecode(f)) for f in files)
    text = "\n".join(names).encode("utf-8", "surrogateescape")
    return hashlib.sha256(text).hexdigest()


def check_shards_match(prepared, shard_dir: str | os.PathLike) -> None:
    """Raise `UserError` unless the shards in ``shard_dir`` hold this run's data.

    ``prepared`` is the run's `keras_art.data.catalog.prepare.PreparedData`. For
    every task of the run the manifest's class names must be the run's (same
    order: labels are stored as indices), and every non-empty split of the run
    must match the manifest's split: same count, same class counts, and (for
    manifests that record it) the same image files.
    """
    manifest = read_manifest(shard_dir)
    fix = (
        f"re-run python -m data_scripts.make_tfrecords --out {shard_dir} with this "
        f"run's --data, --task and --set data.* settings, or point "
        f"input.tfrecords at the shards written for them."
    )
    for task in prepared.tasks:
        written = manifest.get("class_names", {}).get(task)
        wanted = list(prepared.class_names[task])
        if written is None:
            raise UserError(
                f"TFRecord shards in {shard_dir} have no {task} labels (tasks: "
                f"{', '.join(manifest.get('tasks', [])) or 'none'}) but this run "
                f"trains {task}: {fix}"
            )
        if list(written) != wanted:
            raise UserError(
                f"TFRecord shards in {shard_dir} were written for {task} classes "
                f"{_short(written)} but this run has {_short(wanted)}: {fix}"
            )
    splits = manifest.get("splits", {})
    run_splits = {s: prepared.indices(s) for s in ("train", "val", "test")}
    run_splits = {s: idx for s, idx in run_splits.items() if len(idx)}
    for split, idx in run_splits.items():
        if split not in splits:
            raise UserError(
                f"TFRecord shards in {shard_dir} have no {split} split (they have "
                f"{', '.join(sorted(splits)) or 'none'}) but this run has "
                f"{len(idx)} {split} images: {fix}"
            )
    for split, idx in run_splits.items():
        problem = _split_mismatch(splits[split], prepared, idx)
        if problem:
            raise UserError(
                f"TFRecord shards in {shard_dir} hold a different {split} split "
                f"than this run ({problem}): {fix}"
            )


def _split_mismatch(entry: Mapping[str, Any], prepared, idx) -> str | None:
    if entry.get("count") != len(idx):
        return f"{entry.get('count')} records, this run has {len(idx)} images"
    for task in prepared.tasks:
        written = entry.get("class_counts", {}).get(task)
        lab = prepared.labels[task][idx]
        wanted = np.bincount(lab[lab >= 0], minlength=prepared.num_classes[task])
        if written is not None and list(written) != wanted.tolist():
            names = prepared.class_names[task]
            diff = [
                f"{names[c]}: {w} vs {int(wanted[c])}"
                for c, w in enumerate(written)
                if c < len(wanted) and w != wanted[c]
            ]
            return f"{task} class counts differ, shards vs run: {_short(diff)}"
    digest = entry.get("members")
    if digest and digest != members_digest([prepared.files[i] for i in idx]):
        return "the same counts but other image files"
    return None


def _short(items: Sequence[Any], limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(str(x) for x in items[:limit])
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return f"[{shown}{more}]"


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
    shuffle_files: bool = False,
    shuffle_seed: int | None = None,
):
    """Records as a `tf.data.Dataset` of dicts: ``image`` (encoded bytes), ``path``,
    ``artist``, ``genre``, ``style`` (int64, -1 = unknown).

    Args:
        pattern_or_dir: a shard folder (uses its manifest, or ``<split>-*.tfrecord``)
            or a glob pattern of shard files.
        split_name: the split to read from a folder; ignored for a pattern.
        cycle_length: shards read in parallel (default: all, up to 8).
        deterministic: keep the record order fixed; ``False`` is a little faster.
        shuffle_files: read the shards in a shuffled order (``shuffle_seed``), so
            training does not see the same shard sequence every epoch.
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

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        ds = ds.shuffle(len(files), seed=shuffle_seed)
    return ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=cycle,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    ).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
