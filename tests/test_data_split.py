"""Validation splits and subsets: class-stratified, deterministic, disjoint."""

from __future__ import annotations

import numpy as np
import pytest

from cifarlab.data import split_train_val, stratified_subset
from cifarlab.errors import ConfigError


@pytest.fixture
def labels():
    """1,000 shuffled labels, 100 per class."""
    labels = np.repeat(np.arange(10), 100)
    np.random.default_rng(0).shuffle(labels)
    return labels


def test_split_is_stratified_disjoint_complete_and_sorted(labels):
    train, val = split_train_val(labels, 200)
    assert np.bincount(labels[val], minlength=10).tolist() == [20] * 10
    assert np.bincount(labels[train], minlength=10).tolist() == [80] * 10
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.union1d(train, val), np.arange(1000))
    for idx in (train, val):
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)


def test_split_is_deterministic_and_depends_on_the_seed(labels):
    train, val = split_train_val(labels, 200)
    again_train, again_val = split_train_val(labels.copy(), 200)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    np.random.seed(123)  # global numpy state must not matter
    assert np.array_equal(split_train_val(labels, 200)[1], val)
    assert not np.array_equal(split_train_val(labels, 200, seed=1)[1], val)


def test_split_is_pinned_across_versions():
    # Guards reproducibility across numpy/cifarlab versions: this split must never change.
    labels = np.arange(40) % 10
    assert split_train_val(labels, 10, seed=0)[1].tolist() == [3, 4, 7, 9, 12, 20, 25, 26, 31, 38]


def test_uneven_sizes_and_classes_get_proportional_shares(labels):
    _, val = split_train_val(labels, 25)
    counts = np.bincount(labels[val], minlength=10)
    assert counts.sum() == 25 and set(counts.tolist()) == {2, 3}
    skewed = np.concatenate([np.zeros(300, int), np.ones(100, int)])
    _, val = split_train_val(skewed, 40)
    assert np.bincount(skewed[val]).tolist() == [30, 10]


def test_zero_val_keeps_everything_for_training(labels):
    train, val = split_train_val(labels, 0)
    assert np.array_equal(train, np.arange(1000)) and val.shape == (0,) and val.dtype == np.int64


@pytest.mark.parametrize("size", [-1, 1000, 5000])
def test_impossible_val_size_is_a_config_error(labels, size):
    with pytest.raises(ConfigError, match=f"validation size must be between 0 and 999 .*got {size}"):
        split_train_val(labels, size)


def test_stratified_subset(labels):
    train, _ = split_train_val(labels, 200)
    sub = stratified_subset(train, labels, 50)
    assert len(sub) == 50 and sub.dtype == np.int64 and np.all(np.diff(sub) > 0)
    assert np.bincount(labels[sub], minlength=10).tolist() == [5] * 10
    assert np.isin(sub, train).all()
    assert np.array_equal(sub, stratified_subset(train, labels, 50))
    assert not np.array_equal(sub, stratified_subset(train, labels, 50, seed=3))
    assert np.array_equal(stratified_subset(train, labels, 10_000), train)
    assert stratified_subset(train, labels, 0).shape == (0,)
    with pytest.raises(ConfigError):
        stratified_subset(train, labels, -5)
