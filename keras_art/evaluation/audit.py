"""Label audit: images whose embedding or prediction disagrees with their label.

From the pre-classifier embeddings of one split: L2-normalise, build one centroid per
class (mean of the normalised vectors, re-normalised), and score each labelled image
by its cosine similarity to its own class centroid and to the nearest other one.
Unlabelled rows (label -1) are not audited and do not shape any centroid.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

AUDIT_COLUMNS = (
    "rank",
    "file",
    "label",
    "predicted",
    "confidence",
    "own_sim",
    "nearest_other",
    "other_sim",
    "margin",
    "reasons",
)


def label_audit(
    embeddings,
    labels,
    probs,
    class_names: Sequence[str],
    files: Sequence[str],
    *,
    sim_quantile: float = 0.05,
    margin_threshold: float = 0.05,
) -> list[dict]:
    """The flagged images, most suspicious first.

    Reasons (an image can have several, joined with "; "):

    - ``low_similarity``: ``own_sim`` is below the ``sim_quantile`` quantile of
      ``own_sim`` within the image's own class (classes differ in spread, so a
      split-wide threshold would flag mostly the most varied classes; classes with
      one labelled image are never flagged for this).
    - ``small_margin``: ``margin = own_sim - other_sim`` below ``margin_threshold``
      (negative: the image is closer to another class's centroid).
    - ``prediction_disagrees``: the argmax of ``probs`` is not the label.

    ``own_sim`` is measured against the centroid of the image's class WITHOUT the
    image itself: otherwise a mislabelled image pulls its centroid towards itself,
    which hides it in small classes. Rows are ranked by margin ascending, ties by
    ``own_sim`` ascending; each has ``file, label, predicted, confidence, own_sim,
    nearest_other, other_sim, margin, reasons, rank`` (class names, not indices;
    ``nearest_other``/``other_sim``/``margin`` are ""/None/None when the split has a
    single class).
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    rows = _labelled_rows(emb, y, p, class_names, files, sim_quantile)
    own = y[rows]
    sim = _similarities(_l2_normalise(emb[rows]), own, len(class_names))
    low_cut = _low_similarity_cuts(sim, own, sim_quantile)
    predicted = p[rows].argmax(axis=1)
    confidence = p[rows].max(axis=1)

    flagged = []
    for i, row in enumerate(rows):
        reasons = _reasons(sim, i, own[i], low_cut, predicted[i], margin_threshold)
        if not reasons:
            continue
        has_other = sim.has_other[i]
        flagged.append(
            {
                "file": str(files[row]),
                "label": str(class_names[own[i]]),
                "predicted": str(class_names[predicted[i]]),
                "confidence": float(confidence[i]),
                "own_sim": float(sim.own_sim[i]),
                "nearest_other": str(class_names[sim.nearest[i]]) if has_other else "",
                "other_sim": float(sim.other_sim[i]) if has_other else None,
                "margin": float(sim.margin[i]) if has_other else None,
                "reasons": "; ".join(reasons),
            }
        )
    return _ranked(flagged)


def _labelled_rows(emb, y, p, class_names, files, sim_quantile) -> np.ndarray:
    """The indices of the labelled rows, after checking the inputs' shapes and
    ranges (a `ValueError` naming the first that is wrong)."""
    num_classes = len(class_names)
    n = emb.shape[0] if emb.ndim == 2 else -1
    if emb.ndim != 2 or p.shape != (n, num_classes) or y.shape != (n,):
        raise ValueError(
            "label_audit needs embeddings (N, D), labels (N,) and probs (N, C) with "
            f"C = len(class_names). Received: embeddings={emb.shape}, "
            f"labels={y.shape}, probs={p.shape}, len(class_names)={num_classes}"
        )
    if len(files) != n:
        raise ValueError(f"files has {len(files)} entries for {n} embeddings.")
    if ((y < -1) | (y >= num_classes)).any():
        raise ValueError(f"labels must be -1 (unlabelled) or in [0, {num_classes}).")
    if not 0.0 <= sim_quantile <= 1.0:
        raise ValueError(f"sim_quantile must be in [0, 1]. Received: {sim_quantile}")
    rows = np.flatnonzero(y >= 0)
    if rows.size == 0:
        raise ValueError(f"No labelled rows to audit: all {n} labels are -1.")
    return rows


class _Similarities(NamedTuple):
    """Per labelled image: cosine similarity to its own class (leave-one-out) and
    to the nearest other class centroid."""

    counts: np.ndarray  # labelled images per class
    own_sim: np.ndarray
    nearest: np.ndarray  # index of the nearest other class
    other_sim: np.ndarray  # -inf where the split has no other class
    has_other: np.ndarray
    margin: np.ndarray  # own_sim - other_sim, NaN without another class


def _similarities(unit: np.ndarray, own: np.ndarray, num_classes: int):
    """`_Similarities` of the unit-length embeddings ``unit`` labelled ``own``."""
    counts = np.bincount(own, minlength=num_classes)
    sums = np.zeros((num_classes, unit.shape[1]))
    np.add.at(sums, own, unit)
    centroids = _l2_normalise(sums)
    sims = unit @ centroids.T  # (n_labelled, C)
    sims[:, counts == 0] = -np.inf  # classes absent from the split have no centroid

    # Leave-one-out own centroid (see label_audit's docstring); a singleton class
    # has none, so it keeps the centroid that is the image itself.
    loo = sums[own] - unit
    loo_sims = np.einsum("nd,nd->n", unit, _l2_normalise(loo))
    own_sim = np.where(counts[own] > 1, loo_sims, sims[np.arange(own.size), own])

    others = sims.copy()
    others[np.arange(own.size), own] = -np.inf
    nearest = others.argmax(axis=1)
    other_sim = others[np.arange(own.size), nearest]
    has_other = np.isfinite(other_sim)
    margin = np.where(has_other, own_sim - np.where(has_other, other_sim, 0.0), np.nan)
    return _Similarities(counts, own_sim, nearest, other_sim, has_other, margin)


def _low_similarity_cuts(sim: _Similarities, own, sim_quantile: float) -> np.ndarray:
    """Per class, the ``sim_quantile`` quantile of its images' ``own_sim`` (-inf for
    classes with fewer than two labelled images: never flagged for it)."""
    low_cut = np.full(sim.counts.size, -np.inf)
    for c in np.flatnonzero(sim.counts > 1):
        low_cut[c] = np.quantile(sim.own_sim[own == c], sim_quantile)
    return low_cut


def _reasons(sim, i, label, low_cut, predicted, margin_threshold) -> list[str]:
    """Why labelled image ``i`` is flagged (empty: it is not)."""
    reasons = []
    if sim.own_sim[i] < low_cut[label]:
        reasons.append("low_similarity")
    if sim.has_other[i] and sim.margin[i] < margin_threshold:
        reasons.append("small_margin")
    if predicted != label:
        reasons.append("prediction_disagrees")
    return reasons


def _ranked(flagged: list[dict]) -> list[dict]:
    """``flagged`` sorted by margin then ``own_sim`` ascending, each with its rank."""
    # Rows without a margin (single-class split) go after every row with one.
    flagged.sort(
        key=lambda r: (
            r["margin"] is None,
            r["margin"] if r["margin"] is not None else 0.0,
            r["own_sim"],
        )
    )
    for rank, r in enumerate(flagged, start=1):
        r["rank"] = rank
    return flagged


def audit_csv(rows: Sequence[Mapping]) -> str:
    """CSV text of ``label_audit`` rows, one per flagged image, in rank order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in AUDIT_COLUMNS])
    return out.getvalue()


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return value


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    # An all-zero vector stays zero (similarity 0 to everything), never NaN.
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
