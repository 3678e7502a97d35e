"""Design checks on a traced network: errors (it does not run) and warnings (it runs, but ...)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch.nn as nn

from cifarlab.formatting import fmt_shape
from cifarlab.inspection.trace import LayerRow, TraceFailure

ACTIVATIONS = {"ReLU", "ReLU6", "GELU", "SiLU", "LeakyReLU", "ELU", "PReLU", "Mish", "Hardswish",
                "Sigmoid", "Tanh", "SELU", "CELU"}
_BATCHNORMS = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}
_GLOBAL_POOLS = {"AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d"}
_SPATIAL = {"Conv2d", "MaxPool2d", "AvgPool2d", "Conv1d", "Conv3d"}


@dataclass
class Finding:
    """One problem: ``level`` is ``error`` or ``warning``; ``layer`` names where."""

    level: str
    layer: str
    message: str
    code: str

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "code": self.code, "layer": self.layer, "message": self.message}

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


def failure_finding(failure: TraceFailure) -> Finding:
    """An error finding for a layer that raised: both shapes and, for a linear, what would fit."""
    m, inp = failure.module, failure.input_shape
    where = f"layer {failure.name} ({type(m).__name__})"
    conv, bn = nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm
    if inp is None or not isinstance(m, (nn.Linear, conv, bn)):
        return Finding("error", failure.name, f"{where} fails on input {fmt_shape(inp)}: {failure.message}", "fails")
    if isinstance(m, nn.Linear) and len(inp) == 1:
        msg = f"{where} expects in-features {m.in_features} but gets {fmt_shape(inp)}; in-features {inp[0]} would fit"
    elif isinstance(m, nn.Linear):
        msg = (f"{where} expects in-features {m.in_features} but gets the unflattened {fmt_shape(inp)}; "
               f"flatten first (in-features {math.prod(inp)} would fit)")
    elif isinstance(m, conv):
        expect = f"{m.in_channels}x" + "x".join("DHW"[-len(m.kernel_size):])
        msg = f"{where} expects {expect} (kernel {fmt_shape(m.kernel_size)}) but gets {fmt_shape(inp)}"
        # A wrong number of dimensions needs no more words than the two shapes.
        if len(inp) == len(m.kernel_size) + 1 and inp[0] != m.in_channels:
            msg += f"; in-channels {inp[0]} would fit"
        elif len(inp) == len(m.kernel_size) + 1:  # channels fit, so the kernel outgrows the input: torch says how
            msg += f": {failure.message}"
    else:
        msg = f"{where} expects {m.num_features} channels but gets {fmt_shape(inp)}; {inp[0]} would fit"
    return Finding("error", failure.name, msg, "shape-mismatch")


def design_warnings(rows: list[LayerRow], total_params: int) -> list[Finding]:
    """Warnings from the execution order of leaf layers."""
    out: list[Finding] = []
    bn_after = [(prev, row) for prev, row in pairwise(rows)
                if row.type in _BATCHNORMS and prev.type in ACTIVATIONS]
    if bn_after:
        prev, row = bn_after[0]
        others = [r.name for _, r in bn_after[1:]]
        more = f" (and {len(others)} more: {', '.join(others)})" if others else ""
        out.append(Finding("warning", row.name,
                           f"BatchNorm {row.name} comes after the activation {prev.name} ({prev.type}){more}; "
                           "the usual order is conv -> BatchNorm -> activation", "bn-after-activation"))
    for prev, row in pairwise(rows):
        if row.type in _BATCHNORMS and prev.type.startswith("Dropout"):
            out.append(Finding("warning", row.name,
                               f"dropout {prev.name} comes right before BatchNorm {row.name}; the statistics "
                               "BatchNorm learns in training differ from those at test time (variance shift)",
                               "dropout-before-bn"))
    for i, row in enumerate(rows):
        shp, inp = row.output_shape, row.input_shape
        if shp is None or len(shp) != 3 or shp[1:] != (1, 1) or inp is None or len(inp) != 3 or inp[1:] == (1, 1):
            continue
        if row.type in _GLOBAL_POOLS and not any(r.type in _SPATIAL for r in rows[i + 1:]):
            continue  # a global pool right before the head is by design
        out.append(Finding("warning", row.name,
                           f"spatial size collapses to 1x1 at {row.name} "
                           f"({row.type}: {fmt_shape(inp)} -> {fmt_shape(shp)}) "
                           "before the head; later layers see no spatial structure", "spatial-collapse"))
        break
    for row in rows:
        own = row.params_trainable + row.params_frozen
        if row.type == "Linear" and own > total_params / 2:  # own <= total: no division by 0
            out.append(Finding("warning", row.name, f"linear layer {row.name} holds {own:,} of {total_params:,} "
                               f"parameters ({100 * own / total_params:.0f}%); a smaller pooled input would shrink it",
                               "linear-dominates"))
    return out
