"""AdamW with per-group learning rates that really apply (seed 000's 8e-4 / 1.5e-4).

Adam is invariant to gradient scale, so scaling a group's gradients does not change its
step size. `GroupAdamW` instead multiplies the learning rate (and the decoupled weight
decay, which AdamW scales by the learning rate) per variable group. The schedule gives
the head's learning rate; every other group runs at ``multiplier * schedule(step)``.

Two further differences from ``keras.optimizers.AdamW``, both for staged fine-tuning
under ``tf.distribute``:

- Bias correction counts each variable's own updates (as PyTorch does), so a
  backbone variable that starts learning at epoch 3 gets properly corrected first
  steps instead of steps several times too large.
- ``global_clipnorm`` clips the summed (all-reduced) gradients, not each replica's part.
  A caller that all-reduces gradients itself (the `Trainer`) sets
  ``gradients_reduced_by_caller = True`` so they are not summed twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import keras
from keras import ops

HEAD = "head"
BACKBONE = "backbone"
_RESNET_STAGE = re.compile(r"^(conv\d)_")


@keras.saving.register_keras_serializable(package="keras_art")
class GroupAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate and weight decay are scaled per variable group.

    Args:
        group_multipliers: group name -> factor on the scheduled learning rate,
            e.g. ``{"head": 1.0, "backbone": 0.1875}``. Missing groups use 1.0.
        variable_groups: variable path (``layer_name/weight_name``) -> group name.
            Variables not listed belong to ``"head"``.
        **kwargs: everything ``keras.optimizers.AdamW`` takes.

    Example:
        >>> opt = GroupAdamW(
        ...     learning_rate=8e-4, weight_decay=0.05, global_clipnorm=1.0,
        ...     group_multipliers={"head": 1.0, "backbone": 1.5e-4 / 8e-4},
        ...     variable_groups={"conv5_block1_1_conv/kernel": "backbone"})
    """

    def __init__(
        self,
        group_multipliers: dict[str, float] | None = None,
        variable_groups: dict[str, str] | None = None,
        global_clipnorm: float | None = None,
        **kwargs: Any,
    ):
        if kwargs.get("weight_decay") is None:
            kwargs["weight_decay"] = 0.0  # AdamW insists on a float
        super().__init__(global_clipnorm=None, **kwargs)
        self.group_multipliers = {
            str(k): float(v) for k, v in (group_multipliers or {}).items()
        }
        self.variable_groups = {
            str(k): str(v) for k, v in (variable_groups or {}).items()
        }
        # Applied after the all-reduce in `_backend_update_step`, not per replica.
        self.reduced_global_clipnorm = global_clipnorm
        self.gradients_reduced_by_caller = False
        self._multipliers: list[float] = []
        self._local_steps: list[Any] = []

    # ----------------------------------------------------------------- groups
    def group_of(self, variable) -> str:
        """The group a model variable belongs to (``"head"`` unless listed)."""
        return self.variable_groups.get(_path(variable), HEAD)

    def multiplier_of(self, variable) -> float:
        return self.group_multipliers.get(self.group_of(variable), 1.0)

    def group_learning_rates(self) -> dict[str, float]:
        """Current learning rate of every group: ``{"head": 8e-4, ...}``."""
        base = float(ops.convert_to_numpy(self.learning_rate))
        groups = {HEAD: 1.0, **self.group_multipliers}
        return {name: base * mult for name, mult in groups.items()}

    # ----------------------------------------------------------------- build
    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._multipliers = [self.multiplier_of(v) for v in var_list]
        self._local_steps = []
        strategy = getattr(self, "_distribution_strategy", None)
        for v in var_list:
            colocate = v.value if isinstance(v, keras.Variable) else v
            if strategy is not None:
                with strategy.extended.colocate_vars_with(colocate):
                    step = self.add_variable(shape=(), dtype="int64", name="local_step")
            else:
                step = self.add_variable(shape=(), dtype="int64", name="local_step")
            self._local_steps.append(step)

    # ----------------------------------------------------------------- update
    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        mult = self._multipliers[index]
        lr = ops.cast(learning_rate, variable.dtype) * mult
        gradient = ops.cast(gradient, variable.dtype)
        step_var = self._local_steps[index]
        self.assign_add(step_var, ops.ones((), dtype="int64"))
        local_step = ops.cast(step_var, variable.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)
        m = self._momentums[index]
        v = self._velocities[index]
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(
            v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2)
        )
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        self.assign_sub(
            variable,
            ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)),
        )

    def _apply_weight_decay(self, variables):
        if not self.weight_decay:
            return
        import tensorflow as tf

        def decay(variable, mult):
            if self._use_weight_decay(variable):
                lr = tf.cast(self.learning_rate, variable.dtype) * mult
                wd = tf.cast(self.weight_decay, variable.dtype)
                variable.assign_sub(variable * wd * lr)

        def distributed_decay(distribution, variables):
            for variable in variables:
                mult = self._multipliers[self._get_variable_index(variable)]
                if isinstance(variable, keras.Variable):
                    variable = variable.value
                distribution.extended.update(variable, decay, args=(mult,), group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(
            distributed_decay, self._distribution_strategy, variables
        )

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if self.gradients_reduced_by_caller:
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        import tensorflow as tf

        trainable_variables = [
            v.value if isinstance(v, keras.Variable) else v for v in trainable_variables
        ]
        grads_and_vars = self._all_reduce_sum_gradients(
            list(zip(grads, trainable_variables, strict=True))
        )
        if self.reduced_global_clipnorm:
            clipped, _ = tf.clip_by_global_norm(
                [g for g, _ in grads_and_vars], self.reduced_global_clipnorm
            )
            grads_and_vars = list(
                zip(clipped, [v for _, v in grads_and_vars], strict=True)
            )
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step,
            self._distribution_strategy,
            grads_and_vars,
            learning_rate,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "group_multipliers": dict(self.group_multipliers),
                "variable_groups": dict(self.variable_groups),
                "global_clipnorm": self.reduced_global_clipnorm,
            }
        )
        return config


