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


def _rows(seed, classes):
    """``classes``: (label, [u, ...]) pairs -> keys, labels (rows in that order)."""
    labels = [label for label, us in classes for _ in us]
    return _keys_at(seed, *(u for _, us in classes for u in us)), np.array(labels)


def test_hash_unit_is_pinned():
    # The first 8 bytes of SHA-1("<seed>\0<key>") read big-endian, over 2**64:
    # changing it would move every image to another split.
    assert hash_unit(0, "abc") == 0.20704961086122478
    assert hash_unit(7, "abc") == 0.8302160153105788
    # Undecodable file names (surrogate escapes) hash as their raw bytes.
    assert hash_unit(0, "caf\udce9") == 0.11739636874178559


def test_hashed_thresholds_fill_and_report():
    # fractions 0.5/0.3/0.2: train = [0, .5), val = [.5, .8), test = [.8, 1)
    classes = [
        # val empty: the row nearest val's centre (.65) moves there (.85, not .40)
        (0, [0.10, 0.30, 0.40, 0.85, 0.97]),
        (1, [0.10, 0.30, 0.60, 0.90]),  # nothing to fix
        # val empty, .49 is nearer but the only train row: a test row moves
        (2, [0.49, 0.85, 0.97]),
        # val and test empty: val first (takes .45), then test (takes .20)
        (3, [0.10, 0.20, 0.45]),
        (4, [0.10, 0.60, 0.70]),  # test empty: the val row nearest .9 moves
        (5, [0.10, 0.60]),  # fewer images than splits: dropped
        (6, [0.60, 0.70, 0.85, 0.95]),  # train empty: the row nearest .25 moves
        (-1, [0.30, 0.90]),  # unlabelled: split, never dropped or moved
    ]
    keys, labels = _rows(7, classes)
    split, report = assign_splits(keys, labels, [0.5, 0.3, 0.2], seed=7)
    expected = (
        ["train", "train", "train", "val", "test"]
        + ["train", "train", "val", "test"]
        + ["train", "val", "test"]
        + ["train", "test", "val"]
        + ["train", "val", "test"]
        + ["", ""]
        + ["train", "val", "test", "test"]
        + ["train", "test"]
    )
    assert list(split) == expected
    assert split.dtype == object
    assert report == {
        "seed": 7,
        "fractions": {"train": 0.5, "val": 0.3, "test": 0.2},
        "rows": 26,
        "unique_contents": 26,
        "duplicate_rows": 0,
        "dropped_classes": [5],
        "filled_empty_splits": 6,
        "mode": "hashed",
        "split_meaning": {
            "train": "50% of the images (stratified, seeded)",
            "val": "30% of the images (stratified, seeded)",
            "test": "20% of the images (stratified, seeded)",
        },
        "counts": {"train": 10, "val": 6, "test": 8},
        "dropped_rows": 2,
    }


def test_class_zero_is_a_class_too():
    keys, labels = _rows(0, [(0, [0.1]), (1, [0.1, 0.2, 0.3]), (2, [0.1, 0.9])])
    split, report = assign_splits(keys, labels, [0.5, 0.5], seed=0)
    assert list(split) == ["", "train", "train", "val", "train", "val"]
    assert report["dropped_classes"] == [0]
    assert report["filled_empty_splits"] == 1


def test_fractions_a_little_under_one_never_fill_an_unrequested_split():
    # 0.5 + 0.4995 is accepted (within 1e-3); a draw above 0.9995 goes to val.
    keys = _keys_at(0, 0.1, 0.3, 0.6) + _keys_at(0, 0.9997, tol=0.0002)
    labels = np.zeros(4, dtype=int)
    split, report = assign_splits(keys, labels, [0.5, 0.4995], seed=0)
    assert list(split) == ["train", "train", "val", "val"]
    assert report["counts"] == {"train": 2, "val": 2, "test": 0}
    assert report["fractions"] == {"train": 0.5, "val": 0.4995, "test": 0.0}


def test_a_zero_val_fraction_splits_train_and_test_only():
    keys, labels = _rows(0, [(0, [0.1, 0.5, 0.95]), (1, [0.2, 0.3])])
    split, report = assign_splits(keys, labels, [0.9, 0.0, 0.1], seed=0)
    # class 1 has 2 images for 2 requested splits: its test row is filled
    assert list(split) == ["train", "train", "test", "train", "test"]
    assert report["filled_empty_splits"] == 1
    assert report["split_meaning"]["val"] == "0% of the images (stratified, seeded)"


@pytest.mark.parametrize(
    "fractions",
    [[1.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.4], [0.6, 0.3, 0.3]],
)
def test_bad_fractions_are_a_user_error(fractions):
    keys, labels = _data()
    received = (
        str([float(f) for f in fractions]).replace("[", r"\[").replace("]", r"\]")
    )
    with pytest.raises(
        UserError,
        match=r"^data\.split must be 2 or 3 fractions summing to 1\. Received: "
        + received,
    ):
        assign_splits(keys, labels, fractions, seed=0)


