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


def _prepared(files, labels, split, names):
    from keras_art.data.catalog.prepare import PreparedData

    return PreparedData(
        files=list(files),
        labels={t: np.asarray(v) for t, v in labels.items()},
        class_names={t: list(v) for t, v in names.items()},
        split=np.asarray(split),
        tasks=tuple(labels),
    )


def _write_run_shards(prepared, out):
    """What data_scripts.make_tfrecords writes for a run: one shard set a split."""
    for split in ("train", "val", "test"):
        idx = prepared.indices(split)
        if len(idx):
            write_shards(
                [prepared.files[i] for i in idx],
                {t: prepared.labels[t][idx] for t in prepared.tasks},
                out,
                split,
                shard_size=2,
                class_names=prepared.class_names,
            )


def test_shards_are_checked_against_the_run(images, tmp_path):
    """Shards written for other classes or other splits are a UserError naming
    the mismatch and the command that rewrites them, not silently wrong labels."""
    from keras_art.data.pipeline.tfrecord import check_shards_match

    files, labels = images
    labels = {"artist": labels["artist"]}
    names = {"artist": ["a", "b", "c"]}
    split = ["train"] * 5 + ["val"] * 2
    out = tmp_path / "shards"
    _write_run_shards(_prepared(files, labels, split, names), out)
    check_shards_match(_prepared(files, labels, split, names), out)  # matches

    renamed = {"artist": ["a", "b", "z"]}
    with pytest.raises(UserError, match=r"written for artist classes \[a, b, c\] but "
                       r"this run has \[a, b, z\].*make_tfrecords"):  # fmt: skip
        check_shards_match(_prepared(files, labels, split, renamed), out)
    with pytest.raises(UserError, match="no style labels.*make_tfrecords"):
        check_shards_match(
            _prepared(files, {"style": labels["artist"]}, split, {"style": ["x"] * 3}),
            out,
        )
    moved = ["train"] * 4 + ["val"] * 3  # file 4 went to val
    with pytest.raises(UserError, match="different train split.*5 records.*4 images"):
        check_shards_match(_prepared(files, labels, moved, names), out)
    # Files 0 and 5 (both artist 0) swap splits: counts agree, files do not.
    swap_labels = {"artist": np.array([0, 1, 2, 0, 1, 0, 2])}
    _write_run_shards(_prepared(files, swap_labels, split, names), out)
    swapped = ["val"] + ["train"] * 5 + ["val"]
    with pytest.raises(UserError, match="different train split.*other image files"):
        check_shards_match(_prepared(files, swap_labels, swapped, names), out)
    with_test = ["train"] * 5 + ["val", "test"]
    with pytest.raises(UserError, match="no test split"):
        check_shards_match(_prepared(files, swap_labels, with_test, names), out)
