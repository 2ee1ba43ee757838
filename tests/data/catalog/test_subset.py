"""Class subsets: top-N, named classes, per-class bounds, re-indexed labels."""

from __future__ import annotations

import numpy as np
import pytest

from keras_art.data.catalog.splits import hash_unit
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


def _styles(names, sizes, unlabelled=0):
    style = np.concatenate(
        [np.full(n, c, dtype=np.int64) for c, n in enumerate(sizes)]
        + [np.full(unlabelled, -1, dtype=np.int64)]
    )
    return Catalog(
        files=[f"/s/{i}.jpg" for i in range(len(style))],
        labels={"style": style},
        class_names={"style": list(names)},
        source="test",
    )


def test_report_lists_the_request_and_the_counts():
    out, report = select_subset(_catalog(), "style", top_n=3, max_per_class=15, seed=7)
    assert report == {
        "task": "style",
        "top_n": 3,
        "classes": [],
        "min_per_class": 0,
        "max_per_class": 15,
        "seed": 7,
        "rows_before": 77,  # the two unlabelled rows are not counted
        "rows_after": 40,
        "kept_classes": {
            "Cubism": {"before": 20, "after": 15},
            "Impressionism": {"before": 40, "after": 15},
            "Rococo": {"before": 10, "after": 10},
        },
        "dropped_classes": {
            "Baroque": "not in the top 3 by count",
            "Pop_Art": "not in the top 3 by count",
        },
    }
    assert list(out.labels["style"]) == [0] * 15 + [1] * 15 + [2] * 10
    assert len(out) == 40


def test_no_filter_keeps_every_class_even_an_empty_last_one():
    # min_per_class defaults to 0: a class without images is kept (and reported),
    # so the label space is unchanged; the last class is the empty one.
    cat = _styles(["A", "B", "C"], [3, 2, 0], unlabelled=1)
    out, report = select_subset(cat, "style")
    assert out.class_names["style"] == ["A", "B", "C"]
    assert list(out.labels["style"]) == [0, 0, 0, 1, 1]
    assert report["kept_classes"] == {
        "A": {"before": 3, "after": 3},
        "B": {"before": 2, "after": 2},
        "C": {"before": 0, "after": 0},
    }
    assert report["dropped_classes"] == {}
    assert report["min_per_class"] == 0 and report["seed"] == 0


def test_min_per_class_one_drops_only_empty_classes():
    cat = _styles(["A", "B", "C"], [3, 1, 0])
    out, report = select_subset(cat, "style", min_per_class=1)
    assert out.class_names["style"] == ["A", "B"]
    assert report["dropped_classes"] == {"C": "0 image(s) < min_per_class 1"}
    out, report = select_subset(cat, "style", min_per_class=2)
    assert out.class_names["style"] == ["A"]
    assert report["dropped_classes"] == {
        "B": "1 image(s) < min_per_class 2",
        "C": "0 image(s) < min_per_class 2",
    }


def test_top_n_ties_keep_the_lower_index():
    cat = _styles(["A", "B", "C", "D"], [2, 5, 5, 1])
    out, report = select_subset(cat, "style", top_n=1)
    assert out.class_names["style"] == ["B"]
    assert list(out.labels["style"]) == [0] * 5
    assert set(report["dropped_classes"]) == {"A", "C", "D"}


def test_a_subset_with_one_image_is_allowed_but_an_imageless_one_is_not():
    cat = _styles(["A", "B", "C"], [3, 1, 0])
    out, report = select_subset(cat, "style", classes=["B"])
    assert out.class_names["style"] == ["B"] and list(out.labels["style"]) == [0]
    assert report["rows_after"] == 1
    with pytest.raises(UserError, match=r"The subset of style classes is empty"):
        select_subset(cat, "style", classes=["C"])
    with pytest.raises(UserError, match=r"top_n=None, classes=\['C'\], min_per"):
        select_subset(cat, "style", classes=["C"])


