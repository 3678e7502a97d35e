"""What a run trains with: the seeded model, optimizer, EMA and training loader built from its config.

Apart from :mod:`cifarlab.training.trainer` so that checkpoints, which save and
restore these parts, need nothing from the training loop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn

from cifarlab.config import Config
from cifarlab.data.loader import DeviceLoader, normalize
from cifarlab.data.split import Splits
from cifarlab.devices import resolve_precision
from cifarlab.inspection.arch import describe_arch
from cifarlab.models import build_model
from cifarlab.training.ema import EMA
from cifarlab.training.optim import build_optimizer, lr_multiplier


@dataclass
class Setup:
    """What a run trains with, built from its config by :func:`setup`."""

    device: torch.device
    precision: torch.dtype | None  # the autocast dtype; None for plain fp32
    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]  # the model, compiled when train.compile is on
    optimizer: torch.optim.Optimizer
    ema: EMA | None
    loader: DeviceLoader  # shuffled, augmented training batches
    generator: torch.Generator  # the loader's randomness (saved in checkpoints)
    schedule: Callable[[int], float]  # learning-rate multiplier of optimizer step n
    arch: dict[str, Any]  # summary.json's architecture facts

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated and saved: the EMA average when enabled."""
        return self.ema.module if self.ema is not None else self.model


def setup(cfg: Config, splits: Splits, device: torch.device) -> Setup:
    """Seed, then build model, optimizer, EMA and training loader for ``cfg`` on ``device``."""
    torch.manual_seed(cfg.train.seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.train.seed)
    model = build_model(cfg.model).to(device)
    init = getattr(model, "init_from_data", None)
    if init is not None:  # e.g. the fast net's whitening layer; a resume overwrites it from the checkpoint
        init(normalize(splits.train.images[:5000], cfg.data.mean, cfg.data.std))
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    arch = describe_arch(model)
    optimizer = build_optimizer(model, cfg.optim)
    ema = EMA(model, cfg.train.ema) if cfg.train.ema > 0 else None
    loader = DeviceLoader(
        splits.train.images, splits.train.labels, cfg.train.batch_size, mean=cfg.data.mean, std=cfg.data.std,
        augment=cfg.data.augment, shuffle=True, drop_last=len(splits.train) > cfg.train.batch_size,
        generator=generator, channels_last=cfg.train.channels_last)
    schedule = functools.partial(lr_multiplier, total_steps=len(loader) * cfg.train.epochs,
                                 steps_per_epoch=len(loader), cfg=cfg.schedule)
    return Setup(device=device, precision=resolve_precision(cfg.train.precision, device), model=model,
                 forward=torch.compile(model) if cfg.train.compile else model, optimizer=optimizer, ema=ema,
                 loader=loader, generator=generator, schedule=schedule, arch=arch)