def test_bad_small_classes_and_label_shape():
    keys, labels = _data()
    with pytest.raises(
        UserError,
        match=r"^data\.small_classes must be 'drop' or 'error'\. Received: 'keep'$",
    ):
        assign_splits(keys, labels, [0.8, 0.2], 0, small_classes="keep")
    with pytest.raises(ValueError, match=r"labels has shape \(3,\), expected \(4,\)"):
        assign_splits(["a", "b", "c", "d"], [0, 0, 0], [0.8, 0.2], 0)


def test_empty_input():
    for official in (None, []):
        split, report = assign_splits([], [], [0.8, 0.2], 0, official=official)
        assert len(split) == 0
        assert report["counts"] == {"train": 0, "val": 0, "test": 0}
        assert report["rows"] == 0 and report["dropped_rows"] == 0


def test_official_unassigned_rows_are_hashed_and_fixed():
    # Rows with "" (or None) in the official split are split by the fractions,
    # with the same tiny-class rules as the hashed mode.
    classes = [
        (0, [0.1, 0.2, 0.7]),  # unassigned -> train, train, val
        (1, [0.6]),  # unassigned, one image: dropped
        (2, [0.1, 0.3]),  # unassigned, val empty: the row nearest .75 moves
        (-1, [0.9]),  # unassigned, unlabelled -> val
        (0, [0.8, 0.1]),  # official train, official val
    ]
    keys, labels = _rows(0, classes)
    official = np.array(["", None, "", "", "", "", "", "train", "val"], dtype=object)
    split, report = assign_splits(keys, labels, [0.5, 0.5], 0, official=official)
    assert list(split) == [
        "train", "train", "val", "", "train", "val", "val", "train", "val"
    ]  # fmt: skip
    assert split.dtype == object
    assert report == {
        "seed": 0,
        "fractions": {"train": 0.5, "val": 0.5, "test": 0.0},
        "rows": 9,
        "unique_contents": 9,
        "duplicate_rows": 0,
        "duplicates_moved_to_eval": 0,
        "mode": "official",
        "dropped_classes": [1],
        "filled_empty_splits": 1,
        "carved_test_from_train": 0,
        "split_meaning": {
            "train": "the source's official train list",
            "val": "the source's official val list (used for model selection, so "
            "val numbers are optimistic)",
            "test": "none (the source has no test split; pass 3 fractions to carve "
            "one)",
        },
        "counts": {"train": 4, "val": 4, "test": 0},
        "dropped_rows": 1,
    }
    with pytest.raises(UserError, match="class index 1 has 1 image"):
        assign_splits(
            keys, labels, [0.5, 0.5], 0, official=official, small_classes="error"
        )


def test_official_bad_value():
    with pytest.raises(
        ValueError, match=r"official split values must be train/val/test/''; 'dev'"
    ):
        assign_splits(["a", "b"], [0, 0], [0.8, 0.2], 0, official=["train", "dev"])


def test_duplicates_with_official_test_or_val_are_evaluated():
    keys = ["a", "a", "b", "c", "d", "d"]
    official = ["train", "test", "train", "val", "", "val"]
    split, report = assign_splits(keys, [0] * 6, [0.8, 0.2], 0, official=official)
    assert list(split) == ["test", "test", "train", "val", "val", "val"]
    # only the "a" pair had a train row pulled into evaluation
    assert report["duplicates_moved_to_eval"] == 1
    assert report["split_meaning"]["test"] == "the source's official test list"


def test_carving_test_from_official_train_per_class():
    # 9 official train rows + 2 val rows; test = 20% of all 11 rows, i.e. 24.44% of
    # train: train rows drawn at u >= 1 - 0.2444 are carved, then per class:
    classes = [
        (0, [0.10, 0.20, 0.30]),  # nothing drawn: the highest draw is carved
        (1, [0.90, 0.80]),  # all drawn: the lowest draw stays train
        (2, [0.95]),  # one train row: never carved
        (3, [0.10]),  # one train row: never carved
        (-1, [0.50, 0.85]),  # unlabelled: by the draw alone
        (2, [0.97, 0.05]),  # official val rows: never carved
    ]
    keys, labels = _rows(0, classes)
    official = ["train"] * 9 + ["val"] * 2
    split, report = assign_splits(keys, labels, [0.6, 0.2, 0.2], 0, official=official)
    assert list(split) == [
        "train", "train", "test", "test", "train", "train", "train", "train", "test",
        "val", "val",
    ]  # fmt: skip
    assert report == {
        "seed": 0,
        "fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
        "rows": 11,
        "unique_contents": 11,
        "duplicate_rows": 0,
        "duplicates_moved_to_eval": 0,
        "mode": "official",
        "test_fraction_of_official_train": 0.2444,
        "carved_test_from_train": 3,
        "split_meaning": {
            "train": "the source's official train list minus the carved test part",
            "val": "the source's official val list (used for model selection, so "
            "val numbers are optimistic)",
            "test": "carved out of the official train list (20% of all images, "
            "stratified, seeded); never seen in training or selection",
        },
        "counts": {"train": 6, "val": 2, "test": 3},
        "dropped_rows": 0,
    }


