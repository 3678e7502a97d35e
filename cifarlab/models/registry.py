"""The model registry: every shipped network is created by name through one entry point."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from cifarlab.errors import ModelError, did_you_mean
from cifarlab.schema import build

INPUT_SHAPE = (3, 32, 32)  # what every model takes: one CIFAR-10 image, channels first

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model factory under ``name``.

    The factory's parameter annotations are what :func:`create_model` checks its arguments against
    (:mod:`cifarlab.schema`), so a bad argument is a one-line :class:`ModelError`.
    """

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with factory keyword arguments ``kwargs``, each checked first."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}{did_you_mean(name, _REGISTRY)}; "
                         f"known models: {', '.join(list_models())}")
    return build(_REGISTRY[name], kwargs, f"model {name!r}", error=ModelError, noun="argument")
