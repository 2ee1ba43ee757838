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


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _between(a, b, degrees):
    """The unit vector ``degrees`` away from axis ``a`` towards axis ``b``."""
    t = np.radians(degrees)
    return np.cos(t) * np.eye(DIM)[a] + np.sin(t) * np.eye(DIM)[b]


def test_leave_one_out_exposes_a_mislabel_in_a_three_image_class():
    emb, true, probs, files = _clusters()
    # Cubism keeps 3 images: two of its own and (row 12) a Baroque image leaning
    # towards Cubism, labelled Cubism; the model learnt the wrong label, so only
    # the embeddings can tell. In Cubism's full centroid the image pulls the
    # centroid towards itself and looks Cubist enough.
    keep = np.r_[0:13, 20:40]
    emb, labels, probs = emb[keep], true[keep], probs[keep]
    files = [files[i] for i in keep]
    wrong, decoy = 12, 13
    emb[wrong] = 3.0 * _between(0, 1, degrees=42)
    # An Impressionism image nearly as close to Realism: a small positive margin,
    # the most suspicious image of the split if the mislabel stays hidden.
    emb[decoy] = 3.0 * _between(2, 3, degrees=46)

    u = _unit(emb)
    baroque = u[wrong] @ _unit(u[labels == 0].sum(axis=0))
    with_itself = u[wrong] @ _unit(u[labels == 1].sum(axis=0))
    without_itself = u[wrong] @ _unit(u[[10, 11]].sum(axis=0))
    realism = u[decoy] @ _unit(u[labels == 3].sum(axis=0))
    impressionism = u[decoy] @ _unit(u[labels == 2].sum(axis=0) - u[decoy])
    decoy_margin = impressionism - realism
    # The premise: without leave-one-out the mislabelled image's margin would be
    # above the small_margin threshold (0.05) and the decoy's (also measured with
    # the decoy in its own centroid), so it would be neither flagged for its margin
    # nor ranked first; with it, its margin is negative.
    decoy_with_itself = u[decoy] @ _unit(u[labels == 2].sum(axis=0)) - realism
    assert with_itself - baroque > max(0.05, decoy_with_itself)
    assert without_itself - baroque < 0 < decoy_margin < 0.05

    rows = label_audit(emb, labels, probs, NAMES, files)
    top = rows[0]
    assert (top["file"], top["label"], top["nearest_other"]) == (
        files[wrong],
        "Cubism",
        "Baroque",
    )
    assert top["own_sim"] == pytest.approx(without_itself, abs=1e-9)
    assert top["other_sim"] == pytest.approx(baroque, abs=1e-9)
    assert top["margin"] == pytest.approx(without_itself - baroque, abs=1e-9)
    assert "small_margin" in top["reasons"]
    assert "prediction_disagrees" not in top["reasons"]
    assert rows[1]["file"] == files[decoy]
    assert rows[1]["margin"] == pytest.approx(decoy_margin, abs=1e-9)
    assert "small_margin" in rows[1]["reasons"]


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


def test_two_image_classes_by_hand_with_a_class_absent_from_the_split():
    """Worked by hand on unit vectors: a two-image class still measures each image
    against the other one alone (leave-one-out), and a class with no image in the
    split (C) is never the nearest other."""
    emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.5, np.sqrt(0.75)]])
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(3)[labels]  # predictions agree: only the geometry flags
    rows = label_audit(emb, labels, probs, ["A", "B", "C"], ["a1", "a2", "b1", "b2"])
    b_centroid = np.array([0.5, 1 + np.sqrt(0.75)])
    b_centroid /= np.linalg.norm(b_centroid)
    other = float(emb[1] @ b_centroid)  # a2 against B's centroid: 0.787
    assert [r["file"] for r in rows] == ["a2"]
    (a2,) = rows
    assert a2["own_sim"] == pytest.approx(0.8)  # a1 . a2, not a2 . centroid(A)
    assert (a2["nearest_other"], a2["other_sim"]) == ("B", pytest.approx(other))
    assert a2["margin"] == pytest.approx(0.8 - other)
    assert a2["reasons"] == "small_margin"


def test_a_label_past_the_last_class_is_refused():
    emb, true, probs, files = _clusters()
    labels = true.copy()
    labels[0] = len(NAMES)
    with pytest.raises(ValueError):
        label_audit(emb, labels, probs, NAMES, files)
