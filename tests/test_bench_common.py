"""benchmarks/common.py: the CPU flags every benchmark prints, read from /proc/cpuinfo text."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from common import cpu_flags, cpu_flags_line  # noqa: E402

ZEN4 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 avx512f avx512bw avx512_bf16 fma\n"
ZEN3 = "processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"


def test_flags_read_from_the_kernels_list():
    assert cpu_flags(ZEN4) == {"AVX2": True, "AVX-512": True, "AVX-512 BF16": True, "AMX": False}
    assert cpu_flags(ZEN3) == {"AVX2": True, "AVX-512": False, "AVX-512 BF16": False, "AMX": False}
    assert cpu_flags(SAPPHIRE_RAPIDS)["AMX"] is True


def test_a_flag_is_matched_whole_not_as_a_prefix():
    # avx512f must not be read from avx512fp16 alone, nor avx2 from avx20
    assert cpu_flags("flags\t: avx512fp16 avx20\n") == {"AVX2": False, "AVX-512": False, "AVX-512 BF16": False,
                                                       "AMX": False}


def test_flags_line_names_every_flag():
    assert cpu_flags_line(cpu_flags(ZEN3)) == "AVX2 yes, AVX-512 no, AVX-512 BF16 no, AMX no"
