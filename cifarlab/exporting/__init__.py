"""Export trained models to ONNX (MATLAB, Netron, onnxruntime) or TorchScript, verified before the file appears.

>>> from cifarlab.exporting import export_model
>>> result = export_model("runs/seed-0")        # -> runs/seed-0/model.onnx, opset 14
>>> print(result.describe())                    # parity, preprocessing, classes, ops
"""

from __future__ import annotations

from pathlib import Path

from cifarlab.errors import ModelError
from cifarlab.exporting.common import PARITY_IMAGES, TOLERANCE, ExportResult, preprocessing_record
from cifarlab.exporting.onnx import MATLAB_MAX_OPSET, MATLAB_OPS, check_opset, export_onnx
from cifarlab.exporting.torchscript import export_torchscript
from cifarlab.models.weights import load_trained

__all__ = ["MATLAB_MAX_OPSET", "MATLAB_OPS", "PARITY_IMAGES", "TOLERANCE", "ExportResult", "export_model",
           "export_onnx", "export_torchscript"]

_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def export_model(path: str | Path, format: str = "onnx", opset: int = 14, out: str | Path | None = None,
                 allow_any_op: bool = False) -> ExportResult:
    """Export the trained model at ``path`` (run directory or weights file) as ``onnx`` or ``torchscript``.

    ``out`` defaults to ``model.onnx`` / ``model.pt`` beside the weights file. ``opset`` applies to ONNX
    (14: what MATLAB's importer fully supports); ``allow_any_op`` accepts ops outside :data:`MATLAB_OPS`
    (still listed in ``ExportResult.unsupported_ops``). A failed check is a ``ModelError`` and leaves no file.
    """
    if format not in _SUFFIX:
        raise ModelError(f"unknown export format {format!r}; use onnx or torchscript")
    if format == "onnx":
        check_opset(opset)  # before loading anything
    trained = load_trained(path)
    preprocessing = preprocessing_record(trained.config.data.mean, trained.config.data.std, trained.classes)
    target = Path(out) if out is not None else trained.path.parent / f"model{_SUFFIX[format]}"
    if format == "onnx":
        return export_onnx(trained.model, target, preprocessing, opset=opset, allow_any_op=allow_any_op)
    return export_torchscript(trained.model, target, preprocessing)
