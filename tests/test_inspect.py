"""inspect_model: per-layer shapes, totals, MACs against torch's flop counter, findings and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from cifarlab.cli import main
from cifarlab.inspection import draw_diagram, inspect_model
from cifarlab.models import create_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_seed_totals_and_rows():
    inspect_model("seed")  # warm-up (first forward allocates thread pools)
    start = time.perf_counter()
    report = inspect_model("seed")
    assert time.perf_counter() - start < 1.0
    assert report.params == 2_753_546 and report.params_frozen == 0
    assert report.macs == 403_147_264
    assert report.output_shape == (10,)
    rows = {r.name: r for r in report.rows}
    assert rows["conv2"].output_shape == (64, 16, 16) and rows["pool"].output_shape == (512, 2, 2)
    assert rows["fc1"].macs == 2048 * 512
    assert report.activation_mb == pytest.approx(sum(r.activation_bytes for r in report.rows) / 1e6)
    assert inspect_model("seed", batch=4).activation_mb == pytest.approx(4 * report.activation_mb)
    assert report.ok and [f.code for f in report.warnings] == ["bn-after-activation"]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["totals"]["macs_per_image"] == 403_147_264
    assert "conv5" in report.format_table() and "<table>" in report._repr_html_()


def test_resnet18_macs_match_flop_counter():
    report = inspect_model("resnet18")
    assert report.params == 11_173_962
    model = create_model("resnet18").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert counter.get_total_flops() == 2 * report.macs
    assert not report.findings  # global pool before the head is by design; BN before ReLU


def test_frozen_params_and_module_input():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    model[0].weight.requires_grad_(False)
    report = inspect_model(model, input_shape="3x8x8", batch=2)
    assert report.params_frozen == 108 and report.params_trainable == 4 + 144 * 2 + 2
    assert report.rows[0].macs == 6 * 6 * 4 * 3 * 9


def test_error_finding_for_a_module_that_does_not_run():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    report = inspect_model(model)
    assert not report.ok
    (err,) = report.errors
    assert err.layer == "3" and "expects in-features 64 but gets 32; in-features 32 would fit" in err.message
    assert report.rows[-1].name == "3" and not report.rows[-1].ok


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


def test_config_and_layer_list_files(tmp_path):
    report = inspect_model(EXAMPLES / "custom.yaml")
    assert report.ok and report.output_shape == (10,) and not report.warnings
    broken = inspect_model(str(EXAMPLES / "broken.yaml"))
    assert [f.message for f in broken.errors] == [
        "layer 10 (linear fc1): in-features 4096 do not match the incoming 512x2x2=2048; in-features 2048 would fit"]
    named = tmp_path / "named.yaml"
    named.write_text("model:\n  name: seedlike\n  args: {conv: 3}\n")
    assert inspect_model(named).output_shape == (10,)


def test_diagram(tmp_path):
    report = inspect_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3600, 2)))
    assert draw_diagram(report, tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in draw_diagram(report, tmp_path / "d.svg").read_bytes()
    assert list(tmp_path.iterdir()) and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_cli(tmp_path, capsys):
    assert main(["inspect", "seed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 2_753_546
    assert main(["inspect", "resnet18", "--input", "3x64x64", "--batch", "8", "--diagram",
                 str(tmp_path / "r.svg")]) == 0
    assert (tmp_path / "r.svg").is_file()
    capsys.readouterr()
    assert main(["inspect", str(EXAMPLES / "broken.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("cifarlab inspect: error: layer 10 (linear fc1)")
    assert main(["inspect", "nosuchmodel"]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err
