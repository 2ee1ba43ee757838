"""How well a model's probabilities are calibrated: ECE, classwise ECE, NLL, Brier.

Definitions (``CALIBRATION_DEFINITION``, shown in the report):

- confidence: a row's top probability; correct: its argmax is the label.
- ECE (expected calibration error, Guo et al. 2017): the confidences go into
  ``N_BINS`` equal-width bins over [0, 1], bin b holding ``(b/B, (b+1)/B]`` (bin 0
  also 0); ECE = sum over bins of (rows in bin / N) * |accuracy - mean confidence|.
- classwise ECE (Kull et al. 2019): the same binned error for every class c, on
  p(c) against "the label is c" over all rows, averaged over the classes.
- NLL: mean -log p(true class), rows renormalised and p clipped to
  [1e-7, 1 - 1e-7] as Keras' loss (the headline's loss column).
- Brier: mean over rows of sum over classes of (p(c) - [label == c])^2, in [0, 2].

numpy by hand: scikit-learn has no ECE; its ``calibration_curve`` gives a bin's
accuracy and confidence (the same (lo, hi] bins, the tests cross-check) but not
the counts that ECE and the confidence histogram need, and its multi-class
``brier_score_loss`` needs scikit-learn 1.7 (keras_art allows 1.4).
"""

from __future__ import annotations

import numpy as np

from keras_art.evaluation.metrics import cross_entropy, labelled_rows
from keras_art.models.calibration import apply_temperature

N_BINS = 15
CALIBRATION_DEFINITION = (
    f"ECE: confidences (top probability) in {N_BINS} equal-width bins over [0, 1]; "
    "sum over bins of the bin's share of images times |accuracy - mean confidence|. "
    "Classwise ECE: the same for each class's probability against 'label is that "
    "class', averaged over classes. NLL: mean -log p(true class) (the loss). Brier: "
    "mean over images of the sum over classes of (p - one-hot)^2, in [0, 2]. "
    "Temperature scaling: p = softmax(log(p_raw) / T), one T per task fitted on the "
    "val split by minimising NLL; it never changes the predicted class."
)


def bin_index(confidence, n_bins: int = N_BINS) -> np.ndarray:
    """Each confidence's bin: b for ``(b/n_bins, (b+1)/n_bins]``, 0 for 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left": a confidence equal to an edge goes to the bin it closes.
    return np.searchsorted(edges[1:-1], np.asarray(confidence, np.float64))


def reliability_bins(confidence, correct, n_bins: int = N_BINS) -> dict:
    """Per bin: ``count``, mean ``confidence`` and ``accuracy`` (None when empty)
    and the ``edges``; what the reliability diagram and histogram draw."""
    conf = np.asarray(confidence, np.float64)
    hit = np.asarray(correct, np.float64)
    idx = bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(idx, weights=hit, minlength=n_bins)

    def mean(total):
        return [float(s / n) if n else None for s, n in zip(total, count, strict=True)]

    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(),
        "count": count.tolist(),
        "confidence": mean(conf_sum),
        "accuracy": mean(hit_sum),
    }


def binned_ece(confidence, correct, n_bins: int = N_BINS) -> float:
    """Sum over bins of (count / N) * |accuracy - mean confidence|."""
    conf = np.asarray(confidence, np.float64)
    hit = np.asarray(correct, np.float64)
    idx = bin_index(conf, n_bins)
    # count/N * |hits/count - conf_sum/count| = |hits - conf_sum| / N per bin.
    gap = np.bincount(idx, weights=hit - conf, minlength=n_bins)
    return float(np.abs(gap).sum() / conf.size)


def expected_calibration_error(labels, probs, n_bins: int = N_BINS) -> float:
    """ECE of the labelled rows (label -1 ignored)."""
    y, p = labelled_rows(labels, probs, None)
    return binned_ece(p.max(axis=1), p.argmax(axis=1) == y, n_bins)


def classwise_ece(labels, probs, n_bins: int = N_BINS) -> float:
    """Mean over classes of the binned one-vs-rest ECE of that class's column."""
    y, p = labelled_rows(labels, probs, None)
    return float(
        np.mean([binned_ece(p[:, c], y == c, n_bins) for c in range(p.shape[1])])
    )


def brier_score(labels, probs) -> float:
    """Mean over rows of sum over classes of (p - one-hot)^2 (0 to 2)."""
    y, p = labelled_rows(labels, probs, None)
    onehot = np.eye(p.shape[1])[y]
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def calibration_metrics(labels, probs, n_bins: int = N_BINS) -> dict:
    """``{"ece", "classwise_ece", "nll", "brier", "bins"}`` of the labelled rows."""
    y, p = labelled_rows(labels, probs, None)
    return {
        "ece": expected_calibration_error(y, p, n_bins),
        "classwise_ece": classwise_ece(y, p, n_bins),
        "nll": float(cross_entropy(y, p).mean()),
        "brier": brier_score(y, p),
        "bins": reliability_bins(p.max(axis=1), p.argmax(axis=1) == y, n_bins),
    }


def calibration_report(
    labels, probs, temperature: float | None, source: str, n_bins: int = N_BINS
) -> dict:
    """Calibration ``before`` (the model's probabilities) and ``after`` temperature
    scaling with ``temperature`` (None: not calibrated, ``after`` is None);
    ``source`` says where the temperature came from."""
    after = None
    if temperature is not None:
        scaled = apply_temperature(probs, temperature)
        after = calibration_metrics(labels, scaled, n_bins)
    return {
        "temperature": temperature,
        "source": source,
        "n_bins": n_bins,
        "before": calibration_metrics(labels, probs, n_bins),
        "after": after,
    }
