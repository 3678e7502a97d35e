"""Declarative YAML models: the seed spec, seedlike, and one-line errors naming the layer."""

from __future__ import annotations

import re
from importlib import resources
from itertools import pairwise

import pytest
import torch
import yaml

from cifarlab.config import ModelConfig
from cifarlab.errors import ModelError
from cifarlab.models import build_model, create_model
from cifarlab.inspection import inspect_model
from cifarlab.models.declarative import LAYERS, build_from_layers, build_layers


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _seed_spec() -> list:
    return yaml.safe_load((resources.files("cifarlab") / "models" / "specs" / "seed.yaml").read_text())


def _randomize_bn(model: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def test_seed_spec_matches_registered_seed():
    seed = create_model("seed").eval()
    _randomize_bn(seed)
    spec = build_from_layers(_seed_spec()).eval()
    assert _params(spec) == _params(seed) == 2_753_546  # stated in ../shared/writeup/README.md
    assert [(n, str(m)) for n, m in spec.named_children()] == [(n, str(m)) for n, m in seed.named_children()]
    assert [(k, v.shape) for k, v in spec.state_dict().items()] == [(k, v.shape) for k, v in seed.state_dict().items()]
    spec.load_state_dict(seed.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(spec(x), seed(x))


def test_seed_loads_checkpoints_written_before_it_was_seedlike():
    """The keys and shapes, in order, that the seed saved as a class of its own (models/seed.py until 6c5b4f5)."""
    expected = {}
    for i, (cin, cout) in enumerate(pairwise([3, 32, 64, 128, 256, 512]), start=1):
        expected |= {f"conv{i}.weight": (cout, cin, 3, 3), f"conv{i}.bias": (cout,)}
        expected |= {f"bn{i}.{k}": (cout,) for k in ("weight", "bias", "running_mean", "running_var")}
        expected[f"bn{i}.num_batches_tracked"] = ()
    for j, (fin, fout) in enumerate(pairwise([512 * 2 * 2, 512, 256, 10]), start=1):
        expected |= {f"fc{j}.weight": (fout, fin), f"fc{j}.bias": (fout,)}
    assert [(k, tuple(v.shape)) for k, v in create_model("seed").state_dict().items()] == list(expected.items())


def test_seedlike_grows_and_shrinks():
    deep = create_model("seedlike", conv=12, fc=5, width=16)
    assert deep(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert deep.conv12.out_channels == 512 and deep.fc1.in_features == 2048 and deep.fc4.out_features == 64
    small = create_model("seedlike", conv=1, fc=1, dropout=0.0, batchnorm=False, num_classes=3)
    assert [n for n, _ in small.named_children()] == ["conv1", "relu1", "pool", "flatten", "fc1"]
    assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_inline_config_with_residual_and_default_names():
    layers = [
        {"conv": {"out": 8, "kernel": 3, "padding": 1, "bias": False}}, "batchnorm", {"leakyrelu": {"slope": 0.1}},
        {"residual": [{"conv": {"out": 8, "kernel": 3, "padding": 1, "groups": 2}}, "gelu"]},
        {"maxpool": {"kernel": 2}}, {"avgpool": {"kernel": 2, "name": "down"}}, "silu",
        {"adaptiveavgpool": {"size": [2, 2]}}, {"dropout": {"p": 0.2}}, "flatten",
        {"linear": {"in": 32, "out": 5}},
    ]
    model = build_model(ModelConfig(layers=layers))
    names = [n for n, _ in model.named_children()]
    assert names == ["conv1", "bn1", "leakyrelu1", "res1", "pool1", "down", "silu1", "pool2", "dropout1",
                     "flatten1", "fc1"]
    assert model.res1.conv2.groups == 2 and "res1.conv2.weight" in model.state_dict()
    x = torch.randn(2, 3, 16, 16)
    assert model(x).shape == (2, 5)
    with torch.no_grad():  # the block adds its input back
        h = model.leakyrelu1(model.bn1(model.conv1(x)))
        assert torch.allclose(model.res1(h), h + model.res1.gelu1(model.res1.conv2(h)))


@pytest.mark.parametrize("layers, message", [
    ([{"convv": {"out": 8}}], "layer 1: unknown layer type 'convv' (did you mean 'conv'?)"),
    ([{"conv": {"kernel": 3}}], "layer 1 (conv conv1): missing field 'out'"),
    ([{"conv": {"out": 8, "kernel": 3, "strid": 2}}],
     "layer 1 (conv conv1): unknown field 'strid' (did you mean 'stride'?); fields: out, kernel, stride, padding"),
    ([{"conv": {"out": -8, "kernel": 3}}], "layer 1 (conv conv1): field 'out' must be positive, got -8"),
    ([{"conv": {"out": 8, "kernel": [3, 3, 3]}}], "layer 1 (conv conv1): field 'kernel' must be an integer or [h, w]"),
    ([{"maxpool": {"kernel": 2, "padding": -1}}], "layer 1 (maxpool pool1): field 'padding' must not be negative"),
    ([{"dropout": {"p": float("nan")}}], "layer 1 (dropout dropout1): field 'p' must be in [0, 1], got nan"),
    ([{"linear": {"out": 2, "in": True}}], "layer 1 (linear fc1): field 'in' must be an integer or null, got True"),
    ([{"conv": {"out": 8, "kernel": 40}}], "layer 1 (conv conv1): kernel 40x40 is larger than the incoming 32x32"),
    ([{"conv": {"out": 8, "kernel": 3}}, {"linear": {"out": 10}}],
     ("layer 2 (linear fc1): the incoming shape 8x30x30 is not flat; add '- flatten' before it "
      "(then in-features 7200 would fit)")),
    ([{"residual": [{"conv": {"out": 4, "kernel": 3}}]}],
     "layer 1 (residual res1): the residual body changes the shape from 3x32x32 to 4x30x30"),
    (["flatten", {"conv": {"out": 4, "kernel": 3}}], "layer 2 (conv conv1): needs an image input CxHxW"),
    ([{"relu": {}, "name": "a"}, {"relu": {}, "name": "a"}], "layer 2 (relu a): the name 'a' is already used"),
])
def test_errors_name_the_layer(layers, message):
    with pytest.raises(ModelError) as info:
        build_from_layers(layers)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_lenient_build_records_nested_errors_by_module_name():
    layers = [{"conv": {"out": 4, "kernel": 3, "padding": 1}},
              {"residual": ["relu", {"conv": {"out": 8, "kernel": 3, "padding": 1, "name": "widen"}}]},
              "flatten", {"linear": {"in": 100, "out": 2}}]
    model, errors, out_shape = build_layers(layers, (3, 8, 8), lenient=True)
    assert [e.layer for e in errors] == ["res1", "fc1"]
    assert str(errors[0]).startswith("layer 2 (residual res1): the residual body changes the shape from 4x8x8 to 8x8x8")
    assert str(errors[1]) == ("layer 4 (linear fc1): in-features 100 do not match the incoming 4x8x8=256; "
                              "in-features 256 would fit")
    assert isinstance(model.res1.widen, torch.nn.Conv2d) and out_shape == (2,)
    with pytest.raises(ModelError, match=r"^layer 2\.1 \(relu relu1\): unknown field 'slope'"):
        build_layers([{"conv": {"out": 4, "kernel": 3}}, {"residual": [{"relu": {"slope": 1}}]}], lenient=True)


def test_linear_in_features_mismatch_message():
    layers = _seed_spec()
    layers[18] = {"linear": {"in": 4096, "out": 512}}  # fc1, unnamed: default name fc1
    with pytest.raises(ModelError, match=r"^layer 19 \(linear fc1\): in-features 4096 do not match the incoming "
                                         r"512x2x2=2048; in-features 2048 would fit$"):
        build_from_layers(layers)
    model, errors, _ = build_layers(layers, lenient=True)  # inspection builds it anyway
    assert len(errors) == 1 and model.fc1.in_features == 4096


_REQUIRED = {"conv": {"out": 4, "kernel": 3}, "linear": {"out": 4}, "residual": ["relu"]}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_every_table_type_builds_with_its_defaults_and_tracks_the_real_shape(kind):
    shape = (12,) if kind == "linear" else (3, 8, 8)
    entry = {kind: _REQUIRED[kind]} if kind in _REQUIRED else kind
    model, errors, out_shape = build_layers([entry], shape)
    assert errors == [] and list(dict(model.named_children())) == [f"{LAYERS[kind].stem}1"]
    with torch.no_grad():
        assert tuple(model.eval()(torch.randn(2, *shape)).shape[1:]) == out_shape


@pytest.mark.parametrize("layers, shape, message", [
    ([{"conv": {"out": 4, "kernel": 3, "groups": 2}}], (3, 8, 8),
     "layer 1 (conv conv1): groups 2 must divide in-channels 3 and out-channels 4"),
    ([{"conv": {"out": 4, "kernel": 9}}], (3, 8, 8),
     "layer 1 (conv conv1): kernel 9x9 is larger than the incoming 8x8 (padding 0x0)"),
    ([{"maxpool": {"kernel": 9}}], (3, 8, 8), "layer 1 (maxpool pool1): kernel 9x9 is larger than the incoming 8x8"),
    (["flatten", {"conv": {"out": 4, "kernel": 1}}], (3, 8, 8),
     "layer 2 (conv conv1): needs an image input CxHxW, but the incoming shape is 3x8x8=192"),
    (["flatten", {"adaptiveavgpool": {"size": 1}}], (3, 8, 8),
     "layer 2 (adaptiveavgpool pool1): needs an image input CxHxW, but the incoming shape is 3x8x8=192"),
    (["batchnorm"], (3, 8), "layer 1 (batchnorm bn1): needs CxHxW or features input, got 3x8"),
    ([{"linear": {"out": 2}}], (3, 8, 8),
     "layer 1 (linear fc1): the incoming shape 3x8x8 is not flat; add '- flatten' before it "
     "(then in-features 192 would fit)"),
])
def test_lenient_mode_records_every_size_mismatch_alike(layers, shape, message):
    """Strict: the mismatch raises. Lenient: the same line is recorded, the layer built and the rest built after it."""
    with pytest.raises(ModelError, match=f"^{re.escape(message)}$"):
        build_layers(layers, shape)
    model, errors, _ = build_layers([*layers, "relu"], shape, lenient=True)
    assert [str(e) for e in errors] == [message]
    assert list(dict(model.named_children()))[-1] == "relu1"
    report = inspect_model([*layers, "relu"], input_shape=shape)  # a finding, not an exception
    assert not report.ok and [(f.code, f.message) for f in report.errors] == [("shape-mismatch", message)]


def test_an_entry_that_contradicts_itself_raises_even_when_lenient():
    with pytest.raises(ModelError, match=r"^layer 1 \(conv conv1\): groups 2 must divide in-channels 4 and "
                                         r"out-channels 3$"):
        build_layers([{"conv": {"out": 3, "kernel": 1, "groups": 2}}], (4, 8, 8), lenient=True)
    with pytest.raises(ModelError, match=r"^layer 1 \(maxpool pool1\): padding 2x2 must be at most half the kernel"):
        build_layers([{"maxpool": {"kernel": 2, "padding": 2}}], lenient=True)
