"""Learning-rate schedules: per-step cosine annealing with warmup, plateau, constant.

Every schedule gives the HEAD group's learning rate; `GroupAdamW` derives the other
groups from it by their fixed ratios, so one schedule drives all groups.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_art")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then cosine annealing to ``eta_min`` (PyTorch CosineAnnealingLR).

    ``lr(step)`` for ``step < warmup_steps`` rises linearly from
    ``peak / warmup_steps`` to ``peak``; then follows
    ``eta_min + (peak - eta_min) * (1 + cos(pi * t / T)) / 2`` with
    ``t = step - warmup_steps`` and ``T = decay_steps - warmup_steps``, and stays at
    ``eta_min`` once ``t >= T`` (PyTorch would climb back up; a run longer than
    ``T_max`` keeps the floor instead).

    Args:
        peak: learning rate after warmup (the head LR, e.g. 8e-4).
        decay_steps: ``T_max`` in steps, counted from step 0 (warmup included):
            ``cosine_t_max_epochs * steps_per_epoch``.
        eta_min: the floor.
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

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.cast(self.peak, "float32")
        floor = ops.cast(self.eta_min, "float32")
        span = float(self.decay_steps - self.warmup_steps)
        t = ops.clip(step - self.warmup_steps, 0.0, span)
        cosine = floor + (peak - floor) * 0.5 * (1.0 + ops.cos(math.pi * t / span))
        if self.warmup_steps == 0:
            return cosine
        warm = peak * (step + 1.0) / float(self.warmup_steps)
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self):
        return {
            "peak": self.peak,
            "decay_steps": self.decay_steps,
            "eta_min": self.eta_min,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }


def make_schedule(train_cfg, steps_per_epoch: int):
    """The head learning rate for ``train_cfg.schedule``: a schedule or a float.

    - ``cosine``: `WarmupCosine` with ``T_max = cosine_t_max_epochs * steps_per_epoch``
      and ``warmup_epochs * steps_per_epoch`` warmup steps.
    - ``plateau`` and ``constant``: the float ``lr_head`` (plateau reductions are
      applied by `make_plateau_callback` to the optimizer's learning-rate variable).
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1. Received: {steps_per_epoch}")
    if train_cfg.schedule == "cosine":
        return WarmupCosine(
            peak=train_cfg.lr_head,
            decay_steps=max(1, int(train_cfg.cosine_t_max_epochs * steps_per_epoch)),
            eta_min=train_cfg.eta_min,
            warmup_steps=int(round(train_cfg.warmup_epochs * steps_per_epoch)),
        )
    if train_cfg.schedule in ("plateau", "constant"):
        return float(train_cfg.lr_head)
    from keras_art.errors import UserError

    raise UserError(
        f"Unknown train.schedule {train_cfg.schedule!r}. Choose one of: cosine, "
        f"plateau, constant."
    )


def make_plateau_callback(train_cfg, monitor: str | None = None):
    """Seed 002's ReduceLROnPlateau on val macro-F1 (mode max), or None.

    Returns None unless ``train_cfg.schedule == "plateau"``. Reducing the head LR
    reduces every group by the same factor (the ratios are fixed).
    """
    if train_cfg.schedule != "plateau":
        return None
    monitor = monitor or train_cfg.monitor
    return keras.callbacks.ReduceLROnPlateau(
        monitor=monitor,
        factor=train_cfg.plateau_factor,
        patience=train_cfg.plateau_patience,
        mode=monitor_mode(monitor),
        min_lr=train_cfg.eta_min,
        verbose=1,
    )


def monitor_mode(monitor: str) -> str:
    """``"min"`` for losses, ``"max"`` for everything else (F1, accuracy)."""
    return "min" if monitor.endswith("loss") else "max"
