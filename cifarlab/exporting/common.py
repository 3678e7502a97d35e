"""What every export shares: the preprocessing record, the parity inputs and check, the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from cifarlab.data.loader import normalize
from cifarlab.errors import ModelError
from cifarlab.models.registry import INPUT_SHAPE

TOLERANCE = 1e-4  # max |logit difference| against PyTorch, on top of identical predicted classes
PARITY_IMAGES = 16


@dataclass
class ExportResult:
    """What was written and how it was verified."""

    path: Path
    format: str  # "onnx" or "torchscript"
    opset: int | None
    ops: list[str]  # distinct ONNX operators in first-use order; empty for TorchScript
    max_abs_diff: float  # largest |logit difference| against PyTorch on the parity batch
    preprocessing: dict[str, Any]  # what travels in the file's metadata
    unsupported_ops: list[str] = field(default_factory=list)  # outside the MATLAB allow-list (allow_any_op)
    warnings: list[str] = field(default_factory=list)
    ir_version: int | None = None  # ONNX only

    def describe(self) -> str:
        """Multi-line text: file, parity, preprocessing, classes, ops and warnings."""
        p = self.preprocessing
        version = f", opset {self.opset}, IR {self.ir_version}" if self.opset else ""
        lines = [f"wrote {self.path} ({self.format}{version})",
                 (f"parity: max |logit diff| {self.max_abs_diff:.2e} on {PARITY_IMAGES} images "
                  f"(limit {TOLERANCE:g}), predicted classes identical"),
                 (f"input: float32 {p['layout']} Nx{p['input']}, channels {p['channel_order']}; "
                  f"x = (pixel / 255 - mean) / std with mean {p['mean']} std {p['std']}"),
                 f"classes: {', '.join(p['classes'])}"]
        if self.ops:
            lines.append(f"ops: {', '.join(self.ops)}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def preprocessing_record(mean: list[float], std: list[float], classes: list[str],
                         input_shape: tuple[int, ...] = INPUT_SHAPE) -> dict[str, Any]:
    """How a caller must prepare images, stored with the exported file and printed after export."""
    return {
        "mean": [float(v) for v in mean], "std": [float(v) for v in std],
        "layout": "NCHW", "channel_order": "RGB", "scale": "1/255 then (x - mean) / std",
        "input": "x".join(map(str, input_shape)), "classes": list(classes),
    }


def parity_batch(preprocessing: dict[str, Any], shape: tuple[int, ...]) -> torch.Tensor:
    """A fixed batch of uint8 images, normalised exactly as in training.

    Half are smooth colour fields (upsampled 4x4 noise, closer to photographs in
    their statistics), half are per-pixel noise (the extremes of every channel).
    """
    gen = torch.Generator().manual_seed(0)
    half = PARITY_IMAGES // 2
    coarse = torch.rand(half, shape[0], 4, 4, generator=gen) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=shape[1:], mode="bilinear", align_corners=False)
    noise = torch.randint(0, 256, (PARITY_IMAGES - half, *shape), generator=gen).float()
    pixels = torch.cat([smooth.round(), noise]).to(torch.uint8)
    return normalize(pixels, preprocessing["mean"], preprocessing["std"])


def check_parity(model: nn.Module, x: torch.Tensor, run: Callable[[torch.Tensor], np.ndarray], what: str) -> float:
    """Max |logit diff| of ``run(x)`` against ``model(x)``; a ModelError above TOLERANCE or if a prediction differs."""
    with torch.no_grad():
        ref, got = model(x).numpy(), run(x)
    if ref.shape != got.shape:
        raise ModelError(f"{what}: output shape {got.shape} differs from PyTorch's {ref.shape}; nothing written")
    diff = float(np.max(np.abs(ref - got)))
    if not diff <= TOLERANCE:
        raise ModelError(f"{what}: max |logit diff| {diff:.2e} against PyTorch exceeds {TOLERANCE:g}; "
                         "nothing written")
    if not np.array_equal(ref.argmax(1), got.argmax(1)):
        raise ModelError(f"{what}: predicted classes differ from PyTorch's; nothing written")
    return diff
