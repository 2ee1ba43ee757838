"""Stable, stratified, seeded splits; duplicates together; official splits kept."""

from __future__ import annotations

import numpy as np
import pytest

from keras_art.data.catalog.splits import assign_splits, content_hash, hash_unit
from keras_art.errors import UserError


def _data(per_class=(120, 80, 40), prefix="k"):
    keys, labels = [], []
    for cls, n in enumerate(per_class):
        keys += [f"{prefix}{cls}-{i}" for i in range(n)]
        labels += [cls] * n
    return keys, np.array(labels)


def test_deterministic_and_seeded():
    keys, labels = _data()
    a, _ = assign_splits(keys, labels, [0.8, 0.1, 0.1], seed=1)
    b, _ = assign_splits(keys, labels, [0.8, 0.1, 0.1], seed=1)
    c, _ = assign_splits(keys, labels, [0.8, 0.1, 0.1], seed=2)
    assert list(a) == list(b)
    assert list(a) != list(c)


def test_stratified_per_class():
    keys, labels = _data((600, 300, 150))
    split, report = assign_splits(keys, labels, [0.6, 0.2, 0.2], seed=0)
    for cls in range(3):
        rows = split[labels == cls]
        for name, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
            assert abs(np.mean(rows == name) - frac) < 0.08, (cls, name)
    assert report["counts"]["train"] + report["counts"]["val"] + report["counts"][
        "test"
    ] == len(keys)


def test_adding_files_never_moves_existing_files():
    keys, labels = _data()
    before, _ = assign_splits(keys, labels, [0.8, 0.1, 0.1], seed=3)
    more_keys, more_labels = _data((30, 50, 10), prefix="new")
    after, _ = assign_splits(
        keys + more_keys, np.concatenate([labels, more_labels]), [0.8, 0.1, 0.1], 3
    )
    assert list(after[: len(keys)]) == list(before)


def test_row_order_does_not_matter():
    keys, labels = _data()
    order = np.random.default_rng(0).permutation(len(keys))
    a, _ = assign_splits(keys, labels, [0.8, 0.2], seed=0)
    b, _ = assign_splits([keys[i] for i in order], labels[order], [0.8, 0.2], seed=0)
    assert list(a[order]) == list(b)


def test_small_classes_get_a_val_image():
    keys, labels = _data((100, 3, 2))
    split, report = assign_splits(keys, labels, [0.8, 0.2], seed=0)
    for cls in (1, 2):
        assert set(split[labels == cls]) == {"train", "val"}


def test_too_small_classes_drop_or_error():
    keys, labels = _data((100, 2, 1))
    split, report = assign_splits(keys, labels, [0.8, 0.1, 0.1], seed=0)
    assert set(split[labels == 1]) == {""} and set(split[labels == 2]) == {""}
    assert report["dropped_classes"] == [1, 2]
    assert report["dropped_rows"] == 3
    with pytest.raises(UserError, match="class index 1 has 2 image"):
        assign_splits(keys, labels, [0.8, 0.1, 0.1], seed=0, small_classes="error")


def test_identical_content_never_straddles_splits():
    keys, labels = _data()
    # 40 rows share 10 contents (e.g. the same painting under two paths)
    keys = keys[:200] + [f"dup{i % 10}" for i in range(40)]
    split, report = assign_splits(keys, labels, [0.5, 0.25, 0.25], seed=0)
    for i in range(10):
        assert len(set(split[200 + i :: 10])) == 1
    assert report["duplicate_rows"] == 30


def test_official_split_kept_and_test_carved_from_train():
    keys, labels = _data((200, 100, 50))
    rng = np.random.default_rng(0)
    official = np.where(rng.random(len(keys)) < 0.3, "val", "train").astype(object)
    split, report = assign_splits(keys, labels, [0.8, 0.1, 0.1], 0, official=official)
    assert np.all(split[official == "val"] == "val")
    assert set(split[official == "train"]) == {"train", "test"}
    # test is ~10% of ALL rows, carved out of train, every class represented
    assert abs(np.mean(split == "test") - 0.1) < 0.04
    for cls in range(3):
        assert np.any(split[labels == cls] == "test")
    assert report["mode"] == "official"
    assert "carved out of the official train" in report["split_meaning"]["test"]
    assert "official val" in report["split_meaning"]["val"]


def test_official_two_fractions_keeps_the_release_split():
    keys, labels = _data()
    official = np.array(["train", "val"] * (len(keys) // 2), dtype=object)
    split, report = assign_splits(keys, labels, [0.8, 0.2], 0, official=official)
    assert list(split) == list(official)
    assert report["carved_test_from_train"] == 0


def test_duplicate_across_official_train_and_val_goes_to_val():
    keys = ["a", "b", "a", "c"]
    official = np.array(["train", "train", "val", "val"], dtype=object)
    split, report = assign_splits(
        keys, np.array([0, 0, 0, 0]), [0.8, 0.2], 0, official=official
    )
    assert list(split) == ["val", "train", "val", "val"]
    assert report["duplicates_moved_to_eval"] == 1


def test_content_hash(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"same")
    (tmp_path / "b.jpg").write_bytes(b"same")
    (tmp_path / "c.jpg").write_bytes(b"other")
    a, b, c = (content_hash(tmp_path / n) for n in ("a.jpg", "b.jpg", "c.jpg"))
    assert a == b != c and len(a) == 40


def test_official_test_split_is_not_carved_again():
    keys, labels = _data((40, 40))
    official = np.array(["train", "val", "test", "train"] * 20, dtype=object)
    split, report = assign_splits(keys, labels, [0.8, 0.1, 0.1], 0, official=official)
    assert list(split) == list(official)
    assert report["carved_test_from_train"] == 0
    assert report["split_meaning"]["test"] == "the source's official test list"


def _keys_at(seed, *targets, tol=0.005):
    """Distinct keys whose hash draw ``u`` is within ``tol`` of each target."""
    keys, i = [], 0
    for t in targets:
        while not abs(hash_unit(seed, f"u{i}") - t) < tol:
            i += 1
        keys.append(f"u{i}")
        i += 1
    return keys


def test_fractions_a_little_under_one_never_fill_an_unrequested_split():
    # 0.5 + 0.4995 is accepted (within 1e-3); a draw above 0.9995 goes to val.
    keys = _keys_at(0, 0.1, 0.3, 0.6) + _keys_at(0, 0.9997, tol=0.0002)
    labels = np.zeros(4, dtype=int)
    split, report = assign_splits(keys, labels, [0.5, 0.4995], seed=0)
    assert list(split) == ["train", "train", "val", "val"]
    assert report["counts"] == {"train": 2, "val": 2, "test": 0}
    assert report["fractions"] == {"train": 0.5, "val": 0.4995, "test": 0.0}