def _path(variable) -> str:
    return getattr(variable, "path", None) or variable.name.split(":")[0]


# --------------------------------------------------------------------- groups
def backbone_stage_map(
    backbone, stages: dict[str, list] | None = None
) -> dict[str, str]:
    """Layer name -> stage name (``"conv1"``..``"conv5"``) for a backbone.

    ``stages`` is ``backbone_stages(backbone)`` from `keras_art.models.backbones`; when
    omitted it is imported from there, and failing that ResNet layer-name prefixes are
    used (``conv3_block2_1_conv`` -> ``conv3``).
    """
    if stages is not None:
        return {
            layer.name: stage for stage, layers in stages.items() for layer in layers
        }
    out = {}
    for layer in backbone.layers:
        match = _RESNET_STAGE.match(layer.name)
        if match:
            out[layer.name] = match.group(1)
    return out


def _stage_order(stage_map: dict[str, str]) -> list[str]:
    seen: list[str] = []
    for stage in stage_map.values():
        if stage not in seen:
            seen.append(stage)
    return seen


def _is_batchnorm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def variable_groups(
    model,
    train_cfg,
    backbone_name: str = "backbone",
    stages: dict[str, list] | None = None,
) -> tuple[dict[str, str], list]:
    """Group names for the backbone's variables and the variables that may ever train.

    Returns ``(variable_groups, candidates)``: ``variable_groups`` maps each trainable
    backbone weight's path to ``"backbone"`` or, when its stage is a key of
    ``train_cfg.lr_groups``, to that stage name; ``candidates`` lists every variable the
    optimizer must be built over: all trainable head variables plus the backbone
    weights of stages at or after ``train_cfg.unfreeze_from`` (BatchNormalization
    only when ``train_cfg.train_bn``). Works on a frozen backbone too.
    """
    backbone = model.get_layer(backbone_name)
    stage_map = backbone_stage_map(backbone, stages)
    order = _stage_order(stage_map)
    unfreeze_from = getattr(train_cfg, "unfreeze_from", None)
    if unfreeze_from and unfreeze_from not in order:
        from keras_art.errors import UserError

        raise UserError(
            f"train.unfreeze_from {unfreeze_from!r} is not a backbone stage. "
            f"Choose one of: {', '.join(order)}."
        )
    open_stages: set[str] = set()
    if unfreeze_from and getattr(train_cfg, "unfreeze_epoch", 0) >= 0:
        open_stages = set(order[order.index(unfreeze_from) :])
    lr_groups = dict(getattr(train_cfg, "lr_groups", {}) or {})
    # BN learns only when train.train_bn was resolved to True (random init).
    train_bn = bool(getattr(train_cfg, "train_bn", False))
    groups: dict[str, str] = {}
    candidates: list = []
    backbone_ids = {id(w) for w in backbone.weights}
    for layer in backbone.layers:
        stage = stage_map.get(layer.name)
        if stage is None:
            continue
        for sub in _self_and_sublayers(layer):
            if _is_batchnorm(sub) and not train_bn:
                continue
            # `layer.trainable = False` flips `w.trainable` too; Keras keeps the
            # variables created as trainable in `_trainable_variables`.
            for w in getattr(sub, "_trainable_variables", sub.trainable_weights):
                groups[_path(w)] = stage if stage in lr_groups else BACKBONE
                if stage in open_stages:
                    candidates.append(w)
    head_vars = [w for w in model.weights if w.trainable and id(w) not in backbone_ids]
    return groups, _unique(head_vars + candidates)


