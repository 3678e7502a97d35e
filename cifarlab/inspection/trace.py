"""Shapes, parameters and MACs per leaf layer, from forward hooks on one batch-1 forward pass."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn

from cifarlab.errors import first_line

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class LayerRow:
    """One call of one leaf layer."""

    name: str
    type: str
    input_shape: tuple[int, ...] | None  # without the batch dimension
    output_shape: tuple[int, ...] | None
    params_trainable: int
    params_frozen: int
    macs: int = 0  # per image
    activation_bytes: int = 0  # output elements * 4 bytes * batch
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}


@dataclass
class TraceFailure:
    """The innermost module whose forward raised (a leaf, or a block's own code), with what it got."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...] | None
    message: str


def layer_macs(module: nn.Module, out: tuple[int, ...] | None) -> int:
    """Multiply-accumulates per image: conv out_h*out_w*out_c*(in_c/groups)*kh*kw; linear in*out."""
    if out is None:
        return 0
    if isinstance(module, nn.modules.conv._ConvNd):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return math.prod(out[1:]) * module.out_channels * per_output
    if isinstance(module, nn.Linear):
        return math.prod(out[:-1]) * module.in_features * module.out_features
    return 0


def _shape(x: Any) -> tuple[int, ...] | None:
    """The shape without the batch dimension of a tensor, or of the first of a tuple or list of them."""
    x = x[0] if isinstance(x, (tuple, list)) and x else x
    return tuple(x.shape[1:]) if torch.is_tensor(x) else None


def count_params(params: Iterable[nn.Parameter]) -> tuple[int, int]:
    """(trainable, frozen) element counts."""
    params = list(params)
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params if not p.requires_grad)


@torch.no_grad()
def trace(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1
          ) -> tuple[list[LayerRow], TraceFailure | None, tuple[int, ...] | None]:
    """Trace one image through ``model`` in eval mode; return rows, a failure (or None), output shape.

    The pass is real arithmetic on one zero image, on the model's device, without gradients, and gives torch's
    own message for the failing layer. Not on the meta device: its kernels' first use imports torch's compiler
    stack, 1.1 s on a 2-core CPU, which a batch-1 forward of a CIFAR network beats by a hundred times, and which
    every training run paid at start-up. A module called several times (ResNet's shared ReLU) gets one row per
    call; its parameters are counted on the first. The model is left in the training mode it had.

    Every module is hooked. Leaves give the rows; containers are hooked too, so that a failure in a block's own
    code (a residual addition of mismatched shapes) is pinned on the innermost module still running, not on the
    whole model.
    """
    modules = {id(m): (n or type(m).__name__, m) for n, m in model.named_modules()}
    # Leaves: modules with no children, except empty containers (an empty ``nn.Sequential`` is an identity).
    leaves = {key for key, (_, m) in modules.items()
              if next(m.children(), None) is None and not isinstance(m, _CONTAINERS)}
    params = {key: count_params(m.parameters(recurse=False)) for key, (_, m) in modules.items()}
    rows: list[LayerRow] = []
    running: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []
    calls: dict[int, int] = {}

    def pre_hook(module: nn.Module, args: tuple) -> None:
        running.append((modules[id(module)][0], module, _shape(args[0]) if args else None))

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        name, _, inp = running.pop()
        if id(module) not in leaves:
            return
        count = calls[id(module)] = calls.get(id(module), 0) + 1
        trainable, frozen = params[id(module)] if count == 1 else (0, 0)  # shared weights count once
        out = _shape(output)
        rows.append(LayerRow(
            name=name if count == 1 else f"{name}#{count}", type=type(module).__name__,
            input_shape=inp, output_shape=out, params_trainable=trainable, params_frozen=frozen,
            macs=layer_macs(module, out), activation_bytes=math.prod(out) * 4 * batch if out is not None else 0,
        ))

    handles = [h for _, m in modules.values() for h in (m.register_forward_pre_hook(pre_hook),
                                                         m.register_forward_hook(hook))]
    failure: TraceFailure | None = None
    out_shape = None
    was_training = model.training
    model.eval()
    try:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else "cpu"
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
        x = torch.zeros(1, *input_shape, device=device, dtype=dtype)
        try:
            out_shape = _shape(model(x))
        except Exception as exc:  # noqa: BLE001 - any failure inside the model is a finding
            name, module, inp = running[-1] if running else (type(model).__name__, model, tuple(input_shape))
            failure = TraceFailure(name, module, inp, first_line(exc))
            rows.append(LayerRow(name, type(module).__name__, inp, None, *params[id(module)], ok=False))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return rows, failure, out_shape
