"""Warm starts: another model's weights loaded layer by layer (``train.init_from``).

Seed 002 started every dense-block model from its baseline's weights; seed 000's
multi-task and single-task runs can share a trunk. `load_matching_weights` copies
each layer whose name and weight shapes match from a source model (a run's
``best.keras`` or any ``.keras`` file) into the model about to train, and reports
what it loaded and what it skipped, with the reason.

Layers are matched by their path through nested models (``backbone/conv1_conv``,
``head/head_dense_0``), then, for layers left over, by their bare name when that
name is unique in both models (a plain ``keras.applications`` ResNet50 saved as
``.keras`` has no ``backbone/`` level). A layer that holds sublayers it builds
itself (a GRU pair, attention pooling) matches as one unit: all its weights or none.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from keras_art.errors import ParameterError
from keras_art.run_dir import BEST_MODEL_FILE, RunDir


@dataclass
class WarmStartReport:
    """What `load_matching_weights` did.

    ``loaded``: the model's layer paths that took the source's weights;
    ``skipped``: ``(layer path, reason)`` for the model's layers that did not;
    ``unused``: source layers with weights that nothing took.
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    loaded_parameters: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the run directory's warm-start record)."""
        return {
            "source": self.source,
            "loaded_layers": len(self.loaded),
            "loaded_parameters": self.loaded_parameters,
            "loaded": list(self.loaded),
            "skipped": [{"layer": n, "reason": r} for n, r in self.skipped],
            "unused_source_layers": list(self.unused),
        }

    def summary(self) -> str:
        """One line: where from, how many layers loaded and skipped."""
        return (
            f"init_from {self.source}: {len(self.loaded)} layers loaded "
            f"({self.loaded_parameters:,} parameters), {len(self.skipped)} skipped"
        )

    def lines(self) -> list[str]:
        """The summary, then one line per skipped layer (for the progress log)."""
        return [self.summary(), *(f"  skipped {n}: {r}" for n, r in self.skipped)]


def warm_start_file(source: str | os.PathLike, param: str = "source") -> Path:
    """The ``.keras`` file ``source`` names: itself, or a run directory's best
    model. Errors name ``param`` (a `ParameterError` slot)."""
    path = Path(source).expanduser()
    if path.is_dir():
        best = RunDir(path).best_model
        if not best.is_file():
            raise ParameterError(
                f"{{{param}}} {source}: this folder has no {BEST_MODEL_FILE}. Pass "
                "a run directory that finished an epoch, or a .keras file."
            )
        return best
    if path.is_file() and path.suffix == ".keras":
        return path
    if path.is_file():
        raise ParameterError(
            f"{{{param}}} {source}: not a .keras file. Pass a run directory or a "
            "model saved with model.save('x.keras')."
        )
    raise ParameterError(
        f"{{{param}}} {source}: no such run directory or .keras file. Check the path."
    )


def load_matching_weights(
    model: keras.Model, source: str | os.PathLike, param: str = "source"
) -> WarmStartReport:
    """Copy into ``model`` the weights of every layer of ``source`` (a run directory
    or a ``.keras`` file) whose name and weight shapes match (module doc).

    Returns a `WarmStartReport`. A `ParameterError` naming ``param`` when
    ``source`` is no readable model, or shares no layer with ``model``.
    """
    path = warm_start_file(source, param)
    try:
        other = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
        raise ParameterError(
            f"{{{param}}} {source}: not a readable Keras model ({reason})."
        ) from None
    report = copy_matching_layers(model, other, source=str(source))
    if not report.loaded:
        raise ParameterError(
            f"{{{param}}} {source} shares no layer (name and weight shapes) with "
            "this model: nothing to start from. Check the head and backbone."
        )
    return report


def copy_matching_layers(
    model: keras.Model, other: keras.Model, source: str = ""
) -> WarmStartReport:
    """`load_matching_weights` between two models in memory."""
    ours, theirs = weighted_layers(model), weighted_layers(other)
    pairs = {path: path for path in ours if path in theirs}
    taken = set(pairs.values())
    by_name = _unique_names(theirs)
    for name, path in _unique_names(ours).items():
        if path not in pairs and name in by_name and by_name[name] not in taken:
            pairs[path] = by_name[name]
            taken.add(pairs[path])
    report = WarmStartReport(source=source)
    used = set()
    for path, layer in ours.items():
        if path not in pairs:
            report.skipped.append((path, "not in the source"))
            continue
        mine, src = layer.get_weights(), theirs[pairs[path]].get_weights()
        if [w.shape for w in mine] != [w.shape for w in src]:
            report.skipped.append((path, f"shapes differ: {_shapes(src)} in the "
                                         f"source, {_shapes(mine)} here"))  # fmt: skip
            continue
        layer.set_weights(src)
        report.loaded.append(path)
        used.add(pairs[path])
        report.loaded_parameters += sum(int(w.size) for w in src)
    report.unused = [p for p in theirs if p not in used]
    return report


def weighted_layers(model: keras.Model, prefix: str = "") -> dict[str, Any]:
    """``path -> layer`` for every layer holding weights, nested models opened
    (``backbone/conv1_conv``)."""
    out: dict[str, Any] = {}
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            out.update(weighted_layers(layer, prefix=f"{path}/"))
        elif layer.weights:
            out[path] = layer
    return out


def _unique_names(layers: dict[str, Any]) -> dict[str, str]:
    """Bare layer name -> path, for names that occur once."""
    counts = Counter(path.rsplit("/", 1)[-1] for path in layers)
    return {
        path.rsplit("/", 1)[-1]: path
        for path in layers
        if counts[path.rsplit("/", 1)[-1]] == 1
    }


def _shapes(weights) -> str:
    return ", ".join("x".join(map(str, w.shape)) for w in weights)
