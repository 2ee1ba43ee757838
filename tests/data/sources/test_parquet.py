"""Parquet shards: streamed, extracted once, names from the HF metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from keras_art.config import DataConfig
from keras_art.data.sources import load_catalog
from keras_art.data.sources.parquet import image_extension
from keras_art.errors import UserError
from tests.data.fixtures import PARQUET_NAMES, make_parquet


def _cfg(tmp_path, **kw):
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return DataConfig(format="parquet", path=str(tmp_path / "ds"), **kw)


def test_extracts_images_once_and_keeps_labels(tmp_path):
    fx = make_parquet(tmp_path / "ds")
    cat = load_catalog(_cfg(tmp_path, drop_unknown=False))
    assert len(cat) == fx["rows"] == 12
    assert cat.official_split is None  # the single-split release
    for t, names in PARQUET_NAMES.items():
        assert cat.class_names[t] == names
        np.testing.assert_array_equal(cat.labels[t], fx["labels"][t])
    files = [Path(f) for f in cat.files]
    assert all(f.is_file() for f in files)
    assert files[0].name == "000000.jpg" and files[1].name == "000001.png"
    assert files[6].parent.name == "train-00001-of-00002"
    assert files[0].parts[-4] == "parquet"
    # the bytes are the shard's bytes
    assert files[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    mtimes = [f.stat().st_mtime_ns for f in files]
    again = load_catalog(_cfg(tmp_path, drop_unknown=False))
    assert again.files == cat.files
    assert [Path(f).stat().st_mtime_ns for f in again.files] == mtimes


def test_unknown_classes_dropped_by_default(tmp_path):
    make_parquet(tmp_path / "ds")
    kept = load_catalog(_cfg(tmp_path, drop_unknown=False))
    cat = load_catalog(_cfg(tmp_path))
    assert cat.class_names["artist"] == ["Claude Monet", "Vincent van Gogh"]
    assert cat.class_names["genre"] == ["portrait", "landscape"]
    assert cat.class_names["style"] == PARQUET_NAMES["style"]
    # Unknown Artist (0) -> -1, others shift down by one
    want = np.where(kept.labels["artist"] == 0, -1, kept.labels["artist"] - 1)
    np.testing.assert_array_equal(cat.labels["artist"], want)
    # Unknown Genre is the LAST index: others keep theirs
    want = np.where(kept.labels["genre"] == 2, -1, kept.labels["genre"])
    np.testing.assert_array_equal(cat.labels["genre"], want)
    assert any("Unknown Artist" in n for n in cat.notes)


def test_names_file_when_metadata_missing(tmp_path):
    make_parquet(tmp_path / "ds", metadata=False)
    with pytest.raises(UserError, match="data.names_file"):
        load_catalog(_cfg(tmp_path))
    names = tmp_path / "names.json"
    names.write_text(json.dumps(PARQUET_NAMES))
    cat = load_catalog(_cfg(tmp_path, names_file=str(names), drop_unknown=False))
    assert cat.class_names == PARQUET_NAMES


def test_label_out_of_range_names_shard_and_row(tmp_path):
    make_parquet(tmp_path / "ds", metadata=False)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({**PARQUET_NAMES, "artist": ["only one"]}))
    with pytest.raises(UserError, match=r"train-00000-of-00002.parquet: row 1: artist"):
        load_catalog(_cfg(tmp_path, names_file=str(names)))


def test_single_file_path_and_missing_path(tmp_path):
    make_parquet(tmp_path / "ds", shards=1)
    shard = next((tmp_path / "ds" / "data").glob("*.parquet"))
    cfg = DataConfig(format="parquet", path=str(shard), cache_dir=str(tmp_path / "c"))
    assert len(load_catalog(cfg)) == 6
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no \\*.parquet files"):
        load_catalog(DataConfig(format="parquet", path=str(tmp_path / "empty")))


def test_image_extension_from_magic_bytes():
    assert image_extension(b"\xff\xd8\xff\xe0") == "jpg"
    assert image_extension(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert image_extension(b"GIF89a") == "gif"
    assert image_extension(b"hello") == "bin"
