"""Networks, created by name: ``create_model("seed")``, or from a config's model section.

Importing this package registers every shipped model (one model per module).
"""

from __future__ import annotations

import torch.nn as nn

from cifarlab.models import fast, resnet, seedlike  # noqa: F401  (registration side effect)
from cifarlab.models.declarative import build_from_layers
from cifarlab.models.registry import create_model, list_models, register_model

__all__ = ["build_model", "create_model", "list_models", "register_model"]


def build_model(model_cfg) -> nn.Module:
    """Build the network a :class:`cifarlab.config.ModelConfig` describes (inline ``layers`` over ``name``)."""
    if model_cfg.layers is not None:
        return build_from_layers(model_cfg.layers)
    return create_model(model_cfg.name, **model_cfg.args)
