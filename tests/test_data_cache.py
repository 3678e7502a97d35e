"""The decoded-array cache: hit on the second load, keyed by content, robust to damage."""

from __future__ import annotations

import json
import os
import shutil

import warnings

import numpy as np
import pytest
import synthetic
import torch

from cifarlab.data import cache, imagefolder, load_dataset
from cifarlab.data.loader import to_device_images


@pytest.fixture
def decodes(monkeypatch):
    """Counts the images the ImageFolder reader decodes."""
    count = {"n": 0}
    real = imagefolder.decode_image

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(imagefolder, "decode_image", counting)
    return count


def _same(a, b):
    return all(np.array_equal(getattr(a, n), getattr(b, n))
               for n in ("train_images", "train_labels", "test_images", "test_labels"))


def test_second_load_reads_the_cache_without_decoding(tmp_path, decodes, isolated_cache):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar.gz", 2, 1)
    first = load_dataset(archive, progress=False)
    assert decodes["n"] == 30
    assert cache.cache_file(isolated_cache, first.fingerprint).is_file()
    second = load_dataset(archive, progress=False)
    assert decodes["n"] == 30
    assert _same(first, second) and second.source == first.source and second.fingerprint == first.fingerprint
    assert second.train_images.dtype == np.uint8 and second.train_labels.dtype == np.int64


def test_cached_arrays_are_read_only_maps_of_the_file_and_a_compressed_file_is_read_too(tmp_path, isolated_cache,
                                                                                          decodes):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 2, 1)
    first = load_dataset(archive, progress=False)
    mapped = load_dataset(archive, progress=False)
    assert _same(first, mapped) and isinstance(mapped.test_images, np.memmap)
    with pytest.raises(ValueError, match="read-only"):
        mapped.test_images[0, 0, 0, 0] = 1  # the cache file cannot be changed through the data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns of a tensor over read-only memory (once per process)
        assert torch.equal(to_device_images(mapped.test_images, "cpu"), to_device_images(first.test_images, "cpu"))
    path = cache.cache_file(isolated_cache, first.fingerprint)
    np.savez_compressed(path, train_images=first.train_images, train_labels=first.train_labels,
                        test_images=first.test_images, test_labels=first.test_labels, kind="ImageFolder archive")
    compressed = load_dataset(archive, progress=False)
    assert _same(first, compressed) and not isinstance(compressed.test_images, np.memmap) and decodes["n"] == 30


def test_key_follows_content_not_path(tmp_path, decodes):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 2, 1)
    first = load_dataset(archive, progress=False)
    copy = tmp_path / "elsewhere.tar"
    shutil.copy(archive, copy)
    moved = load_dataset(copy, progress=False)
    assert moved.fingerprint == first.fingerprint and decodes["n"] == 30  # same bytes: a hit
    assert moved.source == f"ImageFolder archive {copy}"
    synthetic.make_imagefolder_archive(archive, 3, 1)  # new content under the same name
    changed = load_dataset(archive, progress=False)
    assert changed.fingerprint != first.fingerprint and len(changed.train_labels) == 30


def test_archive_hash_is_memoized_by_path_size_and_mtime(tmp_path, monkeypatch, isolated_cache):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.zip", 1, 1)
    key = load_dataset(archive, progress=False).fingerprint
    index = json.loads((isolated_cache / cache.INDEX).read_text())
    assert index[str(archive.resolve())]["size"] == archive.stat().st_size

    def no_hashing(path):
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(cache, "_file_sha256", no_hashing)
    assert load_dataset(archive, progress=False).fingerprint == key
    os.utime(archive, ns=(archive.stat().st_atime_ns, archive.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="re-hashed"):
        load_dataset(archive, progress=False)


def test_damaged_hash_index_is_rebuilt(tmp_path, isolated_cache):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 1, 1)
    key = load_dataset(archive, progress=False).fingerprint
    (isolated_cache / cache.INDEX).write_text("{not json")
    assert load_dataset(archive, progress=False).fingerprint == key


def test_folder_key_changes_when_a_file_changes(tmp_path, decodes):
    tree = synthetic.make_imagefolder(tmp_path / "tree", 2, 1)
    first = load_dataset(tree, progress=False)
    assert load_dataset(tree, progress=False).fingerprint == first.fingerprint and decodes["n"] == 30
    (tree / "train" / "cat" / "0099.png").write_bytes((tree / "train" / "cat" / "0006.png").read_bytes())
    grown = load_dataset(tree, progress=False)
    assert grown.fingerprint != first.fingerprint and len(grown.train_labels) == 21


def test_format_version_is_part_of_the_key(tmp_path, monkeypatch):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 1, 1)
    key = load_dataset(archive, progress=False).fingerprint
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION + 1)
    assert load_dataset(archive, progress=False).fingerprint != key


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong arrays"])
def test_damaged_cache_file_is_ignored_with_a_warning_and_rebuilt(tmp_path, isolated_cache, decodes, damage):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 2, 1)
    data = load_dataset(archive, progress=False)
    path = cache.cache_file(isolated_cache, data.fingerprint)
    if damage == "garbage":
        path.write_bytes(b"garbage")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        np.savez(path, train_images=np.zeros((2, 8, 8), np.uint8), train_labels=np.zeros(2, np.int64),
                 test_images=np.zeros((1, 32, 32, 3), np.uint8), test_labels=np.zeros(1, np.int64), kind="x")
    with pytest.warns(UserWarning, match=f"{path.name}: ignoring"):
        again = load_dataset(archive, progress=False)
    assert _same(again, data) and decodes["n"] == 60
    assert load_dataset(archive, progress=False) and decodes["n"] == 60  # the rebuilt file is used


def test_unwritable_cache_is_a_warning_not_an_error(tmp_path):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 1, 1)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "arrays").write_text("a file where the arrays folder should be")
    with pytest.warns(UserWarning, match="cannot write the cache file"):
        data = load_dataset(archive, cache_dir=blocked, progress=False)
    assert len(data.train_labels) == 10
