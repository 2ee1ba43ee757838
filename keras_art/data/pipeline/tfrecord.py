"""TFRecord shards: the images' encoded bytes plus their labels.

A shard folder holds ``<split>-00000-of-00004.tfrecord`` files and a ``manifest.json``
(shards, counts, class counts and a membership digest per split, class names, tasks,
source, and ``images``: how images are stored, see
`keras_art.data.pipeline.reencode.ImageEncoding`). `check_shards_match` compares it
with a run's prepared data: shards written for other classes or other splits are a
`UserError`, not a silent mismatch. Each record has:

    image/encoded   bytes   the file's bytes, exactly as read (or re-encoded once
                            at a bounded size: the manifest's ``images``)
    image/path      bytes   the source path (UTF-8, as the catalog wrote it)
    label/artist    int64   class index, -1 when unknown
    label/genre     int64
    label/style     int64

Every task key is always present, so one parse spec reads every shard.

Writing is resumable. Each shard is written under a temporary name and renamed when
complete, then recorded in ``.progress.json`` with a key (a digest of the image
encoding and of its records' paths and labels, in order), its record count and
byte size. A re-run skips every shard whose file and key match (so a killed
conversion of 80,000 images continues where it stopped) and refuses to mix image
encodings in one folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_art.atomic_files import atomic_path, atomic_write_json, is_leftover
from keras_art.data.pipeline.reencode import ImageEncoding, read_encoded
from keras_art.errors import ParameterError, UserError
from keras_art.registry import TASKS

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PROGRESS = ".progress.json"  # finished shards, for resuming (see module doc)
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
    encoding: ImageEncoding | None = None,
    threads: int = 1,
) -> list[Path]:
    """Write ``files`` and their labels as ``<split_name>-*.tfrecord`` shards.

    Each shard is written under a temporary name and renamed when complete, and
    shards finished by an earlier write with the same content are kept (see the
    module doc); the manifest's entry for ``split_name`` is then replaced
    (atomically), and shards of an earlier write of the same split that are no
    longer listed are removed.

    Args:
        files: image paths.
        labels: task -> int array aligned with ``files`` (-1 = unknown). Tasks not
            given are stored as -1.
        out_dir: the shard folder (created if needed).
        split_name: ``"train"``, ``"val"``, ``"test"``, ...
        shard_size: records per shard.
        class_names: task -> names, recorded in the manifest.
        source: where the images came from (e.g. the dataset format), for the manifest.
        encoding: how images are stored (default: their bytes as they are); a
            folder holds one encoding, another one is a `UserError`.
        threads: threads re-encoding images (unused for the original bytes).

    Returns:
        The shard paths, in order.
    """
    encoding = (encoding or ImageEncoding()).validate()
    if shard_size < 1:
        raise UserError(f"shard_size must be at least 1. Received: {shard_size}")
    if not split_name or "/" in split_name or "-" in split_name:
        raise UserError(
            f"split name {split_name!r} must be a plain word like train or val."
        )
    arrays = _label_arrays(labels, len(files))
    out = Path(out_dir)
    check_encoding(out, encoding)
    out.mkdir(parents=True, exist_ok=True)
    paths = _write_missing_shards(
        out, split_name, files, arrays, shard_size, encoding, threads
    )
    _update_manifest(
        out, split_name, files, labels, arrays, paths, class_names, source, encoding
    )
    return paths


def _write_missing_shards(
    out: Path,
    split_name: str,
    files: Sequence[str],
    arrays: Mapping[str, np.ndarray],
    shard_size: int,
    encoding: ImageEncoding,
    threads: int,
) -> list[Path]:
    """Every shard of the split in ``out``, written unless an earlier write already
    finished it with the same content (``.progress.json``); the shard paths."""
    progress = _read_progress(out, encoding)
    n = len(files)
    num_shards = max(1, -(-n // shard_size))
    paths, clock = [], _Clock(split_name, n)
    for s in range(num_shards):
        rows = range(s * shard_size, min(n, (s + 1) * shard_size))
        path = out / shard_name(split_name, s, num_shards)
        key = _shard_key(encoding, files, arrays, rows)
        if not _shard_done(progress, path, key):
            members = [files[i] for i in rows]
            images = read_encoded(members, encoding, threads)
            entry = _write_shard_file(path, members, images, arrays, rows)
            progress["shards"][path.name] = {"key": key, **entry}
            atomic_write_json(out / PROGRESS, progress)
            clock.written(len(rows), s, num_shards)
        else:
            clock.skipped(len(rows))
        paths.append(path)
    clock.done()
    return paths


def _label_arrays(labels: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Every task's labels as int64 (n,), -1 for tasks not given."""
    unknown = set(labels) - set(TASKS)
    if unknown:
        raise UserError(
            f"Unknown label task(s) {sorted(unknown)}; expected some of {TASKS}."
        )
    arrays = {}
    for task in TASKS:
        arr = np.asarray(labels.get(task, np.full(n, -1)), dtype=np.int64)
        if arr.shape != (n,):
            raise ValueError(f"labels[{task!r}] has shape {arr.shape}, expected ({n},)")
        arrays[task] = arr
    return arrays


