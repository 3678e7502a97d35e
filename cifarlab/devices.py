"""Which device a run computes on, and in which precision."""

from __future__ import annotations

import os

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
