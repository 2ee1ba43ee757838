"""Best Artworks of All Time: both layouts, Dürer in every spelling."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from keras_art.config import DataConfig
from keras_art.data.sources import load_catalog
from keras_art.data.sources.best_artworks import artist_key, first_movement
from keras_art.errors import UserError
from tests.data.fixtures import BEST_ARTISTS, make_best_artworks


def _load(root):
    return load_catalog(DataConfig(format="best-artworks", path=str(root)))


def _check(cat):
    assert cat.class_names["artist"] == [a[0] for a in BEST_ARTISTS]
    counts = cat.counts("artist")
    assert list(counts) == [a[3] for a in BEST_ARTISTS]  # Dürer matched: 3 images
    assert cat.class_names["style"] == sorted(
        {first_movement(a[2]) for a in BEST_ARTISTS}
    )
    gauguin = cat.labels["artist"] == 2
    assert {cat.class_names["style"][s] for s in cat.labels["style"][gauguin]} == {
        "Symbolism"
    }


def test_images_layout_preferred(tmp_path):
    make_best_artworks(tmp_path)
    cat = _load(tmp_path)
    _check(cat)
    assert all("/images/images/" in f for f in cat.files)


def test_flat_resized_layout(tmp_path):
    make_best_artworks(tmp_path, images=False)
    cat = _load(tmp_path)
    _check(cat)
    assert all("/resized/resized/" in f for f in cat.files)


def test_flat_file_without_number_is_excluded(tmp_path):
    make_best_artworks(tmp_path, images=False)
    (tmp_path / "resized" / "resized" / "stray.jpg").write_bytes(b"x")
    cat = _load(tmp_path)
    assert [r for _, r in cat.excluded] == ["file name does not end in _<number>"]


def test_artist_key_folds_forms_accents_and_mojibake():
    nfc = unicodedata.normalize("NFC", "Albrecht_Dürer")
    nfd = unicodedata.normalize("NFD", "Albrecht_Dürer")
    cp437 = nfd.encode("utf-8").decode("cp437")  # how some unzip tools show it
    keys = {artist_key(x) for x in (nfc, nfd, cp437, "Albrecht Durer")}
    assert keys == {"albrecht_durer"}


def test_tiny_classes_kept(tmp_path):
    make_best_artworks(tmp_path)
    cat = _load(tmp_path)
    assert cat.counts("artist")[3] == 1  # Pollock


def test_missing_csv_is_a_user_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match="artists.csv"):
        _load(tmp_path)


def test_labels_are_aligned(tmp_path):
    make_best_artworks(tmp_path)
    cat = _load(tmp_path)
    for f, a in zip(cat.files, cat.labels["artist"], strict=True):
        folder = unicodedata.normalize("NFC", f.split("/")[-2])
        assert artist_key(folder) == artist_key(cat.class_names["artist"][a])
    assert np.all(cat.labels["style"] >= 0)
