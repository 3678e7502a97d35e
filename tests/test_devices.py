"""Device and precision resolution."""

from __future__ import annotations

import pytest
import torch
from hardware import cpu_computes_bf16
from skips import not_applicable

from cifarlab import config as c
from cifarlab.errors import ConfigError
from cifarlab import devices
from cifarlab.devices import native_bf16, resolve_device, resolve_precision

CPU = torch.device("cpu")


def test_explicit_precisions_are_taken_as_they_are():
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision("bf16", CPU) is torch.bfloat16


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_only_where_the_hardware_computes_it(monkeypatch, native):
    monkeypatch.setattr(devices, "native_bf16", lambda device: native)
    assert resolve_precision("auto", CPU) is (torch.bfloat16 if native else None)


def test_cpu_bf16_follows_the_instruction_set_probes(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert native_bf16(CPU) is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert native_bf16(CPU) is True


def test_cpu_bf16_is_off_where_onednn_is_capped_below_it(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    for cap, native in [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True), ("DEFAULT", True)]:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert native_bf16(CPU) is native, cap
        assert resolve_precision("auto", CPU) is (torch.bfloat16 if native else None)


def test_cpu_bf16_matches_the_flags_the_kernel_reports(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert native_bf16(CPU) is cpu_computes_bf16()
    assert resolve_precision("auto", CPU) is (torch.bfloat16 if cpu_computes_bf16() else None)


def test_precision_choices_and_unknown_value_names_the_key():
    assert c.load("fast-cpu").train.precision == "auto"
    with pytest.raises(ConfigError, match="train.precision"):
        c.load("seed", train__precision="fp16")


def test_cuda_without_a_gpu_is_a_config_error():
    if torch.cuda.is_available():
        not_applicable("this machine has a GPU; the error is for machines without one")
    with pytest.raises(ConfigError, match="train.device"):
        resolve_device("cuda")
    assert resolve_device("auto") == CPU
