"""Temperature scaling of a model's probabilities (Guo et al., 2017): fit and apply.

A keras_art model outputs probabilities ``p = softmax(z)`` (float32), not logits.
``log p = z - logsumexp(z)`` differs from the logits ``z`` only by a constant per
row, and softmax ignores such a constant, so ``softmax(log(p) / T)`` equals
``softmax(z / T)`` exactly; ``p`` is floored at float32's smallest normal number
first (`PROB_FLOOR`) so that a probability that underflowed to 0 stays finite.

Applying ``T`` and undoing it are the same operation: probabilities scaled with
``T`` are turned into ones scaled with ``T'`` by `apply_temperature` with ``T' / T``
(``p_raw`` is proportional to ``p_cal ** T``). So an exported model with ``T`` inside
its graph gives back the raw probabilities exactly (up to float32 rounding).

`fit_temperature` picks the one scalar per task that minimises the mean negative
log-likelihood on held-out data (the validation split). numpy and scipy only; the
TensorFlow form for exported graphs is `apply_temperature_tf`.
"""

from __future__ import annotations

import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

# float32's smallest normal number: log() of it is -87.3, finite in float32.
PROB_FLOOR = float(np.finfo(np.float32).tiny)
# The search range for T. Above 20 a model is not miscalibrated but broken (or the
# split is too small to say). The floor 0.25 keeps a baked-in T undoable in float32:
# T sharpens p to p ** (1 / T), so a class below PROB_FLOOR ** T underflows to 0
# and comes back as PROB_FLOOR ** T; at 0.25 that is 3e-10, below anything a
# report or a top-k shows (at 0.05 it would be 0.01). The fit warns at a bound.
TEMPERATURE_BOUNDS = (0.25, 20.0)


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / temperature)`` row-wise, in ``probs``' float dtype
    (float32 for anything that is not float64)."""
    p = np.asarray(probs)
    dtype = p.dtype if p.dtype == np.float64 else np.float32
    t = check_temperature(temperature)
    z = np.log(np.maximum(p.astype(np.float64), PROB_FLOOR)) / t
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(dtype)


def apply_temperature_tf(probs, temperature: float):
    """`apply_temperature` as TensorFlow ops (float32), for exported graphs: LOG,
    MAXIMUM, MUL and SOFTMAX, all TFLite builtins."""
    import tensorflow as tf

    t = check_temperature(temperature)
    z = tf.math.log(tf.maximum(tf.cast(probs, tf.float32), PROB_FLOOR))
    return tf.nn.softmax(z * (1.0 / t), axis=-1)


def rescale(probs, *, baked: float | None, wanted: float | None) -> np.ndarray:
    """Probabilities scaled with temperature ``baked`` (None: raw) turned into
    probabilities scaled with ``wanted`` (None: raw); unchanged when they agree."""
    ratio = (wanted or 1.0) / (baked or 1.0)
    if ratio == 1.0:
        return np.asarray(probs, np.float32)
    return apply_temperature(probs, ratio)


def mean_nll(labels, probs, temperature: float = 1.0) -> float:
    """Mean ``-log`` of the true class's probability after `apply_temperature`
    (``labels``: ints in ``[0, C)``, every row labelled)."""
    y = np.asarray(labels, np.int64)
    p = np.asarray(probs, np.float64)
    t = check_temperature(temperature)
    z = np.log(np.maximum(p, PROB_FLOOR)) / t
    # log-softmax by logsumexp, stable for any T in the bounds.
    top = z.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(y.size), y]))


def fit_temperature(
    labels, probs, bounds: tuple[float, float] = TEMPERATURE_BOUNDS
) -> float:
    """The temperature in ``bounds`` that minimises `mean_nll` on ``(labels,
    probs)``; rows with label -1 are ignored. ValueError without labelled rows.

    The NLL of ``softmax(z / T)`` is convex in ``1 / T`` (a log-sum-exp minus a
    linear term), hence unimodal in ``log T``: a bounded 1-D search over ``log T``
    (scipy's Brent, `scipy.optimize.minimize_scalar`) finds the global minimum
    without gradients, to a tolerance far below what the data can tell apart.
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(labels, np.int64)
    p = np.asarray(probs, np.float64)
    keep = y >= 0
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(
            f"labels must be (N,) and probs (N, C). Received: labels.shape={y.shape}, "
            f"probs.shape={p.shape}"
        )
    if not keep.any():
        raise ValueError("No labelled rows to fit a temperature on (all labels -1).")
    y, p = y[keep], p[keep]
    lo, hi = (math.log(b) for b in bounds)
    found = minimize_scalar(
        lambda log_t: mean_nll(y, p, math.exp(log_t)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-5},
    )
    t = float(math.exp(found.x))
    if min(abs(found.x - lo), abs(found.x - hi)) < 1e-3:
        logger.warning(
            "The fitted temperature %.3g stopped at its bound (range %g-%g): the "
            "held-out predictions are degenerate (all right or all wrong with "
            "full confidence) or too few to fit on.",
            t,
            *bounds,
        )
    return t


def check_temperature(temperature) -> float:
    """``temperature`` as a float; ValueError unless finite and positive."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = math.nan
    if not (math.isfinite(t) and t > 0):
        raise ValueError(
            f"A temperature must be a finite number above 0. Received: {temperature!r}"
        )
    return t
