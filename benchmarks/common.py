"""Shared pieces of the benchmark scripts: machine facts and the data they run on."""

from __future__ import annotations

import os
import platform

import numpy as np
import torch


# The instruction sets that decide CPU training speed: AVX2 is the fp32 floor,
# AVX-512 doubles the vector width, and AVX-512 BF16 or AMX make bf16 native
# (the fast presets' precision: auto); /proc/cpuinfo's names for each.
CPU_FLAGS = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "AVX-512 BF16": ("avx512_bf16",),
             "AMX": ("amx_tile", "amx_bf16")}


def cpu_flags(cpuinfo: str | None = None) -> dict[str, bool]:
    """Which of :data:`CPU_FLAGS` the CPU has, from ``/proc/cpuinfo`` text (read when not given).

    Where there is no ``/proc/cpuinfo`` (macOS, Windows), torch's own probes answer.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
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
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> str:
    """One line naming the machine, its CPU flags that matter, the kernels in use, torch build and threads.

    The kernels can be held below what the CPU has (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``), to stand
    in for an older CPU; the line says so, since the flags alone would then mislead.
    """
    from cifarlab.devices import onednn_isa_cap

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    cap = onednn_isa_cap()
    kernels = f"ATen kernels {torch.backends.cpu.get_cpu_capability()}" + (f", oneDNN capped at {cap}" if cap else "")
    return (f"{cpu_model()}, {os.cpu_count()} cores ({cpu_flags_line()}; {kernels}), torch {torch.__version__} "
            f"({torch.get_num_threads()} threads){gpu}, Python {platform.python_version()}")


def load_images(path: str | None, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` training images and labels from ``path`` (cached), or random ones when no path is given."""
    if path:
        from cifarlab.data import load_dataset

        data = load_dataset(path, progress=False)
        return data.train_images[:n], data.train_labels[:n], f"CIFAR-10 from {path}"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return images, rng.integers(0, 10, n).astype(np.int64), "random synthetic images"


def synthetic_dataset(n_train: int = 1000, n_test: int = 500, seed: int = 0):
    """A small learnable stand-in for CIFAR-10 (each class a colour plus noise), for ``--quick`` runs."""
    from cifarlab.data import CifarData

    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, (10, 3))

    def make(n):
        labels = np.arange(n) % 10
        noise = rng.normal(0, 30, (n, 32, 32, 3))
        return np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8), labels.astype(np.int64)

    (xtr, ytr), (xte, yte) = make(n_train), make(n_test)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return CifarData(xtr, ytr, xte, yte, classes, source="synthetic colour classes", fingerprint="synthetic")
