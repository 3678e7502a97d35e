"""Exponential moving average of a model's weights (and copies of its buffers)."""

from __future__ import annotations

import torch
import torch.nn as nn


class EMA:
    """Keeps ``avg = decay * avg + (1 - decay) * weights`` after each update.

    BatchNorm running statistics are copied, not averaged: they are already averages.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        for key, value in model.state_dict().items():
            avg = self.state[key]
            if value.dtype.is_floating_point:
                avg.lerp_(value.detach(), 1.0 - self.decay)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged state, loadable into the model."""
        return self.state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the averaged state from a checkpoint."""
        for key, value in state.items():
            self.state[key].copy_(value)
