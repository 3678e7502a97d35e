"""Training and evaluation on a CUDA GPU: run by `benchmarks/gpu_check.py` (pytest -m cuda), skipped elsewhere."""

from __future__ import annotations

import pytest
import torch
from skips import needs_cuda

import cifarlab
from cifarlab.devices import cuda_native_bf16, native_bf16, resolve_device

pytestmark = [pytest.mark.cuda, needs_cuda]  # the one skip CI allows: its machines have no GPU

SMALL = dict(progress=False, verbose=False, train__epochs=2, train__batch_size=50, data__val_size=50)


def test_auto_device_is_the_gpu_and_bf16_follows_its_compute_capability():
    device = resolve_device("auto")
    assert device.type == "cuda"
    assert native_bf16(device) is cuda_native_bf16(torch.cuda.get_device_capability(device))


def test_fast_preset_compiles_and_learns_on_the_gpu(tiny_imagefolder, tmp_path):
    data = cifarlab.load_dataset(tiny_imagefolder)
    result = cifarlab.train("fast", out_dir=tmp_path / "run", data=data, **SMALL)
    summary = result.summary
    assert summary["device"].startswith("cuda") and result.config.train.compile
    expected = "bf16" if cuda_native_bf16(torch.cuda.get_device_capability()) else "fp32"
    assert summary["precision"] == expected
    assert summary["test_acc"] > 0.5  # ten separable colour classes: chance is 0.1


def test_gpu_and_cpu_evaluations_of_the_same_weights_agree(tiny_imagefolder, tmp_path):
    data = cifarlab.load_dataset(tiny_imagefolder)
    result = cifarlab.train("fast-cpu", out_dir=tmp_path / "run", data=data, train__device="cuda",
                            train__precision="fp32", **SMALL)
    on_gpu = cifarlab.evaluate(result.run_dir, data=tiny_imagefolder, device="cuda")
    on_cpu = cifarlab.evaluate(result.run_dir, data=tiny_imagefolder, device="cpu")
    assert on_gpu.accuracy == pytest.approx(on_cpu.accuracy, abs=1 / len(data.test_labels))
