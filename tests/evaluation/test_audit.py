"""Label audit on embeddings built as one tight cluster per class."""

import csv
import io

import numpy as np
import pytest

from keras_art.evaluation.audit import audit_csv, label_audit

NAMES = ["Baroque", "Cubism", "Impressionism", "Realism"]
PER_CLASS = 10
DIM = 8


def _clusters(seed=0):
    """Class c sits around axis c; returns embeddings, true classes, probs, files."""
    rng = np.random.default_rng(seed)
    true = np.repeat(np.arange(len(NAMES)), PER_CLASS)
    emb = np.eye(DIM)[true] * 3.0 + rng.normal(0.0, 0.15, size=(true.size, DIM))
    # The model predicts the true class confidently.
    probs = np.full((true.size, len(NAMES)), 0.05)
    probs[np.arange(true.size), true] = 0.85
    files = [f"img_{i:02d}.jpg" for i in range(true.size)]
    return emb, true, probs, files


def test_mislabelled_image_ranks_first_with_the_right_reasons():
    emb, true, probs, files = _clusters()
    labels = true.copy()
    wrong = 3  # a Baroque image labelled Impressionism
    labels[wrong] = 2
    rows = label_audit(emb, labels, probs, NAMES, files)
    top = rows[0]
    assert top["file"] == files[wrong]
    assert top["rank"] == 1
    assert (top["label"], top["predicted"], top["nearest_other"]) == (
        "Impressionism",
        "Baroque",
        "Baroque",
    )
    assert top["margin"] < 0 < top["other_sim"]
    assert top["margin"] == pytest.approx(top["own_sim"] - top["other_sim"])
    assert top["confidence"] == pytest.approx(0.85)
    assert top["reasons"].split("; ") == [
        "low_similarity",
        "small_margin",
        "prediction_disagrees",
    ]
    # Every other flagged image has a positive margin and no disagreement.
    for row in rows[1:]:
        assert row["margin"] > top["margin"]
        assert "prediction_disagrees" not in row["reasons"]


def test_rows_are_ranked_by_margin():
    emb, true, probs, files = _clusters()
    rows = label_audit(emb, true, probs, NAMES, files, margin_threshold=2.0)
    assert len(rows) == true.size  # every margin is below 2
    assert [r["rank"] for r in rows] == list(range(1, true.size + 1))
    margins = [r["margin"] for r in rows]
    assert margins == sorted(margins)


def test_each_reason_alone():
    emb, true, probs, files = _clusters()
    # An Impressionism image far along an axis no class uses: still nearest to its
    # own centroid by a wide margin, but the least similar of its class.
    outlier = 25
    emb[outlier] = 3.0 * np.eye(DIM)[2] + 2.5 * np.eye(DIM)[6]
    # A Realism image the model gets wrong, while its embedding is typical.
    disagree = 35
    probs[disagree] = [0.7, 0.1, 0.1, 0.1]
    rows = {r["file"]: r for r in label_audit(emb, true, probs, NAMES, files)}
    assert rows[files[outlier]]["reasons"] == "low_similarity"
    assert rows[files[outlier]]["margin"] > 0.5
    assert rows[files[disagree]]["reasons"] == "prediction_disagrees"
    assert rows[files[disagree]]["predicted"] == "Baroque"
    # No image is near another class: no small margins at the default threshold.
    assert not any("small_margin" in r["reasons"] for r in rows.values())


def test_low_similarity_uses_the_quantile_within_each_class():
    emb, true, probs, files = _clusters()
    rows = label_audit(emb, true, probs, NAMES, files, sim_quantile=0.05)
    low = [r for r in rows if "low_similarity" in r["reasons"]]
    # 5% of 10 images: the least similar image of each class, and only that one.
    assert sorted(r["label"] for r in low) == NAMES
    none = label_audit(emb, true, probs, NAMES, files, sim_quantile=0.0)
    assert none == []


def test_unlabelled_rows_are_neither_audited_nor_part_of_a_centroid():
    emb, true, probs, files = _clusters()
    labels = true.copy()
    labels[3] = 2
    base = label_audit(emb, labels, probs, NAMES, files)
    # Unlabelled images far from every cluster, which would drag centroids if used.
    extra = 5.0 * np.eye(DIM)[[7, 7, 6]]
    rows = label_audit(
        np.vstack([emb, extra]),
        np.concatenate([labels, [-1, -1, -1]]),
        np.vstack([probs, np.full((3, 4), 0.25)]),
        NAMES,
        [*files, "u1.jpg", "u2.jpg", "u3.jpg"],
    )
    assert rows == base


def test_class_absent_from_the_split_is_never_the_nearest_other():
    emb, true, probs, files = _clusters()
    keep = true != 3  # no Realism images
    rows = label_audit(emb[keep], true[keep], probs[keep], NAMES, files[:30])
    assert rows
    assert all(r["nearest_other"] != "Realism" for r in rows)


def test_single_class_split_has_no_margin():
    emb, true, probs, files = _clusters()
    rows = label_audit(emb[:10], true[:10], probs[:10], NAMES, files[:10])
    assert len(rows) == 1  # the least similar image
    assert rows[0]["nearest_other"] == ""
    assert rows[0]["other_sim"] is None and rows[0]["margin"] is None
    assert "margin" not in rows[0]["reasons"]


def test_audit_csv_has_one_row_per_flagged_image_in_rank_order():
    emb, true, probs, files = _clusters()
    labels = true.copy()
    labels[3] = 2
    rows = label_audit(emb, labels, probs, NAMES, files)
    table = list(csv.DictReader(io.StringIO(audit_csv(rows))))
    assert len(table) == len(rows)
    assert table[0]["file"] == files[3]
    assert table[0]["reasons"] == rows[0]["reasons"]
    assert [int(r["rank"]) for r in table] == list(range(1, len(rows) + 1))
    assert set(table[0]) >= {"own_sim", "nearest_other", "other_sim", "margin"}
    assert audit_csv([]).strip().split(",")[0] == "rank"


def test_bad_inputs_raise():
    emb, true, probs, files = _clusters()
    with pytest.raises(ValueError, match="No labelled rows"):
        label_audit(emb, np.full(true.size, -1), probs, NAMES, files)
    with pytest.raises(ValueError, match="files"):
        label_audit(emb, true, probs, NAMES, files[:-1])
    with pytest.raises(ValueError, match="len\\(class_names\\)"):
        label_audit(emb, true, probs, NAMES[:3], files)
