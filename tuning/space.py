"""The search space: every hyperparameter a search may tune, by name, with its range
and its default, and how a chosen value lands in the `Config`.

A *space* is ``{name: spec}``; a spec is one of

- ``{"values": [...]}``: a choice (grid-friendly);
- ``{"min": a, "max": b, "step": s}`` or ``{"min": a, "max": b, "sampling": "log"}``:
  a range;
- ``{"fixed": v}``: pinned (``hp.Fixed``), recorded with the trial but not searched.

Hyperparameters a space leaves out are not declared at all: the trial keeps the base
config's value (the preset, ``--config`` and ``--set``). `NAMED_SPACES` ships the
default space and the seeds' searches; ``tune.space`` may also name a JSON/YAML file
holding a space, and ``tune.values`` / ``tune.fixed`` restrict or pin single names.

Each `Param` says which heads it applies to (the dense blocks only exist for gap/spp,
the GRUs only for cnn_rnn: declared inside ``hp.conditional_scope("head", ...)`` when
the head is searched) and which search stages (``--stage head`` keeps the backbone
frozen, so its learning rate and the unfreeze schedule are ``--stage full``'s).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_art.config import Config, TuneConfig
from keras_art.errors import ParameterError, UserError
from keras_art.registry import HEADS, STAGES, TUNE_STAGES
from keras_art.user_input import read_json_or_yaml

SPEC_KEYS = {"values", "min", "max", "step", "sampling", "fixed"}


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its name in KerasTuner, the config field it sets
    (``model.dense_units.0`` = item 0 of the list) and its default search range."""

    name: str
    key: str
    spec: dict
    heads: tuple[str, ...] = HEADS
    stages: tuple[str, ...] = TUNE_STAGES

    @property
    def default(self) -> Any:
        """The default config's value (seed 000's recipe), read from `Config`: a
        trial at its defaults trains what ``keras_art.train`` trains."""
        return _read(Config(), self.key)


_DENSE = ("gap", "spp")
_HEAD_ONLY = ("head",)
_FULL_ONLY = ("full",)

PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("head", "model.head", {"values": list(HEADS)}, HEADS, _HEAD_ONLY),
        # Seed 002's dense blocks: Dense -> Dropout -> BatchNorm, twice.
        Param(
            "dense1",
            "model.dense_units.0",
            {"min": 128, "max": 512, "step": 64},
            _DENSE,
            _HEAD_ONLY,
        ),
        Param(
            "dense2",
            "model.dense_units.1",
            {"min": 32, "max": 256, "step": 32},
            _DENSE,
            _HEAD_ONLY,
        ),
        Param(
            "dense_dropout",
            "model.dense_dropout",
            {"min": 0.2, "max": 0.6, "step": 0.1},
            _DENSE,
            _HEAD_ONLY,
        ),
        Param(
            "dense_batchnorm",
            "model.dense_batchnorm",
            {"values": [True, False]},
            _DENSE,
            _HEAD_ONLY,
        ),
        # Seed 000's CNN-RNN head.
        Param(
            "proj_dim",
            "model.proj_dim",
            {"min": 128, "max": 512, "step": 64},
            ("cnn_rnn",),
            _HEAD_ONLY,
        ),
        Param(
            "gru_units",
            "model.gru_units",
            {"min": 64, "max": 512, "step": 64},
            ("cnn_rnn",),
            _HEAD_ONLY,
        ),
        Param(
            "dropout",
            "model.dropout",
            {"min": 0.1, "max": 0.5, "step": 0.1},
            ("cnn_rnn",),
            _HEAD_ONLY,
        ),
        # Optimisation: both stages.
        Param(
            "lr_head",
            "train.lr_head",
            {"min": 1e-4, "max": 3e-3, "sampling": "log"},
        ),
        Param(
            "label_smoothing",
            "train.label_smoothing",
            {"min": 0.0, "max": 0.1, "step": 0.01},
        ),
        Param(
            "weight_decay",
            "train.weight_decay",
            {"min": 1e-3, "max": 0.1, "sampling": "log"},
        ),
        # The fine-tuning schedule: only when the backbone learns.
        Param(
            "lr_backbone",
            "train.lr_backbone",
            {"min": 1e-5, "max": 5e-4, "sampling": "log"},
            stages=_FULL_ONLY,
        ),
        Param(
            "unfreeze_epoch",
            "train.unfreeze_epoch",
            {"min": 1, "max": 5, "step": 1},
            stages=_FULL_ONLY,
        ),
        Param(
            "unfreeze_from",
            "train.unfreeze_from",
            {"values": list(STAGES)},
            stages=_FULL_ONLY,
        ),
    )
}

