"""Finished runs without a model: what `compare` reads, written by the real code.

`make_run` writes a run directory (config, classes, splits, model record, history,
summary) and its test report through evaluate's own writer
(`keras_art.evaluation.evaluate_run._write_report`) from given probabilities, so
``metrics.json`` and ``predictions.npz`` are exactly what evaluate would write for
a model that predicted them. Its PNGs are stubbed (empty files): compare never
reads them, and drawing them would cost seconds per run.
"""

from __future__ import annotations

import contextlib
import csv
import time
from pathlib import Path

import numpy as np
import pytest

from keras_art.config import get_preset
from keras_art.evaluation import evaluate_run
from keras_art.evaluation.predictions import Predictions
from keras_art.models.model_record import ModelRecord
from keras_art.run_dir import GroupDir, RunDir, repeat_name

CLASSES = ["Klimt", "Monet", "Seurat", "Turner"]
BOOTSTRAP = 200  # the fake reports' resamples; compare calls pass the same


def probabilities(labels, accuracy: float, seed: int, classes: int = len(CLASSES)):
    """Probabilities whose argmax is right on about ``accuracy`` of the images
    (wrong ones go to a seeded other class), with the label second when wrong."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    probs = rng.uniform(0.0, 0.1, size=(labels.size, classes))
    right = rng.uniform(size=labels.size) < accuracy
    other = (labels + rng.integers(1, classes, labels.size)) % classes
    top = np.where(right, labels, other)
    probs[np.arange(labels.size), top] += 1.0
    probs[np.arange(labels.size), labels] += np.where(right, 0.0, 0.5)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def labels_for(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(CLASSES), n)


@contextlib.contextmanager
def _no_pngs():
    def stub(*args, **kwargs):
        path = Path(args[2] if len(args) > 2 else args[1])
        path.write_bytes(b"")
        return path

    with pytest.MonkeyPatch.context() as mp:
        for name in ("plot_confusion_matrix", "plot_gallery", "plot_training_curves"):
            mp.setattr(evaluate_run.plots, name, stub)
        yield


def make_run(
    path: Path,
    labels,
    probs,
    *,
    head: str = "gap",
    seed: int = 0,
    files: list[str] | None = None,
    classes: list[str] = CLASSES,
    stages=("1", "1", "2"),
    fit_s: float = 12.0,
    report: bool = True,
) -> RunDir:
    """A finished single-task (artist) run at ``path`` whose test report holds
    ``probs`` for ``labels``; ``stages``: history.csv's stage column per epoch."""
    cfg = get_preset("smoke")
    cfg.task, cfg.model.head, cfg.train.seed = "artist", head, seed
    cfg.workdir, cfg.run_name = str(path.parent), path.name
    run = RunDir(path)
    path.mkdir(parents=True)
    run.write_config(cfg.to_json())
    run.write_classes({"artist": list(classes)})
    labels = np.asarray(labels, np.int64)
    files = files or [f"images/{i:03d}.jpg" for i in range(labels.size)]
    run.write_splits(
        ["artist"],
        [(f, [classes[y]], "test") for f, y in zip(files, labels, strict=True)],
    )
    record = ModelRecord.from_config(cfg, {"artist": list(classes)})
    record.write(run)
    _write_history(run.history, stages, seed)
    run.write_summary(
        {
            "status": "complete",
            "epochs_run": len(stages),
            "best_epoch": len(stages),
            "metrics": {},
            "metrics_split_note": "test: held out",
            "timings": {"wall_s": fit_s + 3, "fit_s": fit_s},
        }
    )
    if report:
        write_report(run, record, files, labels, probs)
    return run


def write_report(run: RunDir, record, files, labels, probs) -> None:
    rows = evaluate_run.EvalRows("test", list(files), {"artist": labels}, "held out")
    preds = Predictions({"artist": np.asarray(probs)}, np.zeros((len(files), 2)))
    with _no_pngs(), run.eval_writer("test") as staging:
        evaluate_run._write_report(
            staging, run, record, rows, preds, None,
            checkpoint="best", tta_sizes=(), gradcam=0, audit=False, top_k=5,
            bootstrap=BOOTSTRAP, seed=0, start=time.time(), forward_s=0.25,
            temperature=(dict.fromkeys(record.tasks), "not calibrated"),
            overlap=None, warnings=[],
        )  # fmt: skip


def _write_history(path: Path, stages, seed: int) -> None:
    rows = [["epoch", "loss", "val_loss", "macro_f1", "val_macro_f1", "stage"]]
    for e, stage in enumerate(stages, 1):
        rows.append([e, 2.0 / e + seed * 0.01, 2.2 / e, 0.2 * e, 0.18 * e, stage])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def make_group(path: Path, labels, accuracies, seeds=None, **kwargs) -> GroupDir:
    """A group of repeats (``group.json`` and ``seed-<s>/``), one per accuracy."""
    seeds = list(seeds if seeds is not None else range(len(accuracies)))
    group = GroupDir(path)
    path.mkdir(parents=True)
    group.write_manifest({"seeds": seeds, "varies": "train.seed", "config": {}})
    for seed, accuracy in zip(seeds, accuracies, strict=True):
        probs = probabilities(labels, accuracy, seed=100 + seed)
        make_run(path / repeat_name(seed), labels, probs, seed=seed, **kwargs)
    return group
