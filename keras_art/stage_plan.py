"""Training stages as data: the schedule a run trains through, resolved once.

A run trains through a list of stages (``train.stages``, each a `StageConfig`): what
trains (the head alone, or the head and the backbone from one of its stages on, with
or without BatchNorm), the learning rate of each variable group, augmentation
overrides, and the stage's own early stopping and plateau. Early stopping ends a
stage, not the run: the next stage starts with fresh counters, and only the last
stage's early stopping ends the run.

With no stages listed, ``train.unfreeze_epoch`` / ``train.unfreeze_from`` are the
two-stage shorthand: ``frozen`` (the head trains) until ``unfreeze_epoch``, then
``unfrozen`` (the backbone learns from ``unfreeze_from`` on) to ``train.epochs``.

`resolve_stages` is the one reading of a config's schedule: validation, the
optimizer's variable groups, the stage callback, the data pipeline and history.csv
all use it. Pure Python, so the config validates against it cheaply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from keras_art.errors import UserError
from keras_art.registry import STAGE_TRAINS, STAGES

HEAD, BACKBONE = "head", "backbone"
# A stage 1 that ends when the monitored metric stalls (train.unfreeze_on_plateau)
# ends after this many epochs without a gain, as the unfreeze always has.
UNFREEZE_PLATEAU_PATIENCE = 2


@dataclass
class StageConfig:
    """One training stage (an entry of ``train.stages``).

    ``None`` takes the run's value (``train.<same key>``). Learning rates left
    unset keep the current ones (a plateau's reductions included).
    """

    name: str = ""  # default: stage<N>; shown in the progress output and history
    epochs: int = 1  # at most; the stage's early stopping may end it sooner
    trains: str = "head"  # "head" (backbone frozen) or "all" (see unfreeze_from)
    unfreeze_from: str | None = None  # first backbone stage that learns ("all")
    lr_head: float | None = None
    lr_backbone: float | None = None
    lr_groups: dict[str, float] = field(default_factory=dict)  # of train.lr_groups
    # augment.<key> -> value while this stage trains (evaluation keeps augment.*).
    augment: dict[str, Any] = field(default_factory=dict)
    early_stopping_patience: int | None = None  # 0 = off
    plateau_patience: int | None = None  # 0 = off; needs train.schedule=plateau
    plateau_factor: float | None = None
    train_bn: bool | None = None  # BatchNorm of the unfrozen backbone learns


@dataclass(frozen=True)
class Stage:
    """A resolved stage: every value filled in (`resolve_stages`).

    ``index`` counts from 1 (as the progress output and history.csv show it);
    ``learning_rates`` are the peak learning rates in effect for every group;
    ``sets_learning_rates`` the groups whose rate the stage sets when it starts.
    """

    index: int
    name: str
    epochs: int
    trains: str
    unfreeze_from: str | None
    learning_rates: dict[str, float]
    sets_learning_rates: tuple[str, ...]
    augment: dict[str, Any]
    early_stopping_patience: int
    plateau_patience: int
    plateau_factor: float
    train_bn: bool

    @property
    def backbone_stages(self) -> tuple[str, ...]:
        """The backbone stages that learn (none while only the head trains)."""
        if self.unfreeze_from is None:
            return ()
        return STAGES[STAGES.index(self.unfreeze_from) :]

    @property
    def trainable(self) -> str:
        """What learns, in one word: ``head`` or ``head+conv3-conv5`` (``+bn``)."""
        open_stages = self.backbone_stages
        if not open_stages:
            return HEAD
        span = open_stages[0]
        if len(open_stages) > 1:
            span += f"-{open_stages[-1]}"
        return f"{HEAD}+{span}" + ("+bn" if self.train_bn else "")

    @property
    def augment_label(self) -> str:
        """The augmentation overrides, compact: ``hflip=true zoom=[0.5,1.5]``."""
        return " ".join(
            f"{k}={json.dumps(v, separators=(',', ':'))}"
            for k, v in self.augment.items()
        )

    def describe(self, learning_rates: dict[str, float] | None = None) -> str:
        """One line for the progress output: what trains, the LRs (``learning_rates``
        when given: the ones in effect), the rest."""
        rates = self.learning_rates if learning_rates is None else learning_rates
        lrs = " ".join(f"{g} {lr:.3g}" for g, lr in rates.items())
        parts = [f"trains {self.trainable}", f"lr {lrs}"]
        if self.augment:
            parts.append(f"augment {self.augment_label}")
        parts.append(f"early stop {self.early_stopping_patience or 'off'}")
        parts.append(f"plateau {self.plateau_patience or 'off'}")
        return "; ".join(parts)


def run_learning_rates(train) -> dict[str, float]:
    """The run's peak learning rate per variable group: ``head``, ``backbone`` and
    each backbone stage of ``train.lr_groups``."""
    out = {HEAD: float(train.lr_head), BACKBONE: float(train.lr_backbone)}
    for stage, lr in (getattr(train, "lr_groups", None) or {}).items():
        out[str(stage)] = float(lr)
    return out


def resolve_stages(train) -> tuple[Stage, ...]:
    """The stages ``train`` (a `keras_art.config.TrainConfig`) trains through.

    ``train.stages`` when given, else the two-stage shorthand (module doc). Reads
    ``train.train_bn`` as it is now (a run resolves None from its weights first).
    """
    if getattr(train, "stages", None):
        return _listed_stages(train)
    return _shorthand_stages(train)


def _plateau_default(train) -> int:
    return int(train.plateau_patience) if train.schedule == "plateau" else 0


def _shorthand_stages(train) -> tuple[Stage, ...]:
    common = {
        "learning_rates": run_learning_rates(train),
        "sets_learning_rates": (),
        "augment": {},
        "plateau_patience": _plateau_default(train),
        "plateau_factor": float(train.plateau_factor),
        "train_bn": bool(train.train_bn),
    }
    patience = int(train.early_stopping_patience)
    if train.unfreeze_epoch < 0:
        return (Stage(1, "frozen", train.epochs, HEAD, None, **common,
                      early_stopping_patience=patience),)  # fmt: skip
    first = patience
    if train.unfreeze_on_plateau:
        first = min(p for p in (patience, UNFREEZE_PLATEAU_PATIENCE) if p)
    # Stage 2's length is an upper bound: the run ends at train.epochs.
    return (
        Stage(1, "frozen", train.unfreeze_epoch, HEAD, None, **common,
              early_stopping_patience=first),
        Stage(2, "unfrozen", train.epochs, "all", train.unfreeze_from, **common,
              early_stopping_patience=patience),
    )  # fmt: skip


def _pick(value, default):
    return default if value is None else value


def _listed_stages(train) -> tuple[Stage, ...]:
    learning_rates = run_learning_rates(train)
    plateau = _plateau_default(train)
    out = []
    for index, s in enumerate(train.stages, start=1):
        explicit = {HEAD: s.lr_head, BACKBONE: s.lr_backbone, **s.lr_groups}
        explicit = {g: float(lr) for g, lr in explicit.items() if lr is not None}
        learning_rates = {**learning_rates, **explicit}
        unfreeze_from = _pick(s.unfreeze_from, train.unfreeze_from)
        out.append(
            Stage(
                index=index,
                name=s.name or f"stage{index}",
                epochs=int(s.epochs),
                trains=s.trains,
                unfreeze_from=unfreeze_from if s.trains == "all" else None,
                learning_rates=dict(learning_rates),
                sets_learning_rates=tuple(explicit),
                augment=dict(s.augment),
                early_stopping_patience=int(
                    _pick(s.early_stopping_patience, train.early_stopping_patience)
                ),
                plateau_patience=int(_pick(s.plateau_patience, plateau)),
                plateau_factor=float(_pick(s.plateau_factor, train.plateau_factor)),
                train_bn=bool(_pick(s.train_bn, train.train_bn)),
            )
        )
    return tuple(out)


def run_epochs(train) -> int:
    """How many epochs the run trains at most: ``train.epochs``, or fewer when the
    stages add up to fewer."""
    return min(int(train.epochs), sum(s.epochs for s in resolve_stages(train)))


def learning_backbone_stages(train) -> set[str]:
    """Every backbone stage that learns in some stage of the run."""
    return {b for s in resolve_stages(train) for b in s.backbone_stages}


def check_stages(train) -> None:
    """Refuse a ``train.stages`` list that cannot run, naming the config key
    (``train.stages.<index from 0>.<key>``). Augmentation keys are the config's
    to check (`keras_art.config.augment_with`)."""
    if not train.stages:
        return
    if train.unfreeze_on_plateau:
        raise UserError(
            "train.unfreeze_on_plateau is the two-stage shorthand's; with "
            "train.stages, give a stage early_stopping_patience (a stalled stage "
            "ends and the next one starts)."
        )
    if not any(s.epochs > 0 for s in train.stages):
        raise UserError(
            "train.stages: every stage has 0 epochs. Give one at least 1 epoch."
        )
    names = [s.name or f"stage{i}" for i, s in enumerate(train.stages, start=1)]
    for i, (stage, name) in enumerate(zip(train.stages, names, strict=True)):
        _check_stage(train, stage, f"train.stages.{i}")
        if name.isdigit() or names.count(name) > 1:
            raise UserError(
                f"train.stages.{i}.name {name!r}: stage names must be unique and "
                "not a number (overrides address a stage by index or by name)."
            )


def _check_stage(train, stage: StageConfig, key: str) -> None:
    if stage.epochs < 0:
        raise UserError(
            f"{key}.epochs must be at least 0 (0 skips the stage). Received: "
            f"{stage.epochs}"
        )
    if stage.trains not in STAGE_TRAINS:
        raise UserError(
            f"Unknown {key}.trains {stage.trains!r}. Choose one of: "
            f"{', '.join(STAGE_TRAINS)}."
        )
    if stage.unfreeze_from is not None:
        if stage.unfreeze_from not in STAGES:
            raise UserError(
                f"Unknown {key}.unfreeze_from {stage.unfreeze_from!r}. Choose one "
                f"of: {', '.join(STAGES)}."
            )
        if stage.trains != "all":
            raise UserError(
                f"{key}.unfreeze_from is set but {key}.trains is "
                f"{stage.trains!r}: set {key}.trains=all to let the backbone learn."
            )
    _check_stage_numbers(train, stage, key)


def _check_stage_numbers(train, stage: StageConfig, key: str) -> None:
    if stage.lr_head is not None and stage.lr_head <= 0:
        raise UserError(f"{key}.lr_head must be > 0. Received: {stage.lr_head}")
    rates = {"lr_backbone": stage.lr_backbone, **stage.lr_groups}
    for name, lr in rates.items():
        if lr is not None and lr < 0:
            raise UserError(f"{key}.{name} must be >= 0. Received: {lr}")
    unknown = sorted(set(stage.lr_groups) - set(train.lr_groups))
    if unknown:
        raise UserError(
            f"{key}.lr_groups names {', '.join(unknown)}, which train.lr_groups "
            "does not make a group: add it there (the run's rate), then set the "
            "stage's."
        )
    for name in ("early_stopping_patience", "plateau_patience"):
        value = getattr(stage, name)
        if value is not None and value < 0:
            raise UserError(f"{key}.{name} must be >= 0. Received: {value}")
    if stage.plateau_patience and train.schedule != "plateau":
        raise UserError(
            f"{key}.plateau_patience needs train.schedule=plateau (it is "
            f"{train.schedule!r})."
        )
    factor = stage.plateau_factor
    if factor is not None and not 0.0 < factor < 1.0:
        raise UserError(f"{key}.plateau_factor must be in (0, 1). Received: {factor}")
