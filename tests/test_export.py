"""ONNX / TorchScript export: opset 14, IR 7, MATLAB-importable ops, metadata, parity, no file on failure."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import cifarlab.exporting.common as export_common
from cifarlab.cli import main
from cifarlab.config import load
from cifarlab.errors import ModelError
from cifarlab.exporting import MATLAB_OPS, export_model
from cifarlab.exporting.onnx import _layer_of
from cifarlab.models import build_model
from cifarlab.models.weights import load_trained, save_weights

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def _save(tmp_path, cfg, name: str) -> str:
    """Weights of ``cfg``'s model with non-trivial BatchNorm statistics (so folding is exercised)."""
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


def _weights(tmp_path, name: str) -> str:
    return _save(tmp_path, load("seed", model__name=name, data__mean=MEAN, data__std=STD), name)


def _gelu_weights(tmp_path) -> str:
    layers = [{"conv": {"out": 4, "kernel": 3}}, {"residual": ["gelu"]}, {"adaptiveavgpool": {"size": [2, 2]}},
              "flatten", {"linear": {"out": 10}}]
    return _save(tmp_path, load("seed", model__layers=layers), "gelu")


@pytest.mark.parametrize("name, ops", [
    ("seed", ["Conv", "Relu", "BatchNormalization", "AveragePool", "Flatten", "Gemm"]),
    pytest.param("resnet18", ["Conv", "Relu", "Add", "GlobalAveragePool", "Flatten", "Gemm"], marks=pytest.mark.slow),
])
def test_onnx_export_parity_and_format(tmp_path, name, ops):
    weights = _weights(tmp_path, name)
    result = export_model(weights, out=tmp_path / f"{name}.onnx")
    # BatchNorm after a conv is folded (resnet18 has none left); Dropout vanishes (the seed has one).
    assert result.ops == ops and not result.unsupported_ops and set(ops) <= MATLAB_OPS
    assert 0 <= result.max_abs_diff <= 1e-4 and not result.warnings and result.ir_version == 7
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == 7 and [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [14]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["mean"]) == pytest.approx(MEAN) and json.loads(meta["std"]) == pytest.approx(STD)
    assert meta["layout"] == "NCHW" and meta["channel_order"] == "RGB" and meta["input"] == "3x32x32"
    assert json.loads(meta["classes"]) == CLASSES
    # What a user does with the file: uint8 RGB -> /255 -> normalise, any batch size.
    pixels = np.random.default_rng(0).integers(0, 256, (3, 3, 32, 32)).astype(np.float32)
    x = ((pixels / 255 - np.array(MEAN, np.float32)[:, None, None]) / np.array(STD, np.float32)[:, None, None])
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.astype(np.float32)})[0]
    with torch.no_grad():
        ref = load_trained(weights).model(torch.from_numpy(x.astype(np.float32))).numpy()
    assert got.shape == (3, 10) and np.abs(got - ref).max() <= 1e-4


def test_ops_outside_the_matlab_list_are_refused_unless_allowed(tmp_path):
    weights = _gelu_weights(tmp_path)
    with pytest.raises(ModelError, match=r"allow-list: Erf \(at res1\.gelu1\).*--allow-any-op; nothing written$"):
        export_model(weights)
    # numbered Sequential children are scoped by their full path
    assert _layer_of("/groups/groups.0/groups.0.3/Erf") == "groups.0.3" and _layer_of("/act/Erf") == "act"
    assert not (tmp_path / "model.onnx").exists()
    result = export_model(weights, allow_any_op=True)
    assert result.path == tmp_path / "model.onnx" and result.path.is_file()
    assert {"Erf", "Div", "Mul", "Add"} <= set(result.ops) and result.unsupported_ops == ["Erf"]
    assert "warning: ops not on the MATLAB importer allow-list: Erf" in result.describe()


def test_torchscript(tmp_path):
    result = export_model(_weights(tmp_path, "seed"), format="torchscript", out=tmp_path / "s.pt")
    assert result.max_abs_diff <= 1e-4 and result.opset is None
    files = {"cifarlab.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(result.path), _extra_files=files)
    assert json.loads(files["cifarlab.json"])["classes"] == CLASSES
    assert loaded(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_failed_parity_leaves_no_file(tmp_path, monkeypatch):
    weights = _weights(tmp_path, "seed")
    monkeypatch.setattr(export_common, "TOLERANCE", -1.0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.onnx").write_text("previous")
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(ModelError, match="exceeds -1; nothing written"):
            export_model(weights, format=fmt, out=tmp_path / "out" / "m.onnx")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["m.onnx"]
    assert (tmp_path / "out" / "m.onnx").read_text() == "previous"


def test_cli(tmp_path, capsys):
    weights = _weights(tmp_path, "seed")
    assert main(["export", weights, "--out", str(tmp_path / "x.onnx")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'x.onnx'} (onnx, opset 14, IR 7)" in out
    assert "ops: Conv, Relu, BatchNormalization, AveragePool, Flatten, Gemm" in out
    assert "mean [0.49, 0.48, 0.45]" in out and "NCHW" in out and "classes: airplane, automobile" in out
    assert main(["export", weights, "--opset", "17", "--out", str(tmp_path / "y.onnx")]) == 0
    assert "warning: opset 17 is above 14" in capsys.readouterr().out
    assert onnx.load(str(tmp_path / "y.onnx")).opset_import[0].version == 17
    gelu = _gelu_weights(tmp_path)
    assert main(["export", gelu]) == 2
    assert capsys.readouterr().err.startswith("cifarlab export: error: ONNX ops outside the MATLAB importer")
    assert main(["export", gelu, "--allow-any-op"]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "missing"), "--format", "onnx"]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["export", weights, "--opset", "3"]) == 2
    assert "opset 3: supported range is 7..20" in capsys.readouterr().err
