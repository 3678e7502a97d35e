"""Deterministic, class-stratified splits and subsets, and a run's splits on its device.

Randomness comes only from ``numpy.random.Generator(PCG64(seed))``, whose
stream numpy keeps stable across versions and platforms, never from global
state: the same labels, size and seed give the same indices everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cifarlab.config import Config
from cifarlab.data.loader import to_device_images
from cifarlab.errors import ConfigError


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over classes in proportion to ``counts``; leftovers go to the largest remainders."""
    exact = counts / counts.sum() * n
    share = np.floor(exact).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -(exact - share)))  # ties go to the lower class index
    share[order[: n - share.sum()]] += 1
    return share


def _stratified_pick(indices: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(seed))
    of_indices = labels[indices]
    classes, counts = np.unique(of_indices, return_counts=True)
    picked = [rng.permutation(indices[of_indices == c])[:k] for c, k in zip(classes, _allocate(counts, n))]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def split_train_val(labels: np.ndarray, val_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: sorted int64 indices, with ``val_size`` images held out per class share.

    Each class gives ``val_size`` times its share of ``labels`` (``val_size/10`` each on CIFAR-10).
    """
    labels = np.asarray(labels)
    everything = np.arange(len(labels), dtype=np.int64)
    if not 0 <= val_size < len(labels):
        raise ConfigError(f"validation size must be between 0 and {len(labels) - 1} for {len(labels)} training "
                          f"images, got {val_size}")
    val = _stratified_pick(everything, labels, val_size, seed)
    return np.setdiff1d(everything, val), val


def stratified_subset(indices: np.ndarray, labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` of ``indices`` (sorted int64), each class keeping its share; all of them if ``n >= len(indices)``.

    ``labels`` is indexed by the values in ``indices`` (the whole label array, as for :func:`split_train_val`).
    """
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    if n < 0:
        raise ConfigError(f"subset size must be at least 0, got {n}")
    if n >= len(indices):
        return indices
    return _stratified_pick(indices, np.asarray(labels), n, seed)


@dataclass
class Split:
    """One split on the device: uint8 NCHW images, int64 labels, and their positions in the dataset."""

    name: str  # train | val | test
    images: torch.Tensor
    labels: torch.Tensor
    index: np.ndarray  # positions in the dataset's training images (train, val) or test images (test)
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Splits:
    """A run's train, validation and test splits, and where the images came from."""

    train: Split
    val: Split | None
    test: Split
    classes: list[str]
    source: str


def prepare_splits(cfg: Config, data, device: torch.device) -> Splits:
    """Split ``data`` into train/validation (stratified, fixed) and subsample; move to ``device``.

    The split does not depend on ``train.seed``: runs with different seeds are
    compared on the same validation images.
    """
    labels = data.train_labels
    train_idx, val_idx = split_train_val(labels, cfg.data.val_size, seed=0)
    if cfg.data.max_train_images is not None and cfg.data.max_train_images < len(train_idx):
        train_idx = stratified_subset(train_idx, labels, cfg.data.max_train_images, seed=0)
    test_idx = np.arange(len(data.test_labels))
    if cfg.data.max_test_images is not None:
        test_idx = stratified_subset(test_idx, data.test_labels, cfg.data.max_test_images, seed=0)
    classes = list(data.classes)

    def put(name: str, images: np.ndarray, y: np.ndarray, index: np.ndarray) -> Split:
        return Split(name, to_device_images(images[index], device),
                     torch.from_numpy(np.asarray(y[index], dtype=np.int64)).to(device), index, classes)

    return Splits(
        train=put("train", data.train_images, labels, train_idx),
        val=put("val", data.train_images, labels, val_idx) if len(val_idx) else None,
        test=put("test", data.test_images, data.test_labels, test_idx),
        classes=classes,
        source=data.source,
    )
