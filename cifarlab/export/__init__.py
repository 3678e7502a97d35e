"""Export trained models to ONNX or TorchScript, verified against PyTorch before the file appears."""

from cifarlab.export.onnx import (
    MATLAB_OPS,
    ExportResult,
    export_model,
    export_onnx,
    export_torchscript,
)

__all__ = ["MATLAB_OPS", "ExportResult", "export_model", "export_onnx", "export_torchscript"]
