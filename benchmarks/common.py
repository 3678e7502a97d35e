"""Shared pieces of the benchmark scripts: machine facts and the data they run on."""

from __future__ import annotations

import numpy as np

# Machine facts live in the package, where `cifarlab sweep --dry-run` names the machine of its estimate too.
from cifarlab.devices import CPU_FLAGS, cpu_flags, cpu_flags_line, cpu_model, machine  # noqa: F401


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
