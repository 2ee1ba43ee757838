"""Class-balanced sampling (seed 000's weighted sampler) and class weights.

`balanced_indices` draws example indices so that every class of the primary task is
equally likely: one shuffled, repeated stream per class mixed by
``tf.data.Dataset.sample_from_datasets``. Examples whose primary label is missing
(-1) form one more stream that keeps its natural share of the data, so they are
neither lost nor over-sampled. The stream is infinite; the pipeline takes N draws
(N = number of examples) per epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def group_indices(labels: np.ndarray, num_classes: int) -> tuple[list, np.ndarray]:
    """Indices per class (classes with no examples are skipped) plus the missing
    group; returns ``(groups, probabilities)`` for the balanced sampler."""
    labels = np.asarray(labels).astype(np.int64)
    n = len(labels)
    missing = np.flatnonzero(labels < 0)
    groups = [np.flatnonzero(labels == c) for c in range(num_classes)]
    groups = [g for g in groups if len(g)]
    probs = [(1.0 - len(missing) / n) / len(groups)] * len(groups) if groups else []
    if len(missing):
        groups.append(missing)
        probs.append(len(missing) / n)
    return groups, np.asarray(probs, np.float64)


def balanced_indices(labels: np.ndarray, num_classes: int, seed: int | None = None):
    """Infinite ``tf.data.Dataset`` of int64 example indices, class-balanced."""
    import tensorflow as tf

    groups, probs = group_indices(labels, num_classes)
    streams = [tf.data.Dataset.from_tensor_slices(g.astype(np.int64)) for g in groups]
    return sample_groups(streams, [len(g) for g in groups], probs, seed)


def sample_groups(
    streams: Sequence, buffers: Sequence[int], probs: np.ndarray, seed: int | None
):
    """Shuffle (buffer ``buffers[k]``) and repeat each group's dataset, then draw
    from them with probabilities ``probs``: an infinite, seeded dataset."""
    import tensorflow as tf

    repeated = []
    for k, (ds, buffer) in enumerate(zip(streams, buffers, strict=True)):
        # Distinct per-group seeds: equal seeds would shuffle equal-sized groups
        # in lockstep.
        gseed = None if seed is None else seed + 7919 * (k + 1)
        repeated.append(ds.shuffle(buffer, seed=gseed).repeat())
    return tf.data.Dataset.sample_from_datasets(
        repeated,
        weights=probs.astype(np.float32).tolist(),
        seed=seed,
        rerandomize_each_iteration=True,
    )


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``(C,)``, normalised so the mean weight over the
    labelled examples is 1 (classes absent from ``labels`` get 0)."""
    labels = np.asarray(labels).astype(np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes, np.float64)
    w[present] = 1.0 / counts[present]
    labelled = counts.sum()
    if labelled:
        w *= labelled / float((w * counts).sum())
    return w.astype(np.float32)


def sampler_histogram(
    labels: Sequence[int] | np.ndarray,
    num_classes: int,
    draws: int = 10000,
    *,
    balanced: bool = True,
    seed: int | None = 0,
) -> dict[str, list]:
    """The class histogram a training epoch actually sees over ``draws`` samples.

    Returns ``{"counts": [C], "missing": int, "fraction": [C]}`` for the data report;
    with ``balanced=False`` it is the plain shuffled stream's histogram.
    """
    import tensorflow as tf

    labels = np.asarray(labels).astype(np.int64)
    if balanced:
        idx = balanced_indices(labels, num_classes, seed).take(draws)
    else:
        idx = (
            tf.data.Dataset.range(len(labels))
            .shuffle(len(labels), seed=seed)
            .repeat()
            .take(draws)
        )
    drawn = labels[np.fromiter(idx.as_numpy_iterator(), np.int64, count=draws)]
    counts = np.bincount(drawn[drawn >= 0], minlength=num_classes)
    return {
        "counts": counts.tolist(),
        "missing": int((drawn < 0).sum()),
        "fraction": (counts / max(draws, 1)).tolist(),
    }


def sampler_report(prepared, draws: int = 10000) -> dict:
    """What the class-balanced sampler feeds one epoch: train split vs drawn mix."""
    task = prepared.tasks[0]  # the pipeline balances the first (primary) task
    labels = prepared.labels[task][prepared.indices("train")]
    drawn = sampler_histogram(labels, prepared.num_classes[task], draws=draws)
    names = prepared.class_names[task]
    train_counts = np.bincount(labels[labels >= 0], minlength=len(names))
    return {
        "task": task,
        "draws": draws,
        "train_counts": dict(zip(names, train_counts.tolist(), strict=True)),
        "sampled_fraction": {
            n: round(f, 4) for n, f in zip(names, drawn["fraction"], strict=True)
        },
        "unlabelled_draws": drawn["missing"],
    }