def test_max_per_class_keeps_the_smallest_hashes_of_the_paths():
    cat = _styles(["A", "B"], [6, 2])
    out, report = select_subset(cat, "style", max_per_class=2, seed=5)
    a_files = cat.files[:6]
    by_hash = sorted(a_files, key=lambda f: hash_unit(5, f))
    assert out.files == sorted(by_hash[:2]) + cat.files[6:]  # original order kept
    assert report["kept_classes"]["A"] == {"before": 6, "after": 2}
    assert report["kept_classes"]["B"] == {"before": 2, "after": 2}
    # the default seed is 0
    default, _ = select_subset(cat, "style", max_per_class=2)
    seed0, _ = select_subset(cat, "style", max_per_class=2, seed=0)
    assert default.files == seed0.files


def test_bounds_of_one_are_valid_and_zero_is_a_clear_error():
    out, _ = select_subset(_catalog(), "style", top_n=1, max_per_class=1)
    assert out.class_names["style"] == ["Impressionism"] and len(out) == 1
    with pytest.raises(
        UserError, match=r"data\.top_n must be at least 1\. Received: 0"
    ):
        select_subset(_catalog(), "style", top_n=0)
    with pytest.raises(
        UserError, match=r"data\.max_per_class must be at least 1\. Received: 0"
    ):
        select_subset(_catalog(), "style", max_per_class=0)


def test_unknown_task_lists_the_available_tasks():
    with pytest.raises(
        UserError,
        match=r"The test data has no 'artist' labels; it "
        r"has: genre, style\.$",
    ):
        select_subset(_catalog(), "artist")


def test_exact_names_select_without_folding():
    out, _ = select_subset(_catalog(), "style", classes=["Rococo", "Pop_Art"])
    assert out.class_names["style"] == ["Pop_Art", "Rococo"]  # original order
    assert list(out.counts("style")) == [2, 10]


def test_unknown_class_message():
    with pytest.raises(
        UserError,
        match=r"^data\.classes: unknown style class 'Zzzz'\. Valid names: Baroque, "
        r"Cubism, Impressionism, Pop_Art, Rococo$",
    ):
        select_subset(_catalog(), "style", classes=["Zzzz"])


def test_unknown_class_hints_a_loose_raw_match():
    # "Rocks" is only a 0.55 match for "Rococo": still suggested.
    with pytest.raises(UserError, match=r"'Rocks'\. Did you mean: Rococo\? Valid"):
        select_subset(_catalog(), "style", classes=["Rocks"])


def test_unknown_class_hints_through_case_folding():
    # No raw name is close to the upper-case typo; the folded names are.
    with pytest.raises(UserError, match=r"Did you mean: Impressionism\? Valid"):
        select_subset(_catalog(), "style", classes=["IMPRESIONISM"])


def _hint(excinfo):
    msg = str(excinfo.value)
    return msg.split("Did you mean: ")[1].split("?")[0].split(", ")


@pytest.mark.parametrize("query", ["Art", "ART"])  # raw match, folded match
def test_at_most_three_suggestions(query):
    names = ["Art 1", "Art 2", "Art 3", "Art 4"]
    with pytest.raises(UserError) as excinfo:
        select_subset(_styles(names, [1, 1, 1, 1]), "style", classes=[query])
    hint = _hint(excinfo)
    assert len(hint) == 3 and set(hint) <= set(names)


def test_valid_names_are_cut_after_thirty():
    names = [f"class{i:02d}" for i in range(31)]
    with pytest.raises(UserError) as excinfo:
        select_subset(_styles(names, [1] * 31), "style", classes=["@"])
    msg = str(excinfo.value)
    assert msg.endswith("Valid names: " + ", ".join(names[:30]) + " ...")
    with pytest.raises(UserError) as excinfo:
        select_subset(_styles(names[:30], [1] * 30), "style", classes=["@"])
    assert str(excinfo.value).endswith("Valid names: " + ", ".join(names[:30]))


def test_every_unknown_class_is_named_in_one_error():
    with pytest.raises(
        UserError,
        match=r"^data\.classes: 2 of the 3 style classes are unknown: 'Rocks' \(Did "
        r"you mean: Rococo\?\), 'Zzzz'\. Valid names: Baroque, ",
    ):
        select_subset(_catalog(), "style", classes=["Rocks", "cubism", "Zzzz"])
