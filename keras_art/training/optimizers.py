"""AdamW with per-group learning rates that really apply (seed 000's 8e-4 / 1.5e-4).

Adam is invariant to gradient scale, so scaling a group's gradients does not change its
step size. `GroupAdamW` therefore runs one stock ``keras.optimizers.AdamW`` per
variable group (``head``, ``backbone`` and each stage named in ``train.lr_groups``),
each applied only to its own variables. That gives, with public Keras API only:

- a real learning rate per group, and a decoupled weight decay scaled by it (AdamW
  multiplies the decay by its own learning rate);
- bias correction per group: a group's optimizer counts only the steps it applied,
  so a backbone group that starts learning at the unfreeze gets properly corrected
  first steps instead of steps several times too large;
- one global-norm clip over ALL groups' gradients, taken on the gradients summed
  over replicas (the caller sums them once; see `GroupAdamW.apply`).

Every group's schedule is driven by one shared step counter (`GroupAdamW.iterations`),
not by its optimizer's own counter, so the groups stay in phase.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from typing import Any

import keras
import tensorflow as tf

from keras_art.errors import UserError
from keras_art.models.walk import all_sublayers
from keras_art.stage_plan import resolve_stages, run_learning_rates

HEAD = "head"
BACKBONE = "backbone"


class GroupAdamW:
    """One ``keras.optimizers.AdamW`` per variable group, stepped together.

    Create and `build` it inside ``strategy.scope()`` (the optimizers' slot variables
    and the shared step counter are created there).

    Args:
        learning_rates: group name -> a float or a
            ``keras.optimizers.schedules.LearningRateSchedule``; a schedule is
            evaluated at the shared step (`iterations`), not at the group's own
            counter. ``"head"`` must be present.
        weight_decay: AdamW's decoupled weight decay (scaled by each group's LR).
        global_clipnorm: clip the gradients of all groups together to this global
            norm (None or 0 = no clipping).

    Example:
        >>> opt = GroupAdamW({"head": 8e-4, "backbone": 1.5e-4}, weight_decay=0.05,
        ...                  global_clipnorm=1.0)
        >>> opt.build({"head": head_vars, "backbone": backbone_vars})
        >>> opt.apply(grads, variables)  # any subset of the built variables
    """

    def __init__(
        self,
        learning_rates: Mapping[str, Any],
        *,
        weight_decay: float = 0.0,
        global_clipnorm: float | None = None,
    ):
        if HEAD not in learning_rates:
            raise ValueError(
                f"learning_rates needs a {HEAD!r} group. Received: "
                f"{sorted(learning_rates)}"
            )
        self.global_clipnorm = float(global_clipnorm) if global_clipnorm else None
        self._step = keras.Variable(
            0,
            dtype="int64",
            trainable=False,
            name="group_step",
            # Incremented inside `strategy.run`; every replica adds the same 1.
            aggregation="only_first_replica",
        )
        self.optimizers: dict[str, keras.optimizers.AdamW] = {
            group: keras.optimizers.AdamW(
                learning_rate=self._at_shared_step(lr),
                weight_decay=float(weight_decay or 0.0),
                name=f"adamw_{group}",
            )
            for group, lr in learning_rates.items()
        }
        self._scheduled = {
            group
            for group, lr in learning_rates.items()
            if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule)
        }
        self._group_of: dict[int, str] = {}
        self.built = False

    def _at_shared_step(self, lr):
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            # A no-argument callable is Keras's public hook for "LR from elsewhere".
            return lambda: lr(self._step)
        return float(lr)

    # ----------------------------------------------------------------- build
    def build(self, groups: Mapping[str, list]) -> None:
        """Build every group's optimizer over its variables (all that may ever
        train, so the unfreeze adds none). Groups without variables get none."""
        unknown = set(groups) - set(self.optimizers)
        if unknown:
            raise ValueError(
                f"Variable groups {sorted(unknown)} have no learning rate. Known "
                f"groups: {sorted(self.optimizers)}"
            )
        for group, opt in self.optimizers.items():
            variables = list(groups.get(group, []))
            opt.build(variables)
            for v in variables:
                if id(v) in self._group_of:
                    raise ValueError(f"Variable {v.path} is in two groups.")
                self._group_of[id(v)] = group
        self.built = True

    def covers(self, variable) -> bool:
        """True when ``variable`` belongs to one of the groups."""
        return id(variable) in self._group_of

    def group_of(self, variable) -> str:
        return self._group_of[id(variable)]

    # ----------------------------------------------------------------- state
    @property
    def iterations(self):
        """Steps applied so far (drives every group's schedule)."""
        return self._step

    @property
    def variables(self) -> list:
        """Every state variable, in a fixed order (for checkpoints)."""
        out = [self._step]
        for opt in self.optimizers.values():
            out += opt.variables
        return out

    def learning_rates(self) -> dict[str, float]:
        """Current learning rate of every group: ``{"head": 8e-4, ...}``."""
        return {
            group: float(keras.ops.convert_to_numpy(opt.learning_rate))
            for group, opt in self.optimizers.items()
        }

    def scale_learning_rates(self, factor: float) -> None:
        """Multiply every group's (constant) learning rate by ``factor``."""
        if self._scheduled:
            raise ValueError(
                "Cannot rescale scheduled learning rates (groups "
                f"{sorted(self._scheduled)}); the plateau callback needs "
                "train.schedule='plateau'."
            )
        for opt in self.optimizers.values():
            current = float(keras.ops.convert_to_numpy(opt.learning_rate))
            opt.learning_rate = current * factor

    def set_learning_rates(self, values: Mapping[str, Any]) -> None:
        """Give groups new learning rates (a training stage starts): a float for
        a constant group, a ``LearningRateSchedule`` for a scheduled one (evaluated
        at the shared step). A traced step reads a float's new value; a new
        schedule needs the step traced again."""
        for group, lr in values.items():
            scheduled = isinstance(lr, keras.optimizers.schedules.LearningRateSchedule)
            if scheduled != (group in self._scheduled):
                raise ValueError(
                    f"Group {group!r} was built with a "
                    f"{'schedule' if group in self._scheduled else 'constant'} "
                    f"learning rate and cannot switch. Received: {lr!r}"
                )
            opt = self.optimizers[group]
            opt.learning_rate = self._at_shared_step(lr) if scheduled else float(lr)

    # ----------------------------------------------------------------- update
    def apply(self, grads: list, variables: list) -> None:
        """One step for ``variables`` (a subset of the built ones).

        Call it in replica context (inside ``strategy.run``) with ``grads``
        already summed over replicas, so every replica holds the same values.
        Clips their global norm, then applies each group's optimizer to its own
        variables; a group with no variable here takes no step (its bias
        correction and counter wait for its first real step).
        """
        grads = list(grads)
        if self.global_clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, self.global_clipnorm)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            # A stock optimizer applied in replica context always sums the
            # gradients over replicas itself, and cannot be applied in
            # cross-replica context (it calls merge_call on the missing replica
            # context). The gradients here are already summed: only the first
            # replica passes them on, the others pass zeros, so the optimizer's
            # own sum reproduces them exactly.
            first = tf.equal(ctx.replica_id_in_sync_group, 0)
            grads = [g * tf.cast(first, g.dtype) for g in grads]
        by_group: dict[str, tuple[list, list]] = {}
        for g, v in zip(grads, variables, strict=True):
            pair = by_group.setdefault(self.group_of(v), ([], []))
            pair[0].append(g)
            pair[1].append(v)
        for group, opt in self.optimizers.items():
            if group in by_group:
                opt.apply(*by_group[group])
        self._step.assign_add(1)