def test_carving_more_than_all_of_train_is_capped():
    # test 40% of 10 rows from 2 train rows: everything is drawn, one stays train
    keys, labels = _rows(0, [(0, [0.1, 0.2]), (0, [0.5] * 8)])
    official = ["train"] * 2 + ["val"] * 8
    split, report = assign_splits(keys, labels, [0.4, 0.2, 0.4], 0, official=official)
    assert list(split[:2]) == ["train", "test"]
    assert report["test_fraction_of_official_train"] == 1.0
    assert report["carved_test_from_train"] == 1


# --- data.split_sizes: a seeded random sample of so many images per split ---------
def _catalog_of(n=50_000, classes=129):
    """A paths-only catalog the size of a real release: keys and labels."""
    keys = [f"/data/{i // 500:03d}/painting-{i}.jpg" for i in range(n)]
    labels = np.random.default_rng(0).integers(0, classes, size=n)
    return keys, labels


def test_split_sizes_draw_exactly_that_many_seeded():
    keys, labels = _catalog_of()
    sizes = [5000, 1667, 1667]
    split, report = assign_splits(keys, labels, [0.6, 0.2, 0.2], 42, sizes=sizes)
    assert report["counts"] == {"train": 5000, "val": 1667, "test": 1667}
    assert report["dropped_rows"] == report["left_out_rows"] == 50_000 - 8334
    assert report["mode"] == "sized" and report["available_rows"] == 50_000
    assert report["split_meaning"]["val"] == (
        "1667 of the 50000 images, drawn at random (seeded)"
    )
    again, _ = assign_splits(keys, labels, [0.6, 0.2, 0.2], 42, sizes=sizes)
    other, _ = assign_splits(keys, labels, [0.6, 0.2, 0.2], 7, sizes=sizes)
    assert list(again) == list(split)
    assert np.mean(other[split == "train"] == "train") < 0.2  # another sample
    # Random rows, not the first ones: every class is drawn, in proportion.
    assert report["classes"] == {"train": 129, "val": 129, "test": 129}
    drawn = np.bincount(labels[split == "train"], minlength=129)
    assert drawn.min() > 10 and drawn.max() < 80
    # The sample does not depend on row order.
    order = np.random.default_rng(1).permutation(len(keys))
    shuffled, _ = assign_splits(
        [keys[i] for i in order], labels[order], [0.8, 0.2], 42, sizes=sizes
    )
    assert list(shuffled) == list(split[order])


def test_split_sizes_keep_duplicates_together_and_two_sizes_mean_no_test():
    keys, labels = _catalog_of(20_000, classes=10)
    keys = [f"dup{i % 3000}" if i % 4 == 0 else k for i, k in enumerate(keys)]
    split, report = assign_splits(keys, labels, [0.8, 0.2], 0, sizes=[3000, 1000])
    assert report["counts"] == {"train": 3000, "val": 1000, "test": 0}
    groups: dict[str, set] = {}
    for key, s in zip(keys, split, strict=True):
        groups.setdefault(key, set()).add(s)
    assert all(len(s) == 1 for s in groups.values())
    assert any(len(s) == 1 and "train" in s for k, s in groups.items() if "dup" in k)


def test_split_sizes_beyond_the_rows_name_the_key_and_the_count():
    keys, labels = _catalog_of(6442, classes=4)
    with pytest.raises(
        UserError,
        match=r"^data\.split_sizes asks for 8334 images \(\[5000, 1667, 1667\]\), but "
        r"6442 are left after the subset\. Ask for at most 6442 ",
    ):
        assign_splits(keys, labels, [0.6, 0.2, 0.2], 0, sizes=[5000, 1667, 1667])
    split, report = assign_splits(keys, labels, [0.6, 0.2, 0.2], 0, sizes=[6000, 442])
    assert report["counts"]["train"] == 6000 and report["left_out_rows"] == 0


def test_split_sizes_refuse_an_official_split():
    keys, labels = _data()
    official = np.array(["train", "val"] * (len(keys) // 2), dtype=object)
    with pytest.raises(UserError, match="data.use_official_split=false"):
        assign_splits(keys, labels, [0.8, 0.2], 0, official=official, sizes=[50, 10])
