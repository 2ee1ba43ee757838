"""Temperature scaling at the end of training: one T per task, fitted on val.

The best weights are restored; one pass over the validation pipeline (the images
training validated on, eval preprocessing) gives every task's probabilities, and
`keras_art.models.calibration.fit_temperature` picks the T that minimises their
negative log-likelihood. `train` writes the temperatures into ``model.json`` (the
run's model record, read by evaluate, export and predict) and the fit's numbers into
``summary.json``.
"""

from __future__ import annotations

import logging

import numpy as np

from keras_art.models.calibration import fit_temperature, mean_nll

logger = logging.getLogger(__name__)


def fit_val_temperatures(model, val_ds, tasks) -> dict[str, dict]:
    """Per task ``{"temperature", "n", "val_nll_before", "val_nll_after"}`` from
    ``model`` on ``val_ds`` (batches of ``(images, one-hot targets, weights)``); a
    task without labelled val rows keeps T = 1. Empty when ``val_ds`` is None."""
    if val_ds is None:
        logger.info("calibration: no val split, so no temperature is fitted")
        return {}
    probs, labels = _val_predictions(model, val_ds, tasks)
    fitted = {}
    for task in tasks:
        keep = labels[task] >= 0
        y, p = labels[task][keep], probs[task][keep]
        t = fit_temperature(y, p) if keep.any() else 1.0
        fitted[task] = {
            "temperature": round(t, 6),
            "n": int(keep.sum()),
            "val_nll_before": round(mean_nll(y, p), 6) if keep.any() else None,
            "val_nll_after": round(mean_nll(y, p, t), 6) if keep.any() else None,
        }
        logger.info(
            "calibration: %s T=%.3f (val NLL %s -> %s, %d images)",
            task,
            t,
            fitted[task]["val_nll_before"],
            fitted[task]["val_nll_after"],
            keep.sum(),
        )
    return fitted


def _val_predictions(model, val_ds, tasks):
    probs = {t: [] for t in tasks}
    labels = {t: [] for t in tasks}
    for images, targets, _ in val_ds:
        out = model(images, training=False)
        for t in tasks:
            probs[t].append(np.asarray(out[t], np.float32))
            onehot = np.asarray(targets[t])
            # An unlabelled row's target is all zeros (tf.one_hot of -1).
            labels[t].append(np.where(onehot.sum(axis=1) > 0, onehot.argmax(1), -1))
    return (
        {t: np.concatenate(v) for t, v in probs.items()},
        {t: np.concatenate(v) for t, v in labels.items()},
    )
