"""benchmarks/gpu_check.py's decisions, on the CPU: precision from compute capability, the time budget, the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from cifarlab.devices import cuda_native_bf16

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
_spec = importlib.util.spec_from_file_location("gpu_check", _PATH)
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check
_spec.loader.exec_module(gpu_check)


@pytest.mark.parametrize("capability, native", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((8, 6), True),
                                                ((8, 9), True), ((9, 0), True), ((10, 0), True)])
def test_bf16_is_native_from_compute_capability_8_0(capability, native):
    # 7.5 is the T4, where torch.cuda.is_bf16_supported() says yes by emulation
    assert cuda_native_bf16(capability) is native
    assert gpu_check.precision_for(capability) == ("bf16" if native else "fp32")


def test_dry_run_on_the_cpu_is_fp32():
    assert gpu_check.precision_for(None) == "fp32"


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_budget_counts_down_and_says_what_fits():
    clock = _Clock()
    budget = gpu_check.Budget(480, clock=clock)
    assert budget.fits(480) and not budget.fits(481)
    clock.now = 400
    assert budget.elapsed() == 400 and budget.left() == 80
    assert budget.fits(80) and not budget.fits(81)


def test_seeds_that_do_not_fit_are_skipped_and_named_without_training(monkeypatch):
    clock = _Clock()
    budget = gpu_check.Budget(100, clock=clock)
    trained = []

    def fake_train(preset, data, budget_, cuda, overrides):
        trained.append(overrides["train__seed"])
        clock.now += 40
        return {"test_acc": 0.9 + overrides["train__seed"] / 100, "train_seconds": 30.0, "run_seconds": 40.0,
                "compile_seconds": 0.5}

    monkeypatch.setattr(gpu_check, "train_once", fake_train)
    row, estimate = gpu_check.train_rows("fast x5 seeds", "fast", [0, 1, 2, 3, 4], None, budget, False, {}, 40.0)
    assert trained == [0, 1]  # 80 s used: a third 40 s run no longer fits in the 20 s left
    assert row.runs == 2 and row.ok and estimate == 40.0
    assert "seed(s) 2, 3, 4 skipped" in row.note and "20 s left" in row.note
    assert row.stats("test_acc") == pytest.approx({"mean": 0.905, "min": 0.90, "max": 0.91})


def test_a_run_stopped_by_the_budget_and_a_broken_run_are_told_apart(monkeypatch):
    def out_of_time(*args):
        raise gpu_check._OutOfTime(7)

    monkeypatch.setattr(gpu_check, "train_once", out_of_time)
    row, _ = gpu_check.train_rows("seed, 20 epochs", "seed", [0], None, gpu_check.Budget(10), False, {}, None)
    assert row.ok and row.runs == 0 and "stopped after epoch 7" in row.note

    def broken(*args):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")

    monkeypatch.setattr(gpu_check, "train_once", broken)
    row, _ = gpu_check.train_rows("fast x5 seeds", "fast", [0, 1], None, gpu_check.Budget(10), False, {}, None)
    assert not row.ok and row.note == "seed 0: RuntimeError: CUDA error: an illegal memory access was encountered"


def test_table_has_a_line_per_check_with_its_figures():
    rows = [gpu_check.Row("fast x5 seeds", runs=2, test_acc=[0.94, 0.9412], train_seconds=[3.0, 3.2],
                          run_seconds=[5.0, 5.5], compile_seconds=[0.4, 0.4]),
            gpu_check.Row("seed, 20 epochs", note="seed 0 stopped after epoch 3: the budget ran out"),
            gpu_check.Row("CUDA tests (pytest -m cuda)", runs=3, ok=False, note="2 passed, 1 failed")]
    lines = gpu_check.format_table(rows).splitlines()
    assert len(lines) == 4 and lines[0].startswith("check")
    assert lines[1].split()[3:11] == ["2", "94.06%", "94.00%", "94.12%", "3.10", "5.25", "0.40"]
    assert lines[2].endswith("seed 0 stopped after epoch 3: the budget ran out") and "FAILED" not in lines[2]
    assert "FAILED 2 passed, 1 failed" in lines[3]
