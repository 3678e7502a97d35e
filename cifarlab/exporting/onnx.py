"""ONNX export for MATLAB, Netron and onnxruntime: opset 14, MATLAB-importable ops, verified.

The file is built in memory, checked (``onnx.checker``; every op against :data:`MATLAB_OPS`; onnxruntime's
logits against PyTorch's on a batch of 16 images), then written to a temporary path beside the target and
renamed into place, so a failed export leaves no file behind (and an earlier file intact).

Opset 14 (IR version 7) is the default because MATLAB's ``importNetworkFromONNX`` fully supports opsets up to
14 and only warns above. The TorchScript-based exporter is used (``dynamo=False``): in eval mode it folds a
BatchNorm that follows a conv into the conv, drops Dropout, writes ``nn.Flatten`` as ``Flatten``, Linear as
``Gemm`` and an adaptive average pool whose output size divides the input as ``AveragePool``
(``GlobalAveragePool`` for 1x1), all of which the importer turns into built-in layers.
"""

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
from cifarlab.fileio import atomic_path

# ONNX operators that MATLAB's importNetworkFromONNX (Deep Learning Toolbox Converter for ONNX Model Format)
# converts to built-in layers: conv/pool/normalisation/activation/fully-connected layers and the element-wise
# and shape ops PyTorch emits around them. Deliberately conservative: an op outside it may still import, as a
# generated custom layer that code generation and Deep Network Designer handle less well, so export refuses it
# unless allow_any_op (``--allow-any-op``). GELU, for one, exports below opset 20 with Erf, which is not listed.
MATLAB_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout",
    "Flatten", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Identity", "LeakyRelu", "MatMul", "MaxPool",
    "Mul", "Relu", "Reshape", "Sigmoid", "Softmax", "Sub", "Tanh", "Transpose",
})
MATLAB_MAX_OPSET = 14  # the highest opset importNetworkFromONNX fully supports
OPSETS = range(7, 21)  # what the TorchScript-based exporter writes


def check_opset(opset: int) -> None:
    """A :class:`ModelError` unless the exporter can write ``opset``."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ModelError(f"opset {opset!r}: supported range is {OPSETS.start}..{OPSETS.stop - 1} "
                         f"({MATLAB_MAX_OPSET} is the highest MATLAB's importer fully supports)")


def _layer_of(node_name: str) -> str:
    """The module path an exported node came from.

    The exporter names nodes by scope: ``/res1/gelu1/Erf`` for named children,
    but ``/groups/groups.0/groups.0.3/Erf`` where a Sequential's children are numbered.
    """
    path = ""
    for part in node_name.strip("/").split("/")[:-1]:
        path = part if not path or part.startswith(f"{path}.") else f"{path}.{part}"
    return path or node_name


def _unsupported(proto) -> dict[str, list[str]]:
    """Ops outside :data:`MATLAB_OPS`, each with the layers (module paths) that produced it."""
    where: dict[str, dict[str, None]] = {}  # dicts as ordered sets
    for node in proto.graph.node:
        if node.op_type not in MATLAB_OPS:
            where.setdefault(node.op_type, {})[_layer_of(node.name)] = None
    return {op: list(layers) for op, layers in where.items()}


def _inline_identities(proto) -> None:
    """Replace ``Identity(initializer)`` nodes (the exporter's de-duplication of equal tensors) by copies.

    Equal weights (e.g. two freshly initialised BatchNorms) otherwise become one
    initializer plus Identity nodes, which importers show as extra layers.
    """
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
                input_shape: tuple[int, ...] = INPUT_SHAPE, allow_any_op: bool = False) -> ExportResult:
    """Export ``model`` to ``out`` with ``preprocessing`` as metadata, verified (see the module doc) before it appears.

    Input ``input`` (N x C x H x W float32, N dynamic), output ``logits`` (N x classes). A failed
    check, or an op outside :data:`MATLAB_OPS` without ``allow_any_op``, is a :class:`ModelError`.
    """
    import onnx
    import onnxruntime as ort

    check_opset(opset)
    model = model.eval().cpu()
    x = parity_batch(preprocessing, input_shape)
    buf = io.BytesIO()
    # The TorchScript-based exporter warns that it is deprecated; it is chosen on purpose
    # (see the module docstring), so its warnings would only confuse the user.
    with warnings.catch_warnings(action="ignore"):
        try:
            torch.onnx.export(model, x[:1], buf, dynamo=False, opset_version=opset, input_names=["input"],
                              output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        except Exception as exc:  # noqa: BLE001 - exporter failures are the user's model's
            raise ModelError(f"ONNX export at opset {opset} failed: {first_line(exc)}") from None
    proto = onnx.load_from_string(buf.getvalue())
    _inline_identities(proto)
    for key, value in preprocessing.items():
        proto.metadata_props.add(key=key, value=value if isinstance(value, str) else json.dumps(value))
    proto.producer_name = "cifarlab"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001 - any checker complaint means the file is unusable
        raise ModelError(f"exported ONNX model fails onnx.checker: {first_line(exc)}; nothing written") from None
    unsupported = _unsupported(proto)
    if unsupported and not allow_any_op:
        found = "; ".join(f"{op} (at {', '.join(layers)})" for op, layers in unsupported.items())
        raise ModelError(f"ONNX ops outside the MATLAB importer allow-list: {found}; change those layers "
                         "(e.g. gelu -> relu or silu) or pass --allow-any-op; nothing written")
    data = proto.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    diff = check_parity(model, x, lambda batch: session.run(["logits"], {"input": batch.numpy()})[0], "onnxruntime")
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
        onnx.checker.check_model(str(tmp))  # the file as written
    notes = []
    if unsupported:
        notes.append(f"ops not on the MATLAB importer allow-list: {', '.join(unsupported)} "
                     "(MATLAB may import them as generated custom layers)")
    if opset > MATLAB_MAX_OPSET:
        notes.append(f"opset {opset} is above {MATLAB_MAX_OPSET}, the highest MATLAB's importNetworkFromONNX "
                     "fully supports")
    ops = list(dict.fromkeys(node.op_type for node in proto.graph.node))  # distinct, in first-use order
    return ExportResult(path=out, format="onnx", opset=opset, ops=ops, max_abs_diff=diff, preprocessing=preprocessing,
                        unsupported_ops=list(unsupported), warnings=notes, ir_version=proto.ir_version)
