"""Where a run's data lives: the device, and the train/validation/test splits on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cifarlab.config import Config
from cifarlab.data.loader import to_device_images
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
    run there about 1.6x faster than fp32; elsewhere they are emulated, slower).
    """
    if device.type == "cuda":
        return cuda_native_bf16(torch.cuda.get_device_capability(device))
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return device.type == "cpu" and any(probe is not None and probe() for probe in probes)


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


@dataclass
class Splits:
    """Train, validation and test images (uint8, NCHW) and labels on the training device."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    test: tuple[torch.Tensor, torch.Tensor]
    test_index: np.ndarray  # positions of the test images in the dataset's test set
    classes: list[str]
    source: str


def prepare_splits(cfg: Config, data, device: torch.device) -> Splits:
    """Split ``data`` into train/validation (stratified, fixed) and subsample; move to ``device``.

    The split does not depend on ``train.seed``: runs with different seeds are
    compared on the same validation images.
    """
    from cifarlab.data import split_train_val, stratified_subset

    labels = data.train_labels
    train_idx, val_idx = split_train_val(labels, cfg.data.val_size, seed=0)
    if cfg.data.max_train_images is not None and cfg.data.max_train_images < len(train_idx):
        train_idx = stratified_subset(train_idx, labels, cfg.data.max_train_images, seed=0)

    def put(images: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return to_device_images(images, device), torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)

    test_idx = np.arange(len(data.test_labels))
    if cfg.data.max_test_images is not None:
        test_idx = stratified_subset(test_idx, data.test_labels, cfg.data.max_test_images, seed=0)
    val = put(data.train_images[val_idx], labels[val_idx]) if len(val_idx) else None
    return Splits(
        train=put(data.train_images[train_idx], labels[train_idx]),
        val=val,
        test=put(data.test_images[test_idx], data.test_labels[test_idx]),
        test_index=test_idx,
        classes=list(data.classes),
        source=data.source,
    )