def _self_and_sublayers(layer):
    yield layer
    for sub in getattr(layer, "_layers", None) or []:
        yield from _self_and_sublayers(sub)


def _unique(variables: Iterable) -> list:
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def group_multipliers(train_cfg) -> dict[str, float]:
    """``{"head": 1, "backbone": lr_backbone/lr_head, <stage>: lr/lr_head, ...}``."""
    head = float(train_cfg.lr_head)
    if head <= 0:
        from keras_art.errors import UserError

        raise UserError(f"train.lr_head must be > 0. Received: {head}")
    out = {HEAD: 1.0, BACKBONE: float(train_cfg.lr_backbone) / head}
    for stage, lr in (getattr(train_cfg, "lr_groups", {}) or {}).items():
        out[str(stage)] = float(lr) / head
    return out


def make_optimizer(
    model,
    train_cfg,
    learning_rate,
    *,
    loss_scale: bool = False,
    backbone_name: str = "backbone",
    stages: dict[str, list] | None = None,
):
    """Build `GroupAdamW` (wrapped in ``LossScaleOptimizer`` when ``loss_scale``).

    ``learning_rate`` is a float or a schedule for the head group (see
    `keras_art.training.schedules.make_schedule`). The optimizer is built over every
    variable that may ever train (head + the backbone stages that unfreeze), so the
    unfreeze adds no variables and keeps its state. Create it inside
    ``strategy.scope()``. Returns ``(optimizer, candidate_variables)``.
    """
    groups, candidates = variable_groups(model, train_cfg, backbone_name, stages)
    opt = GroupAdamW(
        learning_rate=learning_rate,
        weight_decay=float(train_cfg.weight_decay),
        global_clipnorm=float(train_cfg.clipnorm) or None,
        group_multipliers=group_multipliers(train_cfg),
        variable_groups=groups,
    )
    if loss_scale:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    opt.build(candidates)
    return opt, candidates


def inner_optimizer(optimizer):
    """The optimizer under a ``LossScaleOptimizer`` (or the optimizer itself)."""
    return getattr(optimizer, "inner_optimizer", optimizer)
