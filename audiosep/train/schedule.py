"""Learning-rate schedules: a multiplier of ``optim.lr`` for each optimizer step."""
from __future__ import annotations

import math

from .config import TrainConfig


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of the base learning rate for optimizer step ``step`` (0-based).

    Linear warm-up over ``schedule.warmup_steps`` (``(step + 1) / warmup_steps``), then by
    ``schedule.kind``: ``warmup_constant`` 1; ``warmup_linear_decay`` a straight line and
    ``warmup_cosine`` a half cosine, both from 1 down to ``final_lr_fraction`` at
    ``training.steps`` (``f + (1 - f) * (1 + cos(pi * done)) / 2``, ``done`` the fraction of the
    steps after warm-up that are done).
    """
    sched = config.schedule
    if step < sched.warmup_steps:
        return (step + 1) / sched.warmup_steps
    if sched.kind == "warmup_constant":
        return 1.0
    span = max(1, config.training.steps - sched.warmup_steps)
    done = min(1.0, (step - sched.warmup_steps) / span)
    low = sched.final_lr_fraction
    if sched.kind == "warmup_cosine":
        return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * done))
    return 1.0 - done * (1.0 - low)
