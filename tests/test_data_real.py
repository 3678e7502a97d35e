"""The shared JPEG copy of CIFAR-10 (``../shared/data/cifar10-jpeg.tar.gz``) loads completely."""

from __future__ import annotations

import numpy as np
import pytest

from cifarlab.data import CLASSES, load_dataset


@pytest.mark.slow
def test_real_shared_copy_loads_completely(shared_cifar):
    data = load_dataset(shared_cifar, progress=False)
    assert data.train_images.shape == (50000, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 32, 32, 3) and data.test_images.dtype == np.uint8
    assert np.bincount(data.train_labels).tolist() == [5000] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
    assert data.classes == CLASSES
    assert data.source == f"ImageFolder archive {shared_cifar}"
    # CIFAR-10's well-known per-channel training means: the pixels are right, and in RGB order.
    means = data.train_images.reshape(-1, 3).mean(axis=0) / 255
    assert np.allclose(means, [0.4914, 0.4822, 0.4465], atol=0.005), means
