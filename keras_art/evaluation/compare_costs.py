"""Each compared entry's size, compute and training facts.

Parameters and GFLOPs are counted from the run's model config at its image size
(`keras_art.models.model_cost.measure_compute`: a backbone build of a few seconds,
once per distinct model), the size is ``best.keras`` on disk, and epochs, training
time and images/s come from ``summary.json`` and the report's ``forward_pass``
(evaluate's own pass over the split: decode, resize and model on this machine, so
a rough figure; ``python -m keras_art.bench serve`` measures throughput properly).
For a group: the mean over its repeats, and the standard deviation where repeats
differ (epochs with early stopping, times).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np

from keras_art.config import ModelConfig
from keras_art.evaluation.compare_inputs import ComparedRun, Entry

FACTS = (
    "params",
    "gflops",
    "size_mb",
    "epochs",
    "best_epoch",
    "train_s",
    "images_per_s",
)


def entry_facts(entries: list[Entry], measure: Callable | None = None) -> list[dict]:
    """Per entry: ``{fact: {"mean", "sd"}}`` for each of `FACTS` (None when no run
    recorded it; ``sd`` None for a single run). ``measure(model_cfg, num_classes,
    image_size)`` counts parameters and GFLOPs (default: `measure_compute`)."""
    if measure is None:
        from keras_art.models.model_cost import measure_compute as measure
    cache: dict[str, dict] = {}
    return [
        {
            k: _aggregate([_run_facts(run, measure, cache)[k] for run in entry.runs])
            for k in FACTS
        }
        for entry in entries
    ]


def _run_facts(run: ComparedRun, measure, cache) -> dict:
    cost = _cost(run, measure, cache)
    forward = run.metrics.get("forward_pass") or {}
    size = run.run.best_model.stat().st_size if run.run.best_model.is_file() else None
    return {
        "params": cost.get("params"),
        "gflops": cost.get("gflops"),
        "size_mb": None if size is None else size / 2**20,
        "epochs": run.summary.get("epochs_run"),
        "best_epoch": run.summary.get("best_epoch"),
        "train_s": (run.summary.get("timings") or {}).get("fit_s"),
        "images_per_s": forward.get("images_per_second"),
    }


def _cost(run: ComparedRun, measure, cache) -> dict:
    model = run.config.get("model") or {}
    classes = {t: len(names) for t, names in run.class_names.items()}
    key = json.dumps([model, classes, run.image_size], sort_keys=True)
    if key not in cache:
        known = {
            k: v for k, v in model.items() if k in ModelConfig.__dataclass_fields__
        }
        cache[key] = measure(ModelConfig(**known), classes, run.image_size)
    return cache[key]


def _aggregate(values: list) -> dict:
    found = [float(v) for v in values if v is not None and not _is_nan(v)]
    if not found:
        return {"mean": None, "sd": None}
    sd = float(np.std(found, ddof=1)) if len(values) > 1 and len(found) > 1 else None
    return {"mean": float(np.mean(found)), "sd": sd}


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