def check_encoding(out: str | os.PathLike, encoding: ImageEncoding) -> None:
    """Raise a `ParameterError` (naming ``out``) when ``out`` already holds shards
    stored with another image encoding (finished, or from a run that stopped)."""
    out = Path(out)
    found = None
    if (out / PROGRESS).is_file():
        found = _load_json(out / PROGRESS).get("images")
    elif (out / MANIFEST).is_file():
        found = read_manifest(out).get("images")
    if found is None and not (out / MANIFEST).is_file():
        return
    written = ImageEncoding.from_manifest(found)
    if written.to_manifest() != encoding.to_manifest():
        raise ParameterError(
            f"{out} holds shards written with {written.settings()}, but this run "
            f"asks for {encoding.settings()}. Pass those settings to resume or reuse "
            f"them, or another {{out}} (or delete {out}) to write the new encoding."
        )


def _read_progress(out: Path, encoding: ImageEncoding) -> dict[str, Any]:
    if (out / PROGRESS).is_file():
        return _load_json(out / PROGRESS)
    return {"images": encoding.to_manifest(), "shards": {}}


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}). Delete it.") from None


def _shard_key(encoding: ImageEncoding, files, arrays, rows: range) -> str:
    """A digest of what a shard holds: the encoding, then its records in order."""
    h = hashlib.sha256(json.dumps(encoding.to_manifest(), sort_keys=True).encode())
    for i in rows:
        h.update(os.fsencode(files[i]) + b"\0")
        h.update(np.asarray([arrays[t][i] for t in TASKS], np.int64).tobytes())
    return h.hexdigest()


def _shard_done(progress: Mapping[str, Any], path: Path, key: str) -> bool:
    entry = progress["shards"].get(path.name)
    return (
        entry is not None
        and entry.get("key") == key
        and path.is_file()
        and path.stat().st_size == entry.get("bytes")
    )


def _write_shard_file(path: Path, files, images, arrays, rows) -> dict[str, int]:
    """Write one shard under a temporary name, then rename it; return its record
    count, bytes, source bytes and re-encoded record count."""

    source_bytes = reencoded = 0
    with atomic_path(path) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        for f, i, image in zip(files, rows, images, strict=True):
            source_bytes += image.source_bytes
            reencoded += image.reencoded
            writer.write(_example(f, image.data, {t: arrays[t][i] for t in TASKS}))
    return {
        "records": len(rows),
        "bytes": path.stat().st_size,
        "source_bytes": source_bytes,
        "reencoded": reencoded,
    }


class _Clock:
    """Progress lines for one split: images/s of the images written this run."""

    def __init__(self, split_name: str, n: int):
        self.split, self.n = split_name, n
        self.start = time.perf_counter()
        self.done_images = self.new_images = self.skipped_images = 0

    def written(self, count: int, index: int, num_shards: int) -> None:
        self.done_images += count
        self.new_images += count
        rate = self.new_images / max(time.perf_counter() - self.start, 1e-9)
        logger.info(
            "%s: shard %d/%d written (%d/%d images, %.1f images/s)",
            self.split, index + 1, num_shards, self.done_images, self.n, rate,
        )  # fmt: skip

    def skipped(self, count: int) -> None:
        self.done_images += count
        self.skipped_images += count

    def done(self) -> None:
        if self.skipped_images:
            logger.info(
                "%s: %d images were in shards already written; kept them",
                self.split, self.skipped_images,
            )  # fmt: skip