# --------------------------------------------------------------------- groups
def group_learning_rates(train_cfg) -> dict[str, float]:
    """Peak LR per group: ``{"head": lr_head, "backbone": lr_backbone, stage: lr}``."""
    out = run_learning_rates(train_cfg)
    if out[HEAD] <= 0:
        raise UserError(f"train.lr_head must be > 0. Received: {out[HEAD]}")
    return out


def group_multipliers(train_cfg) -> dict[str, float]:
    """``{"head": 1, "backbone": lr_backbone/lr_head, <stage>: lr/lr_head, ...}``."""
    lrs = group_learning_rates(train_cfg)
    return {group: lr / lrs[HEAD] for group, lr in lrs.items()}


def _is_batchnorm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


@contextmanager
def _trainable_flags_kept(layer):
    saved = [(sub, sub.trainable) for sub in all_sublayers(layer, include_self=True)]
    try:
        yield
    finally:
        # Parents first: setting a parent's flag resets its children's.
        for sub, flag in saved:
            sub.trainable = flag


def _learnable_weights(layer, train_bn: bool) -> list:
    """The weights ``layer`` trains once unfrozen, whatever its flags are now.

    A frozen layer lists no trainable weights, so the layer is opened briefly
    (its flags are put back). BatchNormalization weights, nested ones included,
    count only with ``train_bn``.
    """
    with _trainable_flags_kept(layer):
        layer.trainable = True
        weights = list(layer.trainable_weights)
    if train_bn:
        return weights
    bn_ids = {
        id(w)
        for sub in all_sublayers(layer, include_self=True)
        if _is_batchnorm(sub)
        for w in sub.weights
    }
    return [w for w in weights if id(w) not in bn_ids]


