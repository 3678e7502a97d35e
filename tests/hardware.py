"""What this machine's CPU computes natively, read from /proc/cpuinfo: independent of cifarlab's own probes."""

from __future__ import annotations

from pathlib import Path

from skips import not_applicable

# The instruction-set extensions that compute bfloat16 (AVX-512 BF16; AMX, whose tiles take bf16).
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_flags() -> set[str]:
    """The kernel's flag list for this CPU; skips the calling test where there is none (not Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        not_applicable("no /proc/cpuinfo: cannot read the CPU flags independently of cifarlab")
    for line in lines:
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    not_applicable("/proc/cpuinfo lists no flags: cannot read the CPU flags independently of cifarlab")


def cpu_computes_bf16() -> bool:
    """Whether the CPU flags include a bfloat16 instruction set."""
    return bool(BF16_FLAGS & cpu_flags())
