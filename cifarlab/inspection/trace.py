"""Shapes, parameters and MACs per leaf layer, from forward hooks on one tiny forward pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

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
    macs: int  # per image
    activation_bytes: int  # output elements * 4 bytes * batch
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params_trainable": self.params_trainable, "params_frozen": self.params_frozen,
            "macs": self.macs, "activation_bytes": self.activation_bytes, "ok": self.ok,
        }


@dataclass
class TraceFailure:
    """The layer whose forward raised, with what it got."""

    name: str
    type: str
    module: nn.Module | None
    input_shape: tuple[int, ...] | None
    message: str


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules with no children, except empty containers (an empty ``nn.Sequential`` is an identity)."""
    out = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None and not isinstance(module, _CONTAINERS):
            out.append((name or type(module).__name__, module))
    return out


def layer_macs(module: nn.Module, inp: tuple[int, ...] | None, out: tuple[int, ...] | None) -> int:
    """Multiply-accumulates per image: conv out_h*out_w*out_c*(in_c/groups)*kh*kw; linear in*out."""
    if out is None:
        return 0
    if isinstance(module, nn.modules.conv._ConvNd):
        k = 1
        for s in module.kernel_size:
            k *= s
        spatial = 1
        for s in out[1:]:
            spatial *= s
        return spatial * module.out_channels * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        rows = 1
        for s in out[:-1]:
            rows *= s
        return rows * module.in_features * module.out_features
    return 0


def _shape(x: Any) -> tuple[int, ...] | None:
    if torch.is_tensor(x):
        return tuple(x.shape[1:])
    if isinstance(x, (tuple, list)) and x and torch.is_tensor(x[0]):
        return tuple(x[0].shape[1:])
    return None


def trace(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1
          ) -> tuple[list[LayerRow], TraceFailure | None, tuple[int, ...] | None]:
    """Run one batch-1 forward in eval mode without grad; return rows, a failure (or None), output shape.

    A module called several times (ResNet's shared ReLU) gets one row per call;
    its parameters are counted on the first.
    """
    leaves = leaf_modules(model)
    names = {id(m): (n, m) for n, m in leaves}
    rows: list[LayerRow] = []
    pending: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []
    calls: dict[int, int] = {}
    seen_params: set[int] = set()

    def pre_hook(module: nn.Module, args: tuple) -> None:
        name, _ = names[id(module)]
        pending.append((name, module, _shape(args[0]) if args else None))

    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        name, _ = names[id(module)]
        _, _, inp = pending.pop() if pending else (name, module, None)
        count = calls.get(id(module), 0) + 1
        calls[id(module)] = count
        trainable = frozen = 0
        if id(module) not in seen_params:
            seen_params.add(id(module))
            for p in module.parameters(recurse=False):
                if p.requires_grad:
                    trainable += p.numel()
                else:
                    frozen += p.numel()
        out = _shape(output)
        elems = 1
        for s in out or ():
            elems *= s
        rows.append(LayerRow(
            name=name if count == 1 else f"{name}#{count}", type=type(module).__name__,
            input_shape=inp, output_shape=out, params_trainable=trainable, params_frozen=frozen,
            macs=layer_macs(module, inp, out), activation_bytes=elems * 4 * batch if out is not None else 0,
        ))

    handles = []
    for _, m in leaves:
        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    failure: TraceFailure | None = None
    out_shape = None
    try:
        model.eval()
        x = torch.zeros(1, *input_shape)
        try:
            p = next(model.parameters())
            x = x.to(device=p.device, dtype=p.dtype)
        except StopIteration:
            pass
        with torch.no_grad():
            try:
                y = model(x)
                out_shape = _shape(y)
            except Exception as exc:  # noqa: BLE001 - any failure inside the model is a finding
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if pending:
                    name, module, inp = pending[-1]
                    failure = TraceFailure(name, type(module).__name__, module, inp, msg)
                    own = list(module.parameters(recurse=False))
                    rows.append(LayerRow(name=name, type=type(module).__name__, input_shape=inp, output_shape=None,
                                         params_trainable=sum(p.numel() for p in own if p.requires_grad),
                                         params_frozen=sum(p.numel() for p in own if not p.requires_grad),
                                         macs=0, activation_bytes=0, ok=False))
                else:
                    failure = TraceFailure("<model>", type(model).__name__, None, tuple(input_shape), msg)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows, failure, out_shape