def variable_groups(
    model,
    train_cfg,
    stages: Mapping[str, list],
    *,
    backbone_name: str = "backbone",
) -> tuple[dict[str, str], list]:
    """Group names for the backbone's variables and the variables that may ever train.

    Args:
        model: the classifier with a nested backbone model ``backbone_name``.
        train_cfg: a `keras_art.config.TrainConfig`; its stages
            (`keras_art.stage_plan.resolve_stages`: what each unfreezes, with or
            without BatchNorm) and ``lr_groups`` are read.
        stages: ``keras_art.models.backbones.backbone_stages(backbone, name)``.

    Returns ``(variable_groups, candidates)``: ``variable_groups`` maps each learnable
    backbone weight's path to ``"backbone"`` or, when its stage is a key of
    ``train_cfg.lr_groups``, to that stage name; ``candidates`` lists every variable
    the optimizer must be built over: all trainable head variables plus the backbone
    weights that some training stage lets learn (BatchNormalization only where that
    stage's ``train_bn``). Works on a frozen backbone too.
    """
    backbone = model.get_layer(backbone_name)
    open_stages: set[str] = set()
    bn_stages: set[str] = set()  # BN learns only where a stage's train_bn says so
    for training_stage in resolve_stages(train_cfg):
        unknown = set(training_stage.backbone_stages) - set(stages)
        if unknown:
            raise UserError(
                f"Stage {training_stage.name!r} unfreezes {sorted(unknown)}, which "
                f"the backbone does not have. Choose from: {', '.join(stages)}."
            )
        open_stages.update(training_stage.backbone_stages)
        if training_stage.train_bn:
            bn_stages.update(training_stage.backbone_stages)
    lr_groups = dict(getattr(train_cfg, "lr_groups", {}) or {})
    groups: dict[str, str] = {}
    candidates: list = []
    for stage, layers in stages.items():
        for layer in layers:
            for w in _learnable_weights(layer, stage in bn_stages):
                groups[w.path] = stage if stage in lr_groups else BACKBONE
                if stage in open_stages:
                    candidates.append(w)
    backbone_ids = {id(w) for w in backbone.weights}
    head_vars = [w for w in model.weights if w.trainable and id(w) not in backbone_ids]
    return groups, _unique(head_vars + candidates)


def _unique(variables: Iterable) -> list:
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def make_optimizer(
    model,
    train_cfg,
    schedule: Callable[[float], Any],
    *,
    stages: Mapping[str, list],
    backbone_name: str = "backbone",
) -> tuple[GroupAdamW, list]:
    """Build `GroupAdamW` for ``train_cfg`` over every variable that may ever train.

    ``schedule(peak_lr)`` gives a group's learning rate (a float or a schedule) from
    its peak, e.g. ``lambda lr: make_schedule(cfg, steps, lr)``. The optimizer covers
    head + the backbone stages that unfreeze, so the unfreeze adds no variables and
    keeps its state. Call it inside ``strategy.scope()``. Returns
    ``(optimizer, candidate_variables)``.
    """
    groups, candidates = variable_groups(
        model, train_cfg, stages, backbone_name=backbone_name
    )
    backbone_ids = {id(w) for w in model.get_layer(backbone_name).weights}
    lrs = group_learning_rates(train_cfg)
    opt = GroupAdamW(
        {group: schedule(lr) for group, lr in lrs.items()},
        weight_decay=float(train_cfg.weight_decay),
        global_clipnorm=float(train_cfg.clipnorm or 0.0) or None,
    )
    by_group: dict[str, list] = {group: [] for group in lrs}
    for v in candidates:
        by_group[groups[v.path] if id(v) in backbone_ids else HEAD].append(v)
    opt.build(by_group)
    return opt, candidates
