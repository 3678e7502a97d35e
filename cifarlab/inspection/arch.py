"""The architecture facts a run records in its summary, so that tables never rebuild the network."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from cifarlab.inspection.findings import ACTIVATIONS
from cifarlab.inspection.trace import trace
from cifarlab.models.registry import INPUT_SHAPE

_NORMS = {nn.BatchNorm1d: "BN", nn.BatchNorm2d: "BN", nn.LayerNorm: "LN", nn.GroupNorm: "GN"}


def describe_arch(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> dict[str, Any]:
    """Conv and fully connected layer counts, activations, normalizations, dropout, params and MACs per image."""
    modules = list(model.modules())
    rows, _, _ = trace(model, input_shape)
    return {
        "conv": sum(isinstance(m, nn.Conv2d) for m in modules),
        "fc": sum(isinstance(m, nn.Linear) for m in modules),
        "activation": "/".join(dict.fromkeys(type(m).__name__ for m in modules if type(m).__name__ in ACTIVATIONS))
        or "none",
        "normalization": "/".join(dict.fromkeys(_NORMS[type(m)] for m in modules if type(m) in _NORMS)) or "none",
        "dropout": max((m.p for m in modules if isinstance(m, nn.Dropout)), default=0.0),
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "macs": sum(r.macs for r in rows),
    }
