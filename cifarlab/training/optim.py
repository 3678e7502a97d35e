"""Optimizers and learning-rate schedules from the config.

Schedules are pure functions of the step, not stateful scheduler objects, so a
resumed run needs only its step count to be back on the same curve.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from cifarlab.config import OptimConfig, ScheduleConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over all trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def lr_multiplier(step: int, total_steps: int, steps_per_epoch: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the base learning rate for optimizer step ``step`` (0-based)."""
    progress = step / max(1, total_steps)
    if cfg.name == "onecycle":
        # Linear up to the peak, then linear down to ``final``: the speed-run shape.
        if progress < cfg.peak:
            return progress / cfg.peak
        return 1.0 - (1.0 - cfg.final) * (progress - cfg.peak) / (1.0 - cfg.peak)
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if cfg.name == "step":
        return cfg.gamma ** (step // (cfg.step_epochs * steps_per_epoch))
    if cfg.name == "cosine":
        span = max(1.0, total_steps - warmup_steps)
        t = min(1.0, (step - warmup_steps) / span)
        return cfg.final + (1.0 - cfg.final) * 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0
