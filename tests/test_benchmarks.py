"""The benchmark scripts run end to end in their --quick mode, so they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
pytestmark = pytest.mark.slow  # each test runs a script in its own process


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick", *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "machine:" in done.stdout and "torch" in done.stdout
    return done.stdout


def test_throughput_reports_both_pipelines_and_ratios():
    out = _run("throughput.py")
    assert re.search(r"ratio training \(b\)/\(a\): [\d.]+x\s+ratio data path: [\d.]+x", out)


def test_time_to_accuracy_reaches_a_reachable_target():
    out = _run("time_to_accuracy.py", "--target", "0.5")
    assert "seeds reaching the target: 1/1" in out
    assert re.search(r"ratio seed-recipe projected time / fast-cpu mean wall time: [\d.]+x", out)


def test_inference_compares_eager_and_onnxruntime():
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    out = _run("inference.py")
    assert len(re.findall(r"^(seed|fast-cpu)\s+(1|256)\s.*x$", out, flags=re.M)) == 4


def test_inspect_speed_compares_inspect_with_building_by_hand():
    out = _run("inspect_speed.py")
    assert "baseline: build the network + one eager forward pass" in out
    assert len(re.findall(r"^(seed|custom\.yaml)\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+x$", out, flags=re.M)) == 2
