"""The benchmark scripts run end to end in their --quick mode, so they cannot rot."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from skips import require_module

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
    require_module("onnxruntime", "export")
    out = _run("inference.py")
    assert len(re.findall(r"^(seed|fast-cpu)\s+(1|256)\s.*x$", out, flags=re.M)) == 4


def test_inspect_speed_compares_inspect_with_building_by_hand():
    out = _run("inspect_speed.py")
    assert "baseline: build the network + one eager forward pass" in out
    assert len(re.findall(r"^(seed|custom\.yaml)\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+x$", out, flags=re.M)) == 2


# About a minute on two idle cores; the limit leaves room for a machine shared with other jobs.
@pytest.mark.timeout(1500)
def test_gpu_check_dry_run_runs_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(BENCH / "gpu_check.py"), "--dry-run", "--seeds", "1",
                           "--tests", "tests/test_cuda.py", "--budget-s", "3000", "--out", str(out)],
                          capture_output=True, text=True, timeout=1400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "machine:" in done.stdout and "AVX-512 BF16" in done.stdout
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["precision"] == "fp32"
    rows = {r["check"]: r for r in result["rows"]}
    assert list(rows) == ["CUDA tests (pytest -m cuda)", "fast warm-up (untimed: compiles)", "fast x1 seeds",
                          "fast, data.val_size=0", "seed, 20 epochs"]
    # without a GPU the CUDA-marked tests are collected and skipped, never failed
    assert rows["CUDA tests (pytest -m cuda)"]["runs"] >= 3 and "0 failed, 0 errors" in rows[
        "CUDA tests (pytest -m cuda)"]["note"]
    for name in ("fast x1 seeds", "fast, data.val_size=0", "seed, 20 epochs"):
        row = rows[name]
        assert row["ok"] and row["runs"] == len(row["test_acc"]) == len(row["run_seconds"]) > 0, name
        assert all(0 <= a <= 1 for a in row["test_acc"]) and all(s > 0 for s in row["train_seconds"])
    assert result["table"] in done.stdout


def test_frontier_quick_plots_fresh_runs_beside_the_references(tmp_path):
    out = _run("frontier.py", "--out", str(tmp_path))
    # the two quick seeds become one measured point; the precision is the machine's (auto)
    assert re.search(r"^\| fast-cpu \((bf16|fp32)\) \|[^|]*\| 2 \| [\d.]+% \(", out, flags=re.M)
    assert re.search(r"^seed recipe measured at [\d.]+ images/s$", out, flags=re.M)
    assert (tmp_path / "frontier.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "frontier.md").read_text() in out
