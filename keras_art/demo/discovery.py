"""Which models a path holds, for the demo's model chooser.

`find_models` takes what ``--model`` names: one model (a run directory, a
SavedModel, TF Serving's ``BASE/NAME`` folder or a ``.tflite`` file; recognised by
`keras_art.inference.backends.detect_model`), or a folder of them, walked a few
levels deep. Nothing is loaded by `find_models`: `ModelCache` loads a model when
it is first chosen (`load_found`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from keras_art.errors import ParameterError
from keras_art.inference.backends import (
    EXPECTED,
    MODEL_KINDS,
    TFLITE_SUFFIX,
    LoadedModel,
    detect_model,
    load_model,
    newest_serving_version,
)
from keras_art.models.exported import sidecar_path
from keras_art.run_dir import RunDir

logger = logging.getLogger(__name__)

# How deep a folder of models is searched (runs/RUN, serving/NAME/VERSION,
# models/x.tflite sit at depth 1-2; a mistaken --model ~ stays cheap).
MAX_DEPTH = 4
# The chooser lists runs first (they show the most: Grad-CAM, attention).
LIST_ORDER = ("run", "saved_model", "tflite")


@dataclass(frozen=True)
class FoundModel:
    """A model found under the demo's path.

    Attributes:
        name: what the chooser shows: the path relative to the folder searched
            (the file or folder's own name for a single model), plus its kind.
        kind: one of `MODEL_KINDS`.
        path: what `keras_art.inference.load_model` loads (a TF Serving folder's
            highest version).
    """

    name: str
    kind: str
    path: Path


def find_models(model: str | os.PathLike) -> list[FoundModel]:
    """The models at ``model``: itself if it is one, else every run directory
    (finished), SavedModel (a TF Serving folder as its highest version) and
    ``.tflite`` file (with its sidecar) under it, at most `MAX_DEPTH` levels deep,
    by kind (`LIST_ORDER`), then path. Raises `ParameterError` naming ``model``
    when there is none.
    """
    root = Path(model).expanduser()
    if not root.is_dir():
        kind, found = detect_model(root)  # a file: a .tflite, or an error
        return [_found(root.parent, root, kind, found)]
    try:
        kind, found = detect_model(root)
    except ParameterError:
        pass  # not one model: a folder of them
    else:
        return [_found(root.parent, root, kind, found)]
    models = sorted(_walk(root), key=lambda m: LIST_ORDER.index(m.kind))
    if not models:
        raise ParameterError(
            f"{{model}} {model}: no models in it (looked {MAX_DEPTH} levels deep for "
            f"finished run directories, SavedModels and .tflite files with their "
            f".json). Pass {EXPECTED}, or a folder holding some."
        )
    return models


def _walk(root: Path) -> list[FoundModel]:
    models = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs.sort()
        # Hidden folders hold no models (exports stage in ".N.x.tmp" folders).
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found = _model_in(here)
        if found is not None:
            models.append(_found(root, here, *found))
        if found is not None or RunDir(here).is_run():
            dirs[:] = []  # a model's own folders (eval/, variables/) hold no more
            continue
        for name in sorted(files):
            path = here / name
            if path.suffix.lower() == TFLITE_SUFFIX:
                if sidecar_path(path).is_file():
                    models.append(_found(root, path, "tflite", path))
                else:
                    logger.warning(
                        "demo: skipped %s: no %s beside it",
                        path,
                        sidecar_path(path).name,
                    )
        if len(here.relative_to(root).parts) + 1 >= MAX_DEPTH:
            dirs[:] = []
    return models


def _model_in(folder: Path) -> tuple[str, Path] | None:
    """``(kind, path to load)`` when ``folder`` is a model, else ``None``."""
    if (folder / "saved_model.pb").is_file():
        return "saved_model", folder
    run = RunDir(folder)
    if run.is_run():
        if run.is_finished():
            return "run", folder
        logger.warning("demo: skipped %s: an unfinished run", folder)
        return None
    version = newest_serving_version(folder)
    if version is not None:
        return "saved_model", version
    return None


def _found(root: Path, where: Path, kind: str, path: Path) -> FoundModel:
    relative = where.relative_to(root).as_posix()
    if path != where:  # a TF Serving folder: say which version
        relative = f"{relative} (version {path.name})"
    return FoundModel(_label(relative, kind), kind, path)


def _label(name: str, kind: str) -> str:
    return f"{name} - {MODEL_KINDS[kind]}"


class ModelCache:
    """The found models by name, each loaded on first use and kept (the app's
    handlers may run on several threads: one load per model).

    Args:
        models: what `find_models` found.
        calibration: apply the model's temperature calibration (when it has one).
    """

    def __init__(self, models: list[FoundModel], calibration: bool = True):
        self.models = {m.name: m for m in models}
        self.calibration = calibration
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    @classmethod
    def of_loaded(cls, loaded: LoadedModel) -> ModelCache:
        """A cache of one model, already loaded."""
        found = _found(loaded.path.parent, loaded.path, loaded.kind, loaded.path)
        cache = cls([found])
        cache._loaded[found.name] = loaded
        return cache

    def get(self, name: str) -> LoadedModel:
        """The model named ``name`` (one of ``self.models``), loaded."""
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = load_found(self.models[name], self.calibration)
            return self._loaded[name]


def load_found(found: FoundModel, calibration: bool = True) -> LoadedModel:
    """Load a found model; ``calibration=False`` asks for raw probabilities."""
    return load_model(found.path, calibration=calibration)
