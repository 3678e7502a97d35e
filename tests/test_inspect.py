"""inspect_model: per-layer shapes, totals, MACs against independent counts, findings, sources, diagram, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from cifarlab.cli import main
from cifarlab.config import ModelConfig, load
from cifarlab.inspection import draw_diagram, inspect_model
from cifarlab.models import build_model, create_model
from cifarlab.models.weights import save_weights

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _seed_macs_by_hand() -> int:
    """conv: out_h*out_w*out_c*in_c*9 (3x3); linear: in*out."""
    convs = [(32, 32, 32, 3), (16, 16, 64, 32), (16, 16, 128, 64), (16, 16, 256, 128), (16, 16, 512, 256)]
    linears = [(2048, 512), (512, 256), (256, 10)]
    return sum(h * w * c * cin * 9 for h, w, c, cin in convs) + sum(i * o for i, o in linears)


def test_seed_totals_and_rows():
    report = inspect_model("seed")  # its speed is a figure of benchmarks/inspect_speed.py, not a test
    assert report.params == 2_753_546 and report.params_frozen == 0
    assert report.macs == 403_147_264 == _seed_macs_by_hand()
    assert report.output_shape == (10,)
    assert [r.name for r in report.rows][:4] == ["conv1", "relu1", "bn1", "conv2"]
    rows = {r.name: r for r in report.rows}
    assert rows["conv2"].output_shape == (64, 16, 16) and rows["pool"].output_shape == (512, 2, 2)
    assert rows["fc1"].macs == 2048 * 512 and rows["fc1"].params_trainable == 2048 * 512 + 512
    assert rows["conv5"].activation_bytes == 512 * 16 * 16 * 4
    assert inspect_model("seed", batch=4).activation_mb == pytest.approx(4 * report.activation_mb)
    assert report.param_mb == pytest.approx(2_753_546 * 4 / 1e6)
    assert report.ok and [f.code for f in report.warnings] == ["bn-after-activation"]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["totals"]["macs_per_image"] == 403_147_264 and data["totals"]["params"] == 2_753_546
    assert "conv5" in report.format_table() and "<table>" in report._repr_html_()


@pytest.mark.parametrize("source, params", [
    ("resnet18", 11_173_962),
    ("fast", None),
    (ModelConfig(name="seedlike", args={"conv": 7, "fc": 3}), None),
    (EXAMPLES / "custom.yaml", None),
])
def test_counts_match_torch_flop_counter(source, params):
    """An independent count: torch's FLOP counter (2 FLOPs per MAC) and the modules' own parameters."""
    report = inspect_model(source)
    if isinstance(source, Path):
        model = build_model(load(source).model)
    elif isinstance(source, ModelConfig):
        model = build_model(source)
    else:
        model = create_model(source)
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert counter.get_total_flops() == 2 * report.macs > 0
    assert report.params == sum(p.numel() for p in model.parameters())
    if params is not None:
        assert report.params == params
    assert report.ok and report.output_shape == (10,)


def test_resnet18_rows_and_no_warnings():
    report = inspect_model("resnet18")
    names = [r.name for r in report.rows]
    assert names[:4] == ["stem.0", "stem.1", "stem.2", "layers.0.0.conv1"]
    assert "layers.1.0.shortcut.0" in names and "layers.0.0.relu#2" in names  # a ReLU used twice: two rows
    assert not report.findings  # BN before ReLU; the global pool right before the head is by design


def test_frozen_params_and_module_input():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    model[0].weight.requires_grad_(False)
    report = inspect_model(model, input_shape="3x8x8", batch=2)
    assert report.params_frozen == 108 and report.params_trainable == 4 + 144 * 2 + 2
    assert report.rows[0].macs == 6 * 6 * 4 * 3 * 9 and report.rows[0].activation_bytes == 2 * 144 * 4
    assert "(+108 frozen)" in report.format_table()
    assert model[0].weight.device.type == "cpu" and model.training  # the caller's module is left as it was


class _DataDependent(nn.Module):
    """Reads a value out of its input: only a forward with real numbers can trace it."""

    def forward(self, x):
        return x / (x.abs().max().item() + 1)


def test_a_data_dependent_forward_is_traced_and_the_weights_are_untouched():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), _DataDependent(), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    weight = model[0].weight.detach().clone()
    report = inspect_model(model)
    assert report.ok and report.output_shape == (10,) and report.rows[1].output_shape == (4, 30, 30)
    assert torch.equal(model[0].weight, weight)


@pytest.mark.parametrize("training", [True, False])
def test_the_trace_runs_in_eval_mode_and_leaves_the_mode_as_it_was(training):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    model.train(training)
    assert inspect_model(model).ok
    assert model.training is training and model[1].training is training
    # a forward in training mode would have counted a batch and moved the running variance (1 -> 0.9 on zeros)
    assert model[1].num_batches_tracked.item() == 0 and torch.equal(model[1].running_var, torch.ones(4))


class _BadBlock(nn.Module):
    """A residual block whose conv changes the channels: its own addition fails."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


