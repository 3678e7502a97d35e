"""``load_dataset``: one entry point for every form of CIFAR-10 the ``--data`` option accepts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.data import cache, download, official
from cifarlab.data.imagefolder import is_archive, read_imagefolder
from cifarlab.errors import DataError


@dataclass
class CifarData:
    """All of CIFAR-10 in memory: uint8 HWC RGB images and int64 labels."""

    train_images: np.ndarray  # (N, 32, 32, 3) uint8
    train_labels: np.ndarray  # (N,) int64 in 0..9
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]
    source: str
    fingerprint: str


def default_cache_dir() -> Path:
    """``$CIFARLAB_CACHE`` if set, else ``~/.cache/cifarlab``."""
    return Path(os.environ.get("CIFARLAB_CACHE") or Path.home() / ".cache" / "cifarlab")


def _read_source(path: Path, progress: bool):
    folder = official.find_official_folder(path) if path.is_dir() else None
    if folder is not None:
        return official.read_official_folder(folder), f"CIFAR-10 python version {folder}"
    if path.is_dir():
        return read_imagefolder(path, progress), f"ImageFolder tree {path}"
    if not is_archive(path):
        raise DataError(f"{path}: not a dataset (expected a folder, .tar, .tar.gz, .tgz or .zip)")
    if official.is_official_archive(path):
        return official.read_official_archive(path), f"CIFAR-10 python version {path}"
    return read_imagefolder(path, progress), f"ImageFolder archive {path}"


def load_dataset(path: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, url: str | None = None, md5: str | None = None) -> CifarData:
    """Load CIFAR-10 from ``path`` (or the cache folder, downloading it if missing).

    ``path`` is the official python version (archive or folder), or an ImageFolder
    tree or archive. Decoded arrays are cached by the source's content, so the
    second load is a file read.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    if path is None:
        source = cache_dir / download.FILENAME
        if not source.is_file():
            download.download(source, url=url, md5=md5, progress=progress)
    else:
        source = Path(path).expanduser()
        if not source.exists():
            raise DataError(f"{source}: no such dataset file or folder")
    key = cache.fingerprint(source, cache_dir)
    cached = cache.cache_file(cache_dir, key)
    arrays = cache.load_arrays(cached)
    if arrays is not None:
        description = f"{source} (cached)"
    else:
        arrays, description = _read_source(source, progress)
        cache.save_arrays(cached, *arrays)
    train_x, train_y, test_x, test_y, classes = arrays
    return CifarData(train_x, train_y, test_x, test_y, list(classes), source=description, fingerprint=key)