# Seed 002's grid: "128:64:512 and 32:32:256 ... 42 combinations per baseline model".
# Read as Python ranges (end excluded), 6 x 7 = 42, which is the count the seed gives
# (its best models all lie inside: 384/128, 448/192, 320/64 ...). Dropout 0.5 and
# BatchNorm as the seed fixed them; use it with --preset seed002 for its recipe.
SEED002 = {
    "head": {"values": ["gap", "spp"]},
    "dense1": {"values": list(range(128, 512, 64))},
    "dense2": {"values": list(range(32, 256, 32))},
    "dense_dropout": {"fixed": 0.5},
    "dense_batchnorm": {"fixed": True},
}

# Seed 003's sweep of dropout x learning rate over its frozen ResNet-50 + Linear(256)
# head (the seed tried 5 of these 9 pairs: 0.3/1e-5, 0.4/1e-4, 0.4/1e-3, 0.5/1e-4,
# 0.5/1e-3). Use it with --preset seed003 (one 256-unit block, no BatchNorm).
SEED003 = {
    "dense_dropout": {"values": [0.3, 0.4, 0.5]},
    "lr_head": {"values": [1e-5, 1e-4, 1e-3]},
}

# "default": every hyperparameter of the stage, with the ranges above.
NAMED_SPACES: dict[str, dict[str, dict]] = {
    "default": {},
    "seed002": SEED002,
    "seed003": SEED003,
}


def resolve_space(tune: TuneConfig, base: Config) -> dict[str, dict]:
    """The space a search declares: ``tune.space`` (a name or a file), then
    ``tune.values`` and ``tune.fixed``, checked against the stage and the heads."""
    stage = tune.stage
    if tune.space == "default":
        space = _default_space(stage)
        explicit: set[str] = set()
    else:
        space = copy.deepcopy(_named_or_file(tune.space))
        explicit = set(space)
    for name, values in tune.values.items():
        if not isinstance(values, list) or not values:
            raise UserError(
                f"tune.values.{name}: give a non-empty list, e.g. "
                f"tune.values.{name}=[0.3, 0.5]."
            )
        space[name] = {"values": values}
        explicit.add(name)
    for name, value in tune.fixed.items():
        space[name] = {"fixed": value}
        explicit.add(name)
    for name, spec in space.items():
        _check_spec(name, spec, stage)
    space = _drop_other_heads(space, base, explicit)
    _fit_unfreeze_to_trial(space, tune.epochs)
    if not any("fixed" not in spec for spec in space.values()):
        raise ParameterError(
            "The search space is empty: every hyperparameter is fixed or left out. "
            "Free one with tune.values.NAME=[...] or use {tune.space} default."
        )
    return space


def default_of(name: str) -> Any:
    """The default value of hyperparameter ``name`` (what ``hp.Fixed`` pins in
    tests, and where Bayesian/hyperband searches start)."""
    return PARAMS[name].default


def declare(hp, space: dict[str, dict]) -> dict[str, Any]:
    """Declare ``space`` on a ``keras_tuner.HyperParameters``; return the active
    values (``{name: value}``), head-specific names only for the chosen head."""
    values: dict[str, Any] = {}
    if "head" in space:
        values["head"] = _declare_one(hp, "head", space["head"])
    for name, spec in space.items():
        if name == "head":
            continue
        heads = PARAMS[name].heads
        if "head" in space and set(heads) != set(HEADS):
            with hp.conditional_scope("head", list(heads)):
                value = _declare_one(hp, name, spec)
            if values["head"] in heads:
                values[name] = value
        else:
            values[name] = _declare_one(hp, name, spec)
    return values


def active_values(hp, space: dict[str, dict]) -> dict[str, Any]:
    """The values a built trial uses, read back from its ``HyperParameters``."""
    values = {}
    for name in space:
        if name in hp.values and hp.is_active(name):
            values[name] = tidy(hp.get(name))
    return values


def tidy(value: Any) -> Any:
    """0.30000000000000004 (a stepped float range) -> 0.3."""
    return float(f"{value:.12g}") if isinstance(value, float) else value


