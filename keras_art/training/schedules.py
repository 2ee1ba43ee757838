"""Learning-rate schedules: per-step cosine annealing with warmup, plateau, constant.

Each variable group gets its own schedule from its own peak LR (`make_schedule`
with ``learning_rate=``); all groups anneal to the same absolute ``eta_min`` and are
evaluated at one shared step (`keras_art.training.optimizers.GroupAdamW`).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_art.errors import UserError


@keras.saving.register_keras_serializable(package="keras_art")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then cosine annealing to ``eta_min`` (PyTorch CosineAnnealingLR).

    ``lr(step)`` for ``step < warmup_steps`` rises linearly from
    ``peak / warmup_steps`` to ``peak``; then follows
    ``eta_min + (peak - eta_min) * (1 + cos(pi * t / T)) / 2`` with
    ``t = step - warmup_steps`` and ``T = decay_steps - warmup_steps``, and stays at
    ``eta_min`` once ``t >= T`` (PyTorch would climb back up; a run longer than
    ``T_max`` keeps the floor instead). A peak below ``eta_min`` stays at the peak.

    The annealing is ``keras.optimizers.schedules.CosineDecay``. Its own warmup is
    not used because it is one step behind this one: it starts AT its
    ``initial_learning_rate`` on step 0 (from 0, a wasted first step) and reaches the
    peak on step ``warmup_steps``, while this warmup starts at ``peak / warmup_steps``
    and reaches the peak on step ``warmup_steps - 1``; shifting CosineDecay's warmup
    by one step would shift its cosine by one step too.

    Args:
        peak: learning rate after warmup (a group's LR, e.g. 8e-4).
        decay_steps: ``T_max`` in steps, counted from step 0 (warmup included):
            ``cosine_t_max_epochs * steps_per_epoch``.
        eta_min: the floor (absolute, the same for every group).
        warmup_steps: linear warmup length in steps (0 = none).
    """

    def __init__(
        self,
        peak: float,
        decay_steps: int,
        eta_min: float = 0.0,
        warmup_steps: int = 0,
        name: str = "warmup_cosine",
    ):
        if decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1. Received: {decay_steps}")
        if warmup_steps < 0 or (warmup_steps > 0 and warmup_steps >= decay_steps):
            raise ValueError(
                f"warmup_steps must be in [0, decay_steps). Received: "
                f"warmup_steps={warmup_steps}, decay_steps={decay_steps}"
            )
        self.peak = float(peak)
        self.decay_steps = int(decay_steps)
        self.eta_min = float(eta_min)
        self.warmup_steps = int(warmup_steps)
        self.name = name
        floor = min(self.eta_min, self.peak)
        self._cosine = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=self.peak,
            decay_steps=self.decay_steps - self.warmup_steps,
            alpha=floor / self.peak if self.peak > 0 else 0.0,
        )

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cosine = self._cosine(ops.maximum(step - self.warmup_steps, 0.0))
        if self.warmup_steps == 0:
            return cosine
        warm = self.peak * (step + 1.0) / float(self.warmup_steps)
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {
            "peak": self.peak,
            "decay_steps": self.decay_steps,
            "eta_min": self.eta_min,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }


def make_schedule(train_cfg, steps_per_epoch: int, learning_rate: float | None = None):
    """A group's learning rate for ``train_cfg.schedule``: a schedule or a float.

    ``learning_rate`` is the group's peak (default ``train_cfg.lr_head``).

    - ``cosine``: `WarmupCosine` with ``T_max = cosine_t_max_epochs * steps_per_epoch``,
      ``warmup_epochs * steps_per_epoch`` warmup steps and the floor ``eta_min``.
    - ``plateau`` and ``constant``: the float peak (plateau reductions are applied by
      `keras_art.training.callbacks.StageSchedule` to every group).
    """
    peak = float(train_cfg.lr_head if learning_rate is None else learning_rate)
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1. Received: {steps_per_epoch}")
    if train_cfg.schedule == "cosine":
        return WarmupCosine(
            peak=peak,
            decay_steps=max(1, int(train_cfg.cosine_t_max_epochs * steps_per_epoch)),
            eta_min=train_cfg.eta_min,
            warmup_steps=int(round(train_cfg.warmup_epochs * steps_per_epoch)),
        )
    if train_cfg.schedule in ("plateau", "constant"):
        return peak
    raise UserError(
        f"Unknown train.schedule {train_cfg.schedule!r}. Choose one of: cosine, "
        f"plateau, constant."
    )


def monitor_mode(monitor: str) -> str:
    """``"min"`` for losses, ``"max"`` for everything else (F1, accuracy)."""
    return "min" if monitor.endswith("loss") else "max"
