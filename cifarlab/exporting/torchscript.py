"""TorchScript export: a traced module with the preprocessing as an extra file, verified by reloading it."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from cifarlab.errors import ModelError, first_line
from cifarlab.exporting.common import INPUT_SHAPE, ExportResult, check_parity, parity_batch
from cifarlab.fileio import write_bytes

EXTRA_FILE = "cifarlab.json"  # read back with torch.jit.load(path, _extra_files={"cifarlab.json": ""})


def export_torchscript(model: nn.Module, out: Path, preprocessing: dict[str, Any],
                       input_shape: tuple[int, ...] = INPUT_SHAPE) -> ExportResult:
    """Trace ``model`` to ``out``; the file appears only if the reloaded module matches PyTorch."""
    model = model.eval().cpu()
    x = parity_batch(preprocessing, input_shape)
    # torch.jit warns that it is deprecated, but a traced file is still what libtorch
    # (C++) and MATLAB's importNetworkFromPyTorch load; the warning is not the user's concern.
    with warnings.catch_warnings(action="ignore"):
        try:
            with torch.no_grad():
                traced = torch.jit.trace(model, x[:1])
        except Exception as exc:  # noqa: BLE001 - tracing failures are the user's model's
            raise ModelError(f"TorchScript trace failed: {first_line(exc)}") from None
        # Saved to memory: torch's own file writer aborts the process when the disk is full.
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(preprocessing)})
        data = buffer.getvalue()
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    diff = check_parity(model, x, lambda batch: loaded(batch).numpy(), "torchscript")
    write_bytes(out, data)
    return ExportResult(path=out, format="torchscript", opset=None, ops=[], max_abs_diff=diff,
                        preprocessing=preprocessing)