def _update_manifest(
    out, split_name, files, labels, arrays, paths, class_names, source, encoding
) -> None:
    """Record ``split_name``'s shards in the manifest; remove its stale shards."""
    manifest = read_manifest(out) if (out / MANIFEST).is_file() else _new_manifest()
    progress = _load_json(out / PROGRESS)
    old = set(manifest["splits"].get(split_name, {}).get("shards", []))
    written = [progress["shards"][p.name] for p in paths]
    manifest["splits"][split_name] = {
        "shards": [p.name for p in paths],
        "count": len(files),
        "members": members_digest(files),
        "class_counts": {
            t: np.bincount(a[a >= 0], minlength=len((class_names or {}).get(t, [])))
            .astype(int)
            .tolist()
            for t, a in arrays.items()
            if t in labels
        },
        "bytes": sum(e["bytes"] for e in written),
        "source_bytes": sum(e["source_bytes"] for e in written),
        "reencoded": sum(e["reencoded"] for e in written),
    }
    manifest["images"] = encoding.to_manifest()
    manifest["tasks"] = sorted(set(manifest["tasks"]) | set(labels), key=TASKS.index)
    if class_names:
        manifest["class_names"].update({t: list(v) for t, v in class_names.items()})
    if source:
        manifest["source"] = source
    atomic_write_json(out / MANIFEST, manifest)
    # Also shards of a stopped write of this split with another shard count.
    started = {n for n in progress["shards"] if n.startswith(f"{split_name}-")}
    stale = (old | started) - {p.name for p in paths}
    for name in stale:
        (out / name).unlink(missing_ok=True)
        progress["shards"].pop(name, None)
    if stale:
        atomic_write_json(out / PROGRESS, progress)
    for tmp in out.glob(f".{split_name}-*.tfrecord.*"):
        if is_leftover(tmp):  # a shard write that was stopped
            tmp.unlink()


def members_digest(files: Sequence[str]) -> str:
    """A digest of which images a split holds, in any order.

    File names only: the data folder may move between writing the shards and
    training (the labels are compared through the class counts)."""
    names = sorted(os.path.basename(os.fsdecode(f)) for f in files)
    text = "\n".join(names).encode("utf-8", "surrogateescape")
    return hashlib.sha256(text).hexdigest()


def check_shards_match(prepared, shard_dir: str | os.PathLike) -> None:
    """Raise a `ParameterError` unless the shards in ``shard_dir`` hold this run's data.

    ``prepared`` is the run's `keras_art.data.catalog.prepare.PreparedData`. For
    every task of the run the manifest's class names must be the run's (same
    order: labels are stored as indices), and every non-empty split of the run
    must match the manifest's split: same count, same class counts, and (for
    manifests that record it) the same image files.
    """
    manifest = read_manifest(shard_dir)
    fix = (
        f"re-run python -m data_scripts.make_tfrecords --out {shard_dir} with this "
        f"run's {{data.path}}, {{task}} and data.* settings, or point "
        f"input.tfrecords at the shards written for them."
    )
    for task in prepared.tasks:
        written = manifest.get("class_names", {}).get(task)
        wanted = list(prepared.class_names[task])
        if written is None:
            raise ParameterError(
                f"TFRecord shards in {shard_dir} have no {task} labels (tasks: "
                f"{', '.join(manifest.get('tasks', [])) or 'none'}) but this run "
                f"trains {task}: {fix}"
            )
        if list(written) != wanted:
            raise ParameterError(
                f"TFRecord shards in {shard_dir} were written for {task} classes "
                f"{short_list(written)} but this run has {short_list(wanted)}: {fix}"
            )
    splits = manifest.get("splits", {})
    run_splits = {s: prepared.indices(s) for s in ("train", "val", "test")}
    run_splits = {s: idx for s, idx in run_splits.items() if len(idx)}
    for split, idx in run_splits.items():
        if split not in splits:
            raise ParameterError(
                f"TFRecord shards in {shard_dir} have no {split} split (they have "
                f"{', '.join(sorted(splits)) or 'none'}) but this run has "
                f"{len(idx)} {split} images: {fix}"
            )
    for split, idx in run_splits.items():
        problem = _split_mismatch(splits[split], prepared, idx)
        if problem:
            raise ParameterError(
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
            return f"{task} class counts differ, shards vs run: {short_list(diff)}"
    digest = entry.get("members")
    if digest and digest != members_digest([prepared.files[i] for i in idx]):
        return "the same counts but other image files"
    return None


def short_list(items: Sequence[Any], limit: int = 8) -> str:
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


def _example(file: str, data: bytes, labels: Mapping[str, int]) -> bytes:
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
