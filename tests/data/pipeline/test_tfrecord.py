"""TFRecord shards: bytes and labels round-trip exactly; the manifest describes them."""

from pathlib import Path

import numpy as np
import pytest

from keras_art.data.pipeline.tfrecord import (
    MANIFEST,
    read_manifest,
    read_shards,
    shard_files,
    write_shards,
)
from keras_art.errors import UserError


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "img"
    folder.mkdir()
    files = []
    for i in range(7):
        # Arbitrary bytes: the shards must not decode or re-encode anything.
        path = folder / f"Style_{i}/caf\u00e3\u00a9-{i}.jpg"
        path.parent.mkdir()
        path.write_bytes(rng.bytes(50 + i))
        files.append(str(path))
    labels = {
        "artist": np.array([0, 1, 2, 0, 1, -1, 2]),
        "style": np.array([1, 1, 0, 0, 1, 0, 1]),
    }
    return files, labels


def _records(ds):
    return [{k: v.numpy() for k, v in ex.items()} for ex in ds]


def test_round_trip_bytes_paths_and_labels(images, tmp_path):
    files, labels = images
    out = tmp_path / "shards"
    names = {"artist": ["a", "b", "c"], "style": ["s0", "s1"]}
    paths = write_shards(files, labels, out, "train", shard_size=3, class_names=names)
    assert [p.name for p in paths] == [
        "train-00000-of-00003.tfrecord",
        "train-00001-of-00003.tfrecord",
        "train-00002-of-00003.tfrecord",
    ]
    records = _records(read_shards(out, "train"))
    assert len(records) == len(files)
    by_path = {r["path"].decode(): r for r in records}
    assert set(by_path) == set(files)
    for i, f in enumerate(files):
        r = by_path[f]
        assert r["image"] == Path(f).read_bytes()
        assert r["artist"] == labels["artist"][i] and r["style"] == labels["style"][i]
        assert r["genre"] == -1  # not given -> missing
    assert {k for k in records[0]} == {"image", "path", "artist", "genre", "style"}


def test_dataset_specs_for_the_pipeline(images, tmp_path):
    import tensorflow as tf

    files, labels = images
    write_shards(files, labels, tmp_path, "val", shard_size=4)
    spec = read_shards(tmp_path, "val").element_spec
    assert spec["image"].dtype == tf.string and spec["path"].dtype == tf.string
    assert all(spec[t].dtype == tf.int64 for t in ("artist", "genre", "style"))
    # A glob pattern works too, and deterministic order is the file order.
    ds = read_shards(str(tmp_path / "val-*.tfrecord"), cycle_length=1)
    assert [r["path"].decode() for r in _records(ds)] == files


def test_manifest_counts_splits_and_rewrites(images, tmp_path):
    files, labels = images
    names = {"artist": ["a", "b", "c"], "style": ["s0", "s1"]}
    write_shards(files, labels, tmp_path, "train", shard_size=2, class_names=names,
                 source="wikiart")  # fmt: skip
    write_shards(files[:2], {k: v[:2] for k, v in labels.items()}, tmp_path, "val")
    m = read_manifest(tmp_path)
    assert m["source"] == "wikiart" and m["tasks"] == ["artist", "style"]
    assert m["class_names"] == names
    assert (
        m["splits"]["train"]["count"] == 7 and len(m["splits"]["train"]["shards"]) == 4
    )
    assert m["splits"]["train"]["class_counts"]["artist"] == [2, 2, 2]
    assert m["splits"]["val"]["count"] == 2
    # Rewriting a split with fewer shards removes the stale ones.
    write_shards(files[:3], {k: v[:3] for k, v in labels.items()}, tmp_path, "train",
                 shard_size=2)  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("train-*")) == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    assert read_manifest(tmp_path)["splits"]["train"]["count"] == 3
    assert len(_records(read_shards(tmp_path, "train"))) == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_errors_are_user_errors(images, tmp_path):
    files, labels = images
    with pytest.raises(UserError, match="no manifest.json|no " + MANIFEST):
        read_manifest(tmp_path)
    with pytest.raises(UserError, match="No TFRecord shards"):
        shard_files(tmp_path, "train")
    write_shards(files, labels, tmp_path, "train")
    with pytest.raises(UserError, match="no 'test' split"):
        read_shards(tmp_path, "test")
    with pytest.raises(UserError, match="Unknown label task"):
        write_shards(files, {"colour": labels["style"]}, tmp_path, "train")
