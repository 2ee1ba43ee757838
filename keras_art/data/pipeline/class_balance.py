"""The training order of every epoch, class-balanced or shuffled, and class weights.

`epoch_order` is the one sampler: the training pipeline turns its index sequence
into a dataset, gathers paths and labels by it and only then reads and decodes, and
the run's data report (`sampler_report`) describes the same function.

- ``balanced=False``: a seeded permutation of every example, fresh each epoch, so
  every batch mirrors the global class mix (readers list files sorted by class; a
  shuffle buffer much smaller than the split would feed long single-class runs).
- ``balanced=True``: each of the N draws (N = number of examples) first picks a
  group, every class of the primary task equally likely (examples whose label is
  missing, -1, form one more group that keeps its natural share), then takes that
  group's next example from a seeded stream of permutations of the whole group (a
  fresh permutation when one is used up). The stream continues across epochs, so
  a class too large to be seen in one epoch is read end to end over the next ones:
  after D draws from a class of n files, ``min(n, D)`` distinct files were seen,
  each file used ``floor(D / n)`` or ``ceil(D / n)`` times.

Epoch k's order depends only on ``(seed, k)``: a resumed run replays the earlier
epochs' group draws (cheap integer work) instead of carrying state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Distinct streams of one seed: the shuffle, the group draws, group permutations.
_SHUFFLE, _GROUPS, _PERMUTATION = 1, 2, 3


def _groups(labels, num_classes: int):
    """``(groups, keys, probs)``; a group's key (its class, ``num_classes`` for the
    missing group) seeds its permutations, so they don't shift when another class
    is empty."""
    labels = np.asarray(labels).astype(np.int64)
    n = len(labels)
    missing = np.flatnonzero(labels < 0)
    groups, keys = [], []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members):
            groups.append(members)
            keys.append(c)
    probs = [(1.0 - len(missing) / n) / len(groups)] * len(groups) if groups else []
    if len(missing):
        groups.append(missing)
        keys.append(num_classes)
        probs.append(len(missing) / n)
    return groups, keys, np.asarray(probs, np.float64)


def _rng(*key: int) -> np.random.Generator:
    # SeedSequence takes non-negative integers only.
    return np.random.default_rng([int(k) % 2**63 for k in key])


def epoch_order(
    labels: Sequence[int] | np.ndarray,
    num_classes: int,
    *,
    seed: int | None,
    balanced: bool,
    epoch: int = 0,
) -> np.ndarray:
    """The example indices (int64, length ``len(labels)``) that epoch ``epoch``
    trains on, in order (see the module doc).

    Args:
        labels: the primary task's label per example, -1 = missing.
        num_classes: the primary task's class count.
        seed: the run's seed; ``None`` gives an unseeded order.
        balanced: class-balanced draws (with replacement across a group's
            permutations) instead of one shuffled pass.
        epoch: 0-based epoch; the order depends only on ``seed`` and ``epoch``.
    """
    labels = np.asarray(labels).astype(np.int64)
    n = len(labels)
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0. Received: {epoch}")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    if n == 0:
        return np.zeros(0, np.int64)
    if not balanced:
        return _rng(_SHUFFLE, seed, epoch).permutation(n).astype(np.int64)
    groups, keys, probs = _groups(labels, num_classes)
    consumed = np.zeros(len(groups), np.int64)
    for past in range(epoch):
        consumed += np.bincount(
            _group_draws(seed, past, n, probs), minlength=len(groups)
        )
    draws = _group_draws(seed, epoch, n, probs)
    order = np.empty(n, np.int64)
    for g, (members, key) in enumerate(zip(groups, keys, strict=True)):
        at = np.flatnonzero(draws == g)
        order[at] = _group_stream(members, seed, key, int(consumed[g]), len(at))
    return order


def _group_draws(seed: int, epoch: int, n: int, probs: np.ndarray) -> np.ndarray:
    """Which group each of the epoch's ``n`` draws comes from."""
    return _rng(_GROUPS, seed, epoch).choice(len(probs), size=n, p=probs)


def _group_stream(members, seed: int, key: int, start: int, count: int):
    """Positions ``start .. start + count`` of the group's endless stream: its
    seeded permutations, one after another (cycle r is seeded by r alone)."""
    size = len(members)
    out = np.empty(count, np.int64)
    filled, pos = 0, start
    while filled < count:
        cycle, offset = divmod(pos, size)
        perm = _rng(_PERMUTATION, seed, key, cycle).permutation(size)
        take = min(size - offset, count - filled)
        out[filled : filled + take] = members[perm[offset : offset + take]]
        filled += take
        pos += take
    return out


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
    """The class histogram of the first ``draws`` training draws (epochs 0, 1, ...
    of `epoch_order`, the order the pipeline trains on).

    Returns ``{"counts": [C], "missing": int, "fraction": [C]}``.
    """
    labels = np.asarray(labels).astype(np.int64)
    epochs = max(1, -(-draws // max(len(labels), 1)))
    if seed is None:  # one seed for all the epochs
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    order = np.concatenate(
        [
            epoch_order(labels, num_classes, seed=seed, balanced=balanced, epoch=e)
            for e in range(epochs)
        ]
    )[:draws]
    drawn = labels[order]
    counts = np.bincount(drawn[drawn >= 0], minlength=num_classes)
    return {
        "counts": counts.tolist(),
        "missing": int((drawn < 0).sum()),
        "fraction": (counts / max(len(drawn), 1)).tolist(),
    }


def sampler_report(
    prepared, draws: int = 10000, *, seed: int = 0, balanced: bool = True
) -> dict:
    """What training draws from the train split: `epoch_order` (the function the
    pipeline trains on) over whole epochs, at least ``draws`` draws.

    ``seed`` should be the run's ``train.seed`` (the report then shows the run's
    own epochs). Also reports, for the largest class, how many of its files the
    first epoch reaches and how many epochs reach them all.
    """
    task = prepared.tasks[0]  # the pipeline balances the first (primary) task
    labels = prepared.labels[task][prepared.indices("train")]
    n = len(labels)
    c = prepared.num_classes[task]
    epochs = max(1, -(-draws // max(n, 1)))
    drawn = sampler_histogram(labels, c, epochs * n, balanced=balanced, seed=seed)
    names = prepared.class_names[task]
    train_counts = np.bincount(labels[labels >= 0], minlength=len(names))
    report = {
        "task": task,
        "sampler": "class-balanced" if balanced else "shuffled",
        "draws": epochs * n,
        "epochs": epochs,
        "train_counts": dict(zip(names, train_counts.tolist(), strict=True)),
        "sampled_fraction": {
            name: round(f, 4) for name, f in zip(names, drawn["fraction"], strict=True)
        },
        "unlabelled_draws": drawn["missing"],
    }
    if n and train_counts.any():
        big = int(train_counts.argmax())
        first = epoch_order(labels, c, seed=seed, balanced=balanced, epoch=0)
        reached = len(np.unique(first[labels[first] == big]))
        report["largest_class"] = {
            "class": names[big],
            "files": int(train_counts[big]),
            "distinct_in_epoch_1": reached,
        }
    return report