@pytest.mark.parametrize("model, layer, text", [
    (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10)),
     "3", "layer 3 (Linear) expects in-features 64 but gets 32; in-features 32 would fit"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(64, 10)),
     "1", "expects in-features 64 but gets the unflattened 8x30x30; flatten first (in-features 7200 would fit)"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(16, 8, 3)),
     "1", "layer 1 (Conv2d) expects 16xHxW (kernel 3x3) but gets 8x30x30; in-channels 8 would fit"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(16)),
     "1", "layer 1 (BatchNorm2d) expects 16 channels but gets 8x30x30; 8 would fit"),
    (nn.Sequential(nn.MaxPool2d(4), nn.Conv2d(3, 4, 9)),
     "1", "layer 1 (Conv2d) expects 3xHxW (kernel 9x9) but gets 3x8x8: Calculated padded input size"),
    # a failure in a block's own code (not in a leaf) is pinned on the block
    (nn.Sequential(nn.Conv2d(3, 3, 1), _BadBlock(), nn.Flatten()),
     "1", "layer 1 (_BadBlock) fails on input 3x32x32: The size of tensor a (3) must match the size of tensor b (8)"),
])
def test_error_findings_for_modules_that_do_not_run(model, layer, text):
    report = inspect_model(model)
    assert not report.ok
    (err,) = report.errors
    assert err.layer == layer and text in err.message and "\n" not in err.message
    assert report.rows[-1].name == layer and not report.rows[-1].ok and report.output_shape is None
    assert "FAILS" in report.format_table()


@pytest.mark.parametrize("model, code", [
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)), "bn-after-activation"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.2), nn.BatchNorm2d(4)), "dropout-before-bn"),
    (nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.MaxPool2d(8), nn.Conv2d(4, 4, 1)), "spatial-collapse"),
    (nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)), "linear-dominates"),
])
def test_each_warning(model, code):
    report = inspect_model(model)
    assert report.ok
    assert [f.code for f in report.warnings] == [code]


def test_sources(tmp_path):
    report = inspect_model(EXAMPLES / "custom.yaml")
    assert report.ok and report.output_shape == (10,) and not report.warnings
    assert report.model_name == "custom.yaml" and report.residuals == [("res1", 7, 11)]
    assert [r.name for r in report.rows[7:12]] == ["res1.conv3", "res1.bn3", "res1.silu1", "res1.conv4", "res1.bn4"]
    broken = inspect_model(str(EXAMPLES / "broken.yaml"))
    assert [(f.layer, f.message) for f in broken.errors] == [("fc1", (
        "layer 10 (linear fc1): in-features 4096 do not match the incoming 512x2x2=2048; in-features 2048 would fit"))]
    named = tmp_path / "named.yaml"
    named.write_text("model:\n  name: seedlike\n  args: {conv: 3}\n")
    assert inspect_model(named).model_name == "seedlike" and inspect_model(named).output_shape == (10,)
    inline = {"model": {"name": "tiny", "layers": ["flatten", {"linear": {"out": 3}}]}}
    assert inspect_model(inline).model_name == "tiny" and inspect_model(inline).params == 3 * 3072 + 3
    assert inspect_model(load("seed")).params == 2_753_546  # a Config
    assert inspect_model(["flatten", {"linear": {"out": 2}}], input_shape=(1, 4, 4)).params == 34
    cfg = load("seed", model__name="seedlike", model__args={"conv": 2, "fc": 1})
    weights = tmp_path / "w.safetensors"
    save_weights(weights, build_model(cfg.model), cfg, [str(i) for i in range(10)])
    assert inspect_model(weights).params == sum(p.numel() for p in build_model(cfg.model).parameters())


def test_diagram(tmp_path):
    report = inspect_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3600, 2)))
    assert draw_diagram(report, tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    svg = draw_diagram(inspect_model(EXAMPLES / "custom.yaml"), tmp_path / "d.svg").read_text()
    assert "<svg" in svg and "res1" in svg and "128x8x8" in svg  # the skip's label, an edge's shape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "d.svg"]  # no temporary files left


def test_cli(tmp_path, capsys):
    assert main(["inspect", "seed"]) == 0
    out = capsys.readouterr().out
    assert "params 2,753,546" in out and "MACs/image 403,147,264 (403.1 M)" in out
    assert main(["inspect", "seed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 2_753_546
    assert main(["inspect", "seedlike", "--input", "3x64x64", "--batch", "8", "--diagram",
                 str(tmp_path / "r.svg")]) == 0
    assert "input 8x3x64x64" in capsys.readouterr().out and (tmp_path / "r.svg").is_file()
    assert main(["inspect", str(EXAMPLES / "broken.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("cifarlab inspect: error: layer 10 (linear fc1)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- conv: {out: 8, kernel: 3}\n- pool: {kernel: 2}\n")
    assert main(["inspect", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"cifarlab inspect: error: {bad}: layer 2: unknown layer type 'pool'")
    for args, text in [(["nosuchmodel"], "unknown model 'nosuchmodel'"),
                       (["seed", "--input", "3x32"], "layer conv1 (Conv2d) expects 3xHxW (kernel 3x3) but gets 3x32"),
                       (["seed", "--input", "3xAx32"], "expected CxHxW"),
                       (["seed", "--batch", "0"], "batch must be a positive integer")]:
        assert main(["inspect", *args]) == 2, args
        assert text in capsys.readouterr().err


def test_recorded_activation_names_every_kind_the_design_checks_know():
    from cifarlab.inspection.arch import describe_arch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU6(), torch.nn.Conv2d(4, 4, 3),
                                torch.nn.Hardswish(), torch.nn.Flatten(), torch.nn.Linear(4 * 28 * 28, 10))
    arch = describe_arch(model)
    assert arch["activation"] == "ReLU6/Hardswish" and arch["conv"] == 2 and arch["fc"] == 1
