"""Deterministic, class-stratified splits and subsets.

Randomness comes only from ``numpy.random.Generator(PCG64(seed))``, whose
stream numpy keeps stable across versions and platforms, never from global
state: the same labels, size and seed give the same indices everywhere.
"""

from __future__ import annotations

import numpy as np

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

    Each class gives ``val_size`` times its share of ``labels`` (``val_size/10``
    each on CIFAR-10). ``val_size=0`` keeps everything for training.
    """
    labels = np.asarray(labels)
    everything = np.arange(len(labels), dtype=np.int64)
    if not 0 <= val_size < len(labels):
        raise ConfigError(f"validation size must be between 0 and {len(labels) - 1} for {len(labels)} training "
                          f"images, got {val_size}")
    if val_size == 0:
        return everything, np.empty(0, dtype=np.int64)
    val = _stratified_pick(everything, labels, val_size, seed)
    return np.setdiff1d(everything, val), val


def stratified_subset(indices: np.ndarray, labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` of ``indices`` (sorted int64), each class keeping its share; all of them if ``n >= len(indices)``.

    ``labels`` is indexed by the values in ``indices`` (the whole label array,
    as for :func:`split_train_val`'s output).
    """
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    if n < 0:
        raise ConfigError(f"subset size must be at least 0, got {n}")
    if n >= len(indices):
        return indices
    if n == 0:
        return np.empty(0, dtype=np.int64)
    return _stratified_pick(indices, np.asarray(labels), n, seed)