def apply_values(cfg: Config, values: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with each hyperparameter's value set where it belongs."""
    cfg = copy.deepcopy(cfg)
    for name, value in values.items():
        _assign(cfg, PARAMS[name].key, value)
    return cfg


# ----------------------------------------------------------------------- helpers
def _default_space(stage: str) -> dict[str, dict]:
    return {
        name: copy.deepcopy(p.spec) for name, p in PARAMS.items() if stage in p.stages
    }


def _named_or_file(space: str) -> dict[str, dict]:
    if space in NAMED_SPACES:
        return NAMED_SPACES[space]
    path = Path(space).expanduser()
    if not path.is_file():
        raise ParameterError(
            f"{{tune.space}} {space}: neither a named space "
            f"({', '.join(NAMED_SPACES)}) nor a file. Pass one of those, or a "
            f"JSON/YAML file of "
            f'{{name: {{"values": [...]}} | {{"min", "max", "step"}} | {{"fixed"}}}}.'
        )
    raw = read_json_or_yaml(path, "tune.space")
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ParameterError(
            f"{{tune.space}} {space}: expected a mapping of hyperparameter names to "
            f'specs, e.g. {{"dense1": {{"values": [256, 384]}}}}.'
        )
    return raw


def _check_spec(name: str, spec: dict, stage: str) -> None:
    if name not in PARAMS:
        raise UserError(f"Unknown hyperparameter {name!r}. Known: {', '.join(PARAMS)}.")
    unknown = set(spec) - SPEC_KEYS
    kinds = [k for k in ("values", "fixed", "min") if k in spec]
    if unknown or len(kinds) != 1 or ("min" in spec) != ("max" in spec):
        raise UserError(
            f"Hyperparameter {name}: spec {spec} must be one of "
            f'{{"values": [...]}}, {{"min": a, "max": b, "step": s}}, '
            f'{{"min": a, "max": b, "sampling": "log"}} or {{"fixed": v}}.'
        )
    if stage not in PARAMS[name].stages:
        raise ParameterError(
            f"Hyperparameter {name} tunes the fine-tuning, which {{tune.stage}} "
            f"{stage} does not run. Use {{tune.stage}} full, or leave {name} out."
        )


def _fit_unfreeze_to_trial(space: dict, epochs: int) -> None:
    """An unfreeze epoch a trial never reaches tunes nothing: the range stops at
    the trial's last epoch (``tune.epochs - 1``, 0-based)."""
    spec = space.get("unfreeze_epoch")
    if spec is None or "min" not in spec:
        return
    last = epochs - 1
    if last < 1:
        raise ParameterError(
            f"{{tune.stage}} full with {{tune.epochs}} {epochs}: a trial needs at "
            f"least 2 epochs to unfreeze the backbone. Pass {{tune.epochs}} 2 or more."
        )
    spec["max"] = min(spec["max"], last)
    spec["min"] = min(spec["min"], spec["max"])


def _drop_other_heads(space: dict, base: Config, explicit: set[str]) -> dict:
    """Leave out names that no searched head uses; a name the user asked for by
    name that can never apply is an error."""
    head_spec = space.get("head")
    if head_spec is None:
        heads = {base.model.head}
    else:
        heads = set(head_spec.get("values", [head_spec.get("fixed")]))
        bad = heads - set(HEADS)
        if bad:
            raise UserError(
                f"Hyperparameter head: unknown head(s) {sorted(bad)}. "
                f"Choose from {', '.join(HEADS)}."
            )
    kept = {}
    for name, spec in space.items():
        if heads & set(PARAMS[name].heads):
            kept[name] = spec
        elif name in explicit:
            raise UserError(
                f"Hyperparameter {name} applies to the {'/'.join(PARAMS[name].heads)} "
                f"head(s) only, and this search trains {'/'.join(sorted(heads))}. "
                f"Leave it out or search the head too."
            )
    return kept


def _declare_one(hp, name: str, spec: dict):
    default = PARAMS[name].default
    if "fixed" in spec:
        return hp.Fixed(name, spec["fixed"])
    if "values" in spec:
        values = list(spec["values"])
        if len(values) == 2 and all(isinstance(v, bool) for v in values):
            # hp.Choice would store True/False as 1/0
            return hp.Boolean(name, default=bool(default))
        return hp.Choice(
            name, values, default=default if default in values else values[0]
        )
    low, high = spec["min"], spec["max"]
    sampling = spec.get("sampling", "linear")
    if isinstance(default, int) and not isinstance(default, bool):
        return hp.Int(
            name,
            int(low),
            int(high),
            step=int(spec.get("step", 1)),
            sampling=sampling,
            default=min(max(default, int(low)), int(high)),
        )
    return hp.Float(
        name,
        float(low),
        float(high),
        step=spec.get("step"),
        sampling=sampling,
        default=min(max(float(default), float(low)), float(high)),
    )


def _read(cfg: Config, key: str) -> Any:
    """The value at dotted ``key`` (``model.dense_units.0``: item 0 of the list)."""
    target: Any = cfg
    for part in key.split("."):
        target = target[int(part)] if part.isdigit() else getattr(target, part)
    return target


def _assign(cfg: Config, key: str, value: Any) -> None:
    *path, leaf = key.split(".")
    target: Any = cfg
    if leaf.isdigit():
        *path, field_name = path
        for part in path:
            target = getattr(target, part)
        items = list(getattr(target, field_name))
        index = int(leaf)
        while len(items) <= index:
            items.append(items[-1] if items else value)
        items[index] = value
        setattr(target, field_name, items)
        return
    for part in path:
        target = getattr(target, part)
    setattr(target, leaf, value)
