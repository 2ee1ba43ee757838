"""The numbers of a comparison, per task: each entry's scores with intervals, and
each entry against the first (the baseline) with paired tests.

For a run, a score is its value on the compared images and the interval is the
bootstrap over those images (its report's interval, the same draws). For a group of
repeats, the score is the mean over the repeats with their standard deviation
(``sd``, ddof 1: the spread that training seeds bring), and the interval is the
bootstrap over images of that mean, every repeat scored on the same resample: one
pooled interval for the group's mean, where each repeat's own report interval
(listed per repeat) would describe one repeat only. The two answer different
questions: ``sd`` how much a retrain moves the score, the interval how much another
test set of this size would.
"""

from __future__ import annotations

import numpy as np

from keras_art.evaluation import paired_tests
from keras_art.evaluation.compare_inputs import Entry
from keras_art.evaluation.resampling import (
    SCORES,
    EntryPredictions,
    bootstrap_scores,
    interval,
    repeat_scores,
    top_k_hits,
)


def task_results(
    entries: list[Entry],
    task: str,
    *,
    top_k: int,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict:
    """``{"classes", "n", "entries": [...], "tests": [...]}`` for ``task`` (the
    labelled images only; entries in the order given, the first is the baseline)."""
    first = entries[0].runs[0]
    labels = first.predictions.labels[task]
    keep = labels >= 0
    y = labels[keep]
    classes = first.class_names[task]
    preds = [_entry_predictions(entry, task, keep, y, top_k) for entry in entries]
    boot = bootstrap_scores(y, preds, len(classes), n_resamples=n_resamples, seed=seed)
    points = [repeat_scores(y, p, len(classes)) for p in preds]
    out_entries = [
        _entry_result(entry, task, y, p, pts, b, len(classes), level)
        for entry, p, pts, b in zip(entries, preds, points, boot, strict=True)
    ]
    tests = [
        _paired(entries[0], entries[e], y, preds[0], preds[e], points, boot, e, level)
        for e in range(1, len(entries))
    ]
    return {
        "classes": list(classes),
        "n": int(y.size),
        "entries": out_entries,
        "tests": tests,
    }


def _entry_predictions(entry: Entry, task, keep, y, top_k) -> EntryPredictions:
    probs = [run.predictions.probs[task][keep] for run in entry.runs]
    return EntryPredictions(
        predicted=np.stack([p.argmax(axis=1) for p in probs]),
        topk_hit=np.stack([top_k_hits(y, p, top_k) for p in probs]),
    )


def _scores(values) -> dict[str, float | None]:
    return {k: _num(v) for k, v in zip(SCORES, values, strict=True)}


def _num(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _entry_result(entry, task, y, preds, points, boot, num_classes, level) -> dict:
    repeats = points.shape[0]
    confusion = sum(_confusion(y, p, num_classes) for p in preds.predicted)
    f1 = np.mean(
        [_per_class_f1(_confusion(y, p, num_classes)) for p in preds.predicted], axis=0
    )
    return {
        "name": entry.name,
        "group": entry.group,
        "repeats": repeats,
        "mean": _scores(points.mean(axis=0)),
        "sd": _scores(points.std(axis=0, ddof=1)) if repeats > 1 else None,
        "ci": {k: interval(boot[:, i], level) for i, k in enumerate(SCORES)},
        "per_repeat": [
            {
                "run": str(run.run),
                "seed": run.seed,
                **_scores(points[r]),
                "report_ci": _report_ci(run.metrics, task),
            }
            for r, run in enumerate(entry.runs)
        ],
        "per_class_f1": [float(v) for v in f1],
        "support": [int(v) for v in confusion.sum(axis=1) // repeats],
        "confusion": confusion.tolist(),  # summed over the repeats
    }


def _report_ci(metrics: dict, task: str) -> dict:
    """The run's own report intervals (top-1, macro-F1) for ``task``."""
    boot = metrics.get("per_task", {}).get(task, {}).get("bootstrap") or {}
    return {k: boot[k] for k in ("top1", "macro_f1") if k in boot}


def _confusion(y, predicted, num_classes) -> np.ndarray:
    cells = np.bincount(y * num_classes + predicted, minlength=num_classes**2)
    return cells.reshape(num_classes, num_classes)


def _per_class_f1(counts) -> np.ndarray:
    counts = np.asarray(counts, np.float64)
    tp = np.diag(counts)
    denom = counts.sum(axis=0) + counts.sum(axis=1)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def _paired(base, other, y, base_p, other_p, points, boot, e, level) -> dict:
    """``other`` against the baseline on the same images: top-1 (McNemar for two
    single runs, else the paired bootstrap), macro-F1 (paired bootstrap), and
    Welch's t over repeats when both are groups."""
    out = {"entry": other.name, "baseline": base.name}
    for key in ("top1", "macro_f1"):
        i = SCORES.index(key)
        observed = float(points[e][:, i].mean() - points[0][:, i].mean())
        diffs = boot[e][:, i] - boot[0][:, i]
        test = {
            "difference": observed,
            "ci": interval(diffs, level),
            "p_value": paired_tests.bootstrap_p_value(observed, diffs),
            "method": "paired bootstrap",
        }
        if key == "top1" and not (base.group or other.group):
            mcnemar = paired_tests.mcnemar(
                base_p.predicted[0] == y, other_p.predicted[0] == y
            )
            test.update(mcnemar, method=f"McNemar, {mcnemar['method']}")
        welch = paired_tests.welch_p_value(points[0][:, i], points[e][:, i])
        if welch is not None:
            test["welch_p_value"] = welch
        out[key] = test
    return out
