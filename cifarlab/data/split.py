"""Deterministic, class-stratified splits and subsets."""

from __future__ import annotations

import numpy as np

from cifarlab.errors import ConfigError


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over classes in proportion to ``counts`` (largest remainders get the leftovers)."""
    exact = counts / counts.sum() * n
    share = np.floor(exact).astype(np.int64)
    leftover = n - share.sum()
    order = np.lexsort((np.arange(len(counts)), -(exact - share)))  # stable tie-break by class index
    share[order[:leftover]] += 1
    return share


def _stratified_pick(indices: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(seed))
    classes, counts = np.unique(labels[indices], return_counts=True)
    picked = [rng.permutation(indices[labels[indices] == c])[:k]
              for c, k in zip(classes, _allocate(counts, n))]
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64)


def split_train_val(labels: np.ndarray, val_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: a class-stratified validation split of ``val_size`` images.

    The same labels, size and seed give the same split on every machine.
    """
    labels = np.asarray(labels)
    everything = np.arange(len(labels), dtype=np.int64)
    if not 0 <= val_size < len(labels):
        raise ConfigError(f"key 'data.val_size' must be between 0 and {len(labels) - 1} for this dataset, "
                          f"got {val_size}")
    val = _stratified_pick(everything, labels, val_size, seed).astype(np.int64)
    return np.setdiff1d(everything, val), val


def stratified_subset(indices: np.ndarray, labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A class-stratified deterministic subset of ``n`` of ``indices`` (sorted)."""
    indices = np.asarray(indices, dtype=np.int64)
    if n >= len(indices):
        return indices
    return _stratified_pick(indices, np.asarray(labels), n, seed).astype(np.int64)
