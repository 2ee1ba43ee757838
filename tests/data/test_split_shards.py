"""The library's split loop behind make_tfrecords: each non-empty split written in
the seeded shuffled order; bad settings stop before the catalog scan."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from keras_art.config import Config
from keras_art.data.pipeline.reencode import ImageEncoding
from keras_art.data.pipeline.tfrecord import read_manifest, read_shards
from keras_art.data.split_shards import make_tfrecords, write_split_shards
from keras_art.errors import ParameterError


def _prepared(tmp_path, split):
    files = []
    for i in range(len(split)):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (4, 4), (i, 0, 0)).save(path)
        files.append(str(path))
    split = np.asarray(split, dtype=object)
    return SimpleNamespace(
        files=files,
        labels={"artist": np.arange(len(files)) % 2},
        class_names={"artist": ["a", "b"]},
        tasks=("artist",),
        indices=lambda name: np.flatnonzero(split == name),
    )


def test_each_non_empty_split_is_written_in_the_seeded_order(tmp_path):
    prepared = _prepared(tmp_path, ["train"] * 6 + ["val"] * 3)
    out = tmp_path / "shards"
    write_split_shards(
        prepared, str(out), seed=5, source="folder", shard_size=4,
        encoding=ImageEncoding(), threads=1,
    )  # fmt: skip
    manifest = read_manifest(out)
    assert sorted(manifest["splits"]) == ["train", "val"]  # no empty test split
    assert manifest["source"] == "folder"
    for split in ("train", "val"):
        expected = np.random.default_rng(5).permutation(prepared.indices(split))
        records = read_shards(out, split, cycle_length=1)
        written = [r["path"].numpy().decode() for r in records]
        assert written == [prepared.files[i] for i in expected]


def test_a_bad_shard_size_names_the_parameter_before_any_work(tmp_path):
    with pytest.raises(ParameterError, match="shard_size must be at least 1"):
        make_tfrecords(Config(), str(tmp_path / "shards"), shard_size=0)
    assert not (tmp_path / "shards").exists()
