"""Class folders, with and without split folders."""

from __future__ import annotations

import pytest

from keras_art.config import DataConfig
from keras_art.data.sources import load_catalog
from keras_art.errors import UserError
from tests.data.fixtures import make_folder


def _load(root, task="style"):
    return load_catalog(DataConfig(format="folder", path=str(root)), task=task)


def test_class_folders_label_the_run_task(tmp_path):
    fx = make_folder(tmp_path)
    cat = _load(tmp_path, task="genre")
    assert cat.tasks == ("genre",)
    assert cat.class_names["genre"] == fx["classes"]
    assert len(cat) == fx["total"]  # upper-case .JPG and .jpeg included
    assert cat.official_split is None
    for f, lab in zip(cat.files, cat.labels["genre"], strict=True):
        assert f"/{fx['classes'][lab]}/" in f


def test_split_folders_become_official_split(tmp_path):
    make_folder(tmp_path, splits=True)
    cat = _load(tmp_path)
    assert sorted(set(cat.official_split)) == ["train", "val"]  # valid -> val
    assert (cat.official_split == "val").sum() == 6


def test_multi_is_a_user_error(tmp_path):
    make_folder(tmp_path)
    with pytest.raises(UserError, match="labels one task"):
        _load(tmp_path, task="multi")


def test_no_images_is_a_user_error(tmp_path):
    (tmp_path / "Baroque").mkdir()
    with pytest.raises(UserError, match="no images"):
        _load(tmp_path)
