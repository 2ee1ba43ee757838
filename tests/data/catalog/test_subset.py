"""Class subsets: top-N, named classes, per-class bounds, re-indexed labels."""

from __future__ import annotations

import numpy as np
import pytest

from keras_art.data.catalog.subset import select_subset
from keras_art.data.catalog_type import Catalog
from keras_art.errors import UserError

NAMES = ["Baroque", "Cubism", "Impressionism", "Pop_Art", "Rococo"]
SIZES = [5, 20, 40, 2, 10]


def _catalog():
    style = np.concatenate([[c] * n for c, n in enumerate(SIZES)] + [[-1, -1]])
    files = [f"/img/{i}.jpg" for i in range(len(style))]
    genre = np.arange(len(files)) % 2
    return Catalog(
        files=files,
        labels={"style": style, "genre": genre},
        class_names={"style": NAMES, "genre": ["a", "b"]},
        source="test",
    )


def test_top_n_by_count_reindexed():
    out, report = select_subset(_catalog(), "style", top_n=2)
    assert out.class_names["style"] == ["Cubism", "Impressionism"]  # original order
    assert list(out.counts("style")) == [20, 40]
    assert out.labels["style"].min() == 0 and out.labels["style"].max() == 1
    assert out.class_names["genre"] == ["a", "b"]  # other tasks untouched
    assert report["dropped_classes"]["Rococo"] == "not in the top 2 by count"


def test_named_classes_with_loose_matching():
    out, _ = select_subset(_catalog(), "style", classes=["pop art", "rococo"])
    assert out.class_names["style"] == ["Pop_Art", "Rococo"]
    assert len(out) == 12


def test_unknown_class_suggests_nearest():
    with pytest.raises(UserError, match="Did you mean: Impressionism"):
        select_subset(_catalog(), "style", classes=["Impresionism"])


def test_min_and_max_per_class_seeded():
    out, report = select_subset(
        _catalog(), "style", min_per_class=5, max_per_class=8, seed=3
    )
    assert out.class_names["style"] == ["Baroque", "Cubism", "Impressionism", "Rococo"]
    assert list(out.counts("style")) == [5, 8, 8, 8]
    again, _ = select_subset(
        _catalog(), "style", min_per_class=5, max_per_class=8, seed=3
    )
    other, _ = select_subset(
        _catalog(), "style", min_per_class=5, max_per_class=8, seed=4
    )
    assert again.files == out.files and other.files != out.files
    assert "min_per_class" in report["dropped_classes"]["Pop_Art"]


def test_empty_subset_and_bad_values_are_user_errors():
    with pytest.raises(UserError, match="empty"):
        select_subset(_catalog(), "style", min_per_class=100)
    with pytest.raises(UserError, match="top_n"):
        select_subset(_catalog(), "style", top_n=0)
    with pytest.raises(UserError, match="no 'artist' labels"):
        select_subset(_catalog(), "artist", top_n=1)
