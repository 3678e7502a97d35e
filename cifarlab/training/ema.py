"""Exponential moving average of a model: an averaged copy of it."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA(nn.Module):
    """``module`` keeps ``avg = decay * avg + (1 - decay) * weights`` after each :meth:`update`.

    Floating-point buffers (BatchNorm's running statistics) are averaged like the
    weights; integer ones (its batch counter) are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.module = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        for avg, value in zip(self.module.state_dict().values(), model.state_dict().values()):
            if value.dtype.is_floating_point:
                avg.lerp_(value.detach(), 1.0 - self.decay)
            else:
                avg.copy_(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The averaged model's output."""
        return self.module(x)
