"""Export a trained model to ONNX (for MATLAB, Netron, onnxruntime) or TorchScript, verified.

The ONNX file is written to a temporary path beside the target, checked
(``onnx.checker``, every op against the MATLAB-importer allow-list, outputs of
onnxruntime against PyTorch on 16 images) and only then renamed into place, so
a failed export leaves no file behind.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from cifarlab.errors import CifarlabError
from cifarlab.fileio import atomic_path

# ONNX operators that MATLAB's importNetworkFromONNX (Deep Learning Toolbox Converter for
# ONNX Model Format) converts to built-in layers or functions. Conservative: ops outside
# it may still import, as auto-generated custom layers, but are reported.
MATLAB_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout",
    "Flatten", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Identity", "LeakyRelu", "MatMul", "MaxPool",
    "Mul", "Relu", "Reshape", "Sigmoid", "Softmax", "Sub", "Tanh", "Transpose",
})
# GELU exports (opset < 20) as Div, Erf, Add, Mul, Mul; Erf is not on the list above.
TOLERANCE = 1e-4
PARITY_IMAGES = 16


@dataclass
class ExportResult:
    """What was written and how it was verified."""

    path: Path
    format: str
    opset: int | None
    ops: list[str]  # distinct operators, in first-use order (ONNX); empty for TorchScript
    max_abs_diff: float
    preprocessing: dict[str, Any]
    unsupported_ops: list[str] = field(default_factory=list)  # outside the MATLAB allow-list

    def describe(self) -> str:
        """Multi-line text: file, checks, preprocessing and ops."""
        p = self.preprocessing
        lines = [f"wrote {self.path} ({self.format}" + (f", opset {self.opset}" if self.opset else "") + ")",
                 (f"parity: max |logit diff| {self.max_abs_diff:.2e} on {PARITY_IMAGES} images "
                  f"(limit {TOLERANCE:g}), argmax identical"),
                 (f"input: float32 {p['layout']} {p['input']}, channels {p['channel_order']}; "
                  f"x = (pixel / 255 - mean) / std with mean {p['mean']} std {p['std']}"),
                 f"classes: {', '.join(p['classes'])}"]
        if self.ops:
            lines.append(f"ops: {', '.join(self.ops)}")
        if self.unsupported_ops:
            lines.append(f"warning: ops not on the MATLAB importer allow-list: {', '.join(self.unsupported_ops)} "
                         "(they may import as custom layers)")
        return "\n".join(lines)


def _parity_batch(mean: list[float], std: list[float], shape: tuple[int, ...]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (PARITY_IMAGES, *shape), generator=gen, dtype=torch.uint8)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (pixels.float() / 255 - m) / s


def _compare(ref: np.ndarray, got: np.ndarray, what: str) -> float:
    if ref.shape != got.shape:
        raise CifarlabError(f"{what}: output shape {got.shape} differs from PyTorch's {ref.shape}")
    diff = float(np.max(np.abs(ref - got)))
    if not diff <= TOLERANCE:
        raise CifarlabError(f"{what}: max |logit diff| {diff:.2e} against PyTorch exceeds {TOLERANCE:g}; "
                            "nothing written")
    if not np.array_equal(ref.argmax(1), got.argmax(1)):
        raise CifarlabError(f"{what}: predicted classes differ from PyTorch's; nothing written")
    return diff


def _ops(model_proto) -> list[str]:
    seen: list[str] = []
    for node in model_proto.graph.node:
        if node.op_type not in seen:
            seen.append(node.op_type)
    return seen


def _inline_identities(proto) -> None:
    """Replace ``Identity(initializer)`` nodes (the exporter's de-duplication of equal tensors) by copies."""
    inits = {t.name: t for t in proto.graph.initializer}
    keep = []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = proto.graph.initializer.add()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
        else:
            keep.append(node)
    if len(keep) != len(proto.graph.node):
        del proto.graph.node[:]
        proto.graph.node.extend(keep)


def export_onnx(model: nn.Module, out: Path, preprocessing: dict[str, Any], opset: int = 14,
                input_shape: tuple[int, ...] = (3, 32, 32)) -> ExportResult:
    """Export ``model`` to ``out`` with metadata; verify before the file appears."""
    import onnx
    import onnxruntime as ort

    model = model.eval().cpu()
    x = _parity_batch(preprocessing["mean"], preprocessing["std"], input_shape)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, x[:1], buf, dynamo=False, opset_version=opset, input_names=["input"],
                              output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        except Exception as exc:  # noqa: BLE001 - exporter failures are the user's model's
            raise CifarlabError(f"ONNX export at opset {opset} failed: {str(exc).strip().splitlines()[0]}") from None
    proto = onnx.load_from_string(buf.getvalue())
    _inline_identities(proto)
    for key, value in preprocessing.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    proto.producer_name = "cifarlab"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise CifarlabError(f"exported ONNX model fails onnx.checker: {exc}") from None
    ops = _ops(proto)
    data = proto.SerializeToString()
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": x.numpy()})[0]
    diff = _compare(ref, got, "onnxruntime")
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
        onnx.checker.check_model(str(tmp))  # the file as written
    return ExportResult(path=out, format="onnx", opset=opset, ops=ops, max_abs_diff=diff,
                        preprocessing=preprocessing, unsupported_ops=[o for o in ops if o not in MATLAB_OPS])


def export_torchscript(model: nn.Module, out: Path, preprocessing: dict[str, Any],
                       input_shape: tuple[int, ...] = (3, 32, 32)) -> ExportResult:
    """Trace ``model`` to TorchScript with the preprocessing as an extra file; verify by reloading it."""
    model = model.eval().cpu()
    x = _parity_batch(preprocessing["mean"], preprocessing["std"], input_shape)
    extra = {"cifarlab.json": json.dumps(preprocessing)}
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.no_grad():
                traced = torch.jit.trace(model, x[:1])
            traced.save(str(tmp), _extra_files=extra)
            loaded = torch.jit.load(str(tmp), map_location="cpu").eval()
        with torch.no_grad():
            ref, got = model(x).numpy(), loaded(x).numpy()
        diff = _compare(ref, got, "torchscript")
    return ExportResult(path=out, format="torchscript", opset=None, ops=[], max_abs_diff=diff,
                        preprocessing=preprocessing)


def export_model(path: str | Path, format: str = "onnx", opset: int = 14, out: str | Path | None = None
                 ) -> ExportResult:
    """Export the trained model at ``path`` (run directory or weights file) as ``onnx`` or ``torchscript``.

    ``out`` defaults to ``model.onnx`` / ``model.pt`` beside the weights file.
    """
    from cifarlab.training.checkpoint import load_trained

    if format not in ("onnx", "torchscript"):
        raise CifarlabError(f"unknown export format {format!r}; use onnx or torchscript")
    if format == "onnx" and not 7 <= int(opset) <= 20:
        raise CifarlabError(f"opset {opset}: supported range is 7..20 (14 is what MATLAB importers expect)")
    trained = load_trained(path)
    shape = (3, 32, 32)
    preprocessing = {
        "mean": [float(v) for v in trained.mean], "std": [float(v) for v in trained.std],
        "layout": "NCHW", "channel_order": "RGB", "scale": "1/255 then (x - mean) / std",
        "input": "x".join(map(str, shape)), "classes": list(trained.classes),
    }
    suffix = ".onnx" if format == "onnx" else ".pt"
    target = Path(out) if out is not None else trained.path.parent / f"model{suffix}"
    if format == "onnx":
        return export_onnx(trained.model, target, preprocessing, opset=int(opset), input_shape=shape)
    return export_torchscript(trained.model, target, preprocessing, input_shape=shape)
