"""Optimizers and learning-rate schedules from the config.

Schedules are pure functions of the step, not stateful scheduler objects, so a
resumed run needs only its step count to be back on the same curve.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from cifarlab.config import OptimConfig, ScheduleConfig
from cifarlab.training.muon import Muon


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg.name`` over all trainable parameters.

    Every param group records its ``initial_lr``: the schedule scales each group
    from its own rate, so groups with different rates keep their ratio.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == "muon":
        optimizer = _muon(model, cfg)
    elif cfg.name == "sgd":
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                    weight_decay=cfg.weight_decay)
    else:
        cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
        optimizer = cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def _muon(model: nn.Module, cfg: OptimConfig) -> Muon:
    """Muon for conv filter banks; SGD for biases and norms (``lr``) and linear layers (``head_lr``)."""
    filters, linear, other = [], [], []
    for p in model.parameters():
        if p.requires_grad:
            (filters if p.ndim == 4 else linear if p.ndim == 2 else other).append(p)
    sgd = dict(momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay, muon=False)
    groups = [dict(params=filters, lr=cfg.muon_lr, momentum=cfg.muon_momentum, nesterov=cfg.nesterov,
                   weight_decay=0.0, muon=True),
              dict(params=other, lr=cfg.lr, **sgd),
              dict(params=linear, lr=cfg.head_lr if cfg.head_lr is not None else cfg.lr, **sgd)]
    return Muon([g for g in groups if g["params"]])


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
