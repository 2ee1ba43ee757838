"""The one record of a trained model that evaluation, export and predict read.

A run directory's ``model.json`` says what a consumer needs to use ``best.keras``
without the training config: the task(s) and their class names (in output order),
the square input size, how an image is brought to it at evaluation (the resize
mode), the backbone and head. The saved model itself takes RGB pixels in [0, 255] and
normalises them, so this record plus the model is everything.

``temperature`` (task -> T) is the run's temperature scaling
(`keras_art.models.calibration`), fitted on the validation split for ``best.keras``
at the end of training (or by evaluate for a run that lacks it); None: uncalibrated.
An optional field: records written before it still load, at the same version.

Pure Python: reading it never imports TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from keras_art.errors import ParameterError, UserError
from keras_art.models.calibration import check_temperature
from keras_art.registry import EVAL_RESIZE_MODES
from keras_art.run_dir import MODEL_RECORD_FILE as MODEL_RECORD
from keras_art.run_dir import RunDir

__all__ = ["MODEL_RECORD", "RECORD_VERSION", "ModelRecord", "read_model_record"]
# Bumped when a field changes meaning; readers refuse records they cannot read.
RECORD_VERSION = 1


@dataclass
class ModelRecord:
    """What a trained model is, independent of how it was trained."""

    tasks: list[str]
    class_names: dict[str, list[str]]
    image_size: int
    eval_resize: str
    backbone: str
    head: str
    input_range: list[float] = field(default_factory=lambda: [0.0, 255.0])
    version: int = RECORD_VERSION
    temperature: dict[str, float] | None = None

    def __post_init__(self):
        missing = [t for t in self.tasks if t not in self.class_names]
        if missing:
            raise ValueError(f"No class names for task(s) {missing}.")
        if self.eval_resize not in EVAL_RESIZE_MODES:
            raise ValueError(
                f"Unknown eval_resize {self.eval_resize!r}; expected one of "
                f"{EVAL_RESIZE_MODES}."
            )
        if self.temperature is not None:
            if set(self.temperature) != set(self.tasks):
                raise ValueError(
                    f"temperature must name every task ({self.tasks}). Received: "
                    f"{sorted(self.temperature)}"
                )
            self.temperature = {
                t: check_temperature(self.temperature[t]) for t in self.tasks
            }

    @classmethod
    def from_config(cls, cfg, class_names: dict[str, list[str]]) -> ModelRecord:
        """The record of a model trained with ``cfg`` (a `keras_art.config.Config`)."""
        return cls(
            tasks=list(cfg.tasks),
            class_names={t: list(class_names[t]) for t in cfg.tasks},
            image_size=int(cfg.augment.image_size),
            eval_resize=cfg.augment.eval_resize,
            backbone=cfg.model.backbone,
            head=cfg.model.head,
        )

    def with_temperature(self, temperature: dict[str, float] | None) -> ModelRecord:
        """A copy with ``temperature`` (task -> T; None: uncalibrated)."""
        return replace(self, temperature=temperature)

    def num_classes(self) -> dict[str, int]:
        return {t: len(self.class_names[t]) for t in self.tasks}

    def write(self, run_dir: str | os.PathLike) -> Path:
        return RunDir(run_dir).write_model_record(asdict(self))


def read_model_record(run_dir: str | os.PathLike) -> ModelRecord:
    """The `ModelRecord` of a run directory; one clear `UserError` when it can't be."""
    run = RunDir(run_dir)
    path = run.model_record
    if not path.is_file():
        raise ParameterError(
            f"{{run_dir}} {run_dir}: no {MODEL_RECORD}. Pass a run directory written "
            f"by python -m keras_art.train (runs from before keras_art 0.1 lack it: "
            f"retrain)."
        )
    raw = run.read_model_record()  # bad JSON: a ParameterError naming run_dir
    try:
        version = int(raw.get("version", 0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not a readable model record ({exc}).") from None
    if version != RECORD_VERSION:
        raise UserError(
            f"{path}: record version {version}, this keras_art reads version "
            f"{RECORD_VERSION}. Use the keras_art version that trained the run."
        )
    try:
        return ModelRecord(**raw)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a valid model record ({exc}).") from None
