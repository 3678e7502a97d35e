"""ONNX / TorchScript export: opset 14, IR 7, MATLAB-friendly ops, metadata, parity, no file on failure."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import cifarlab.export.onnx as onnx_export
from cifarlab.cli import main
from cifarlab.config import load
from cifarlab.errors import CifarlabError
from cifarlab.export import MATLAB_OPS, export_model
from cifarlab.models import build_model
from cifarlab.training.checkpoint import save_weights

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _weights(tmp_path, name: str, **model_args) -> str:
    """A weights file of model ``name`` with non-trivial BatchNorm statistics."""
    cfg = load("seed", model__name=name, model__args=model_args, data__mean=[0.49, 0.48, 0.45],
               data__std=[0.25, 0.24, 0.26])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
    path = tmp_path / f"{name}.safetensors"
    save_weights(path, model, cfg, CLASSES)
    return str(path)


@pytest.mark.parametrize("name, ops", [
    ("seed", ["Conv", "Relu", "BatchNormalization", "AveragePool", "Flatten", "Gemm"]),
    ("resnet18", ["Conv", "Relu", "Add", "GlobalAveragePool", "Flatten", "Gemm"]),
])
def test_onnx_export_parity_and_format(tmp_path, name, ops):
    result = export_model(_weights(tmp_path, name), out=tmp_path / f"{name}.onnx")
    assert result.ops == ops and not result.unsupported_ops and set(ops) <= MATLAB_OPS
    assert result.max_abs_diff <= 1e-4
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == 7 and [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [14]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["mean"]) == pytest.approx([0.49, 0.48, 0.45]) and meta["layout"] == "NCHW"
    assert meta["channel_order"] == "RGB" and json.loads(meta["classes"]) == CLASSES and meta["input"] == "3x32x32"
    # dynamic batch, and the independent check a user would do: uint8 -> /255 -> normalise
    sess = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(0).integers(0, 256, (3, 3, 32, 32)).astype(np.float32)
    x = (pixels / 255 - np.array([0.49, 0.48, 0.45], np.float32)[:, None, None]) / \
        np.array([0.25, 0.24, 0.26], np.float32)[:, None, None]
    assert sess.run(None, {"input": x.astype(np.float32)})[0].shape == (3, 10)


def test_gelu_ops_are_reported(tmp_path):
    layers = [{"conv": {"out": 4, "kernel": 3}}, "gelu", {"adaptiveavgpool": {"size": [2, 2]}}, "flatten",
              {"linear": {"out": 10}}]
    cfg = load("seed", model__layers=layers)
    path = tmp_path / "g.safetensors"
    save_weights(path, build_model(cfg.model), cfg, CLASSES)
    result = export_model(path)
    assert result.path == tmp_path / "model.onnx"
    assert {"Erf", "Div", "Mul", "Add"} <= set(result.ops) and result.unsupported_ops == ["Erf"]


def test_torchscript(tmp_path):
    result = export_model(_weights(tmp_path, "seed"), format="torchscript", out=tmp_path / "s.pt")
    assert result.max_abs_diff <= 1e-4
    files = {"cifarlab.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(result.path), _extra_files=files)
    assert json.loads(files["cifarlab.json"])["classes"] == CLASSES
    assert loaded(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_failed_parity_leaves_no_file(tmp_path, monkeypatch):
    weights = _weights(tmp_path, "seed")
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.onnx").write_text("previous")
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(CifarlabError, match="nothing written"):
            export_model(weights, format=fmt, out=tmp_path / "out" / "m.onnx")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["m.onnx"]
    assert (tmp_path / "out" / "m.onnx").read_text() == "previous"


def test_cli(tmp_path, capsys):
    weights = _weights(tmp_path, "seed")
    assert main(["export", weights, "--out", str(tmp_path / "x.onnx")]) == 0
    out = capsys.readouterr().out
    assert "ops: Conv, Relu, BatchNormalization" in out and "mean [0.49, 0.48, 0.45]" in out
    assert main(["export", str(tmp_path / "missing"), "--format", "onnx"]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["export", weights, "--opset", "3"]) == 2
    assert "opset 3" in capsys.readouterr().err
