"""Which device a run computes on, and in which precision."""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

import torch

from cifarlab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("key 'train.device' is 'cuda' but no CUDA device is available (use auto or cpu)")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware, where bf16 autocast is a speed-up.

    On a CPU that means AVX-512 BF16 or AMX instructions (oneDNN's bf16 kernels
    run there about 1.6x faster than fp32; elsewhere they are emulated, slower),
    and oneDNN allowed to use them (see :func:`onednn_isa_cap`).
    """
    if device.type == "cuda":
        return cuda_native_bf16(torch.cuda.get_device_capability(device))
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    cap = onednn_isa_cap()
    allowed = cap is None or cap.startswith(("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10"))
    return device.type == "cpu" and allowed and any(probe is not None and probe() for probe in probes)


def onednn_isa_cap() -> str | None:
    """The instruction set oneDNN is capped at by ``ONEDNN_MAX_CPU_ISA`` (upper case), or None when uncapped.

    ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` makes a newer CPU run the kernels an AVX2-only one
    runs (without hardware bf16): the stand-in for such a machine, so ``precision: auto`` must then choose fp32.
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return None if cap in ("", "ALL", "DEFAULT") else cap


def cuda_native_bf16(capability: tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability has bf16 tensor cores: Ampere (8.0) and later.

    Decided from the capability, not ``torch.cuda.is_bf16_supported()``, which
    says yes on a T4 (7.5) where bf16 is emulated and slower than fp32.
    """
    return tuple(capability) >= (8, 0)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` on ``device``: bf16, or None for plain fp32."""
    if name == "bf16" or (name == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """A forward pass's precision on ``device``: autocast to ``dtype`` (:func:`resolve_precision`), off for None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work: CUDA runs ahead of the host, so a time taken before this is not the work's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# The instruction sets that decide CPU training speed: AVX2 is the fp32 floor,
# AVX-512 doubles the vector width, and AVX-512 BF16 or AMX make bf16 native
# (the fast presets' precision: auto); /proc/cpuinfo's names for each.
CPU_FLAGS = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "AVX-512 BF16": ("avx512_bf16",),
             "AMX": ("amx_tile", "amx_bf16")}


@functools.cache
def _cpuinfo() -> str:
    """``/proc/cpuinfo``, read once per process ("" where there is none: macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> dict[str, bool]:
    """Which of :data:`CPU_FLAGS` the CPU has, from ``/proc/cpuinfo`` text (read when not given).

    Where there is no ``/proc/cpuinfo`` (macOS, Windows), torch's own probes answer.
    """
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    flags_line = next((line for line in cpuinfo.splitlines() if line.startswith(("flags", "Features"))), None)
    if flags_line is not None:
        present = set(flags_line.split(":", 1)[1].split())
        return {name: any(flag in present for flag in names) for name, names in CPU_FLAGS.items()}
    probes = {"AVX2": "_is_avx2_supported", "AVX-512": "_is_avx512_supported",
              "AVX-512 BF16": "_is_avx512_bf16_supported", "AMX": "_is_amx_tile_supported"}
    return {name: bool(getattr(torch.cpu, probe, lambda: False)()) for name, probe in probes.items()}


def cpu_flags_line(flags: dict[str, bool] | None = None) -> str:
    """``AVX2 yes, AVX-512 yes, AVX-512 BF16 yes, AMX no``."""
    flags = cpu_flags() if flags is None else flags
    return ", ".join(f"{name} {'yes' if has else 'no'}" for name, has in flags.items())


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what Python's platform module knows."""
    names = (line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name"))
    return next(names, None) or platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """What a timing here depends on: the CPU, its cores and flags, the kernels in use, torch and its threads, the
    GPU, Python. The kernels can be held below what the CPU has (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``)
    to stand in for an older CPU, so they are facts of their own: the flags alone would then mislead."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_flags": cpu_flags(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "onednn_isa_cap": onednn_isa_cap(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "python": platform.python_version()}


def machine() -> str:
    """:func:`machine_facts` in one line, the one every benchmark prints."""
    facts = machine_facts()
    cap, gpu = facts["onednn_isa_cap"], facts["gpu"]
    kernels = f"ATen kernels {facts['cpu_capability']}" + (f", oneDNN capped at {cap}" if cap else "")
    return (f"{facts['cpu']}, {facts['cores']} cores ({cpu_flags_line(facts['cpu_flags'])}; {kernels}), torch "
            f"{facts['torch']} ({facts['torch_threads']} threads){', GPU ' + gpu if gpu else ''}, "
            f"Python {facts['python']}")
