"""``load_dataset``: one entry point for every form of CIFAR-10 the ``--data`` option accepts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.data import cache, download, official
from cifarlab.data.archive import is_archive, read_members
from cifarlab.data.images import IMAGE_SUFFIXES
from cifarlab.data.imagefolder import read_imagefolder
from cifarlab.errors import DataError


@dataclass
class CifarData:
    """All of CIFAR-10 in memory: uint8 HWC RGB images and int64 labels."""

    train_images: np.ndarray  # (N, 32, 32, 3) uint8
    train_labels: np.ndarray  # (N,) int64 in 0..9
    test_images: np.ndarray  # (M, 32, 32, 3) uint8
    test_labels: np.ndarray  # (M,) int64
    classes: list[str]  # the official order: "airplane", "automobile", ..., "truck"
    source: str  # e.g. "ImageFolder archive ../shared/data/cifar10-jpeg.tar.gz"
    fingerprint: str  # hex key of the source's content; also names the cache file


def default_cache_dir() -> Path:
    """``$CIFARLAB_CACHE`` if set, else ``~/.cache/cifarlab``."""
    return Path(os.environ.get("CIFARLAB_CACHE") or Path.home() / ".cache" / "cifarlab")


def _read(path: Path, progress: bool) -> tuple[tuple[np.ndarray, ...], str]:
    """Decode ``path`` in one pass over its files; returns the arrays and the kind of source it was.

    A folder or archive holding any of the official batch files (at any depth) is the python version.
    """
    files = read_members(path, lambda name: name.name in official.BATCH_FILES or name.suffix.lower() in IMAGE_SUFFIXES,
                         progress)
    batches = [f for f in files if f.parts[-1] in official.BATCH_FILES]
    if batches:
        return official.read_official(batches, path), "CIFAR-10 python version"
    return read_imagefolder(files, path, progress), "ImageFolder " + ("tree" if path.is_dir() else "archive")


def _resolve_source(path, cache_dir: Path, progress: bool, url: str | None, md5: str | None) -> Path:
    if path is None:
        source = cache_dir / download.FILENAME
        if not source.is_file():
            download.download(source, url=url, md5=md5, progress=progress)
        return source
    source = Path(path).expanduser()
    if not source.exists():
        raise DataError(f"{source}: no such dataset file or folder")
    if not source.is_dir() and not is_archive(source):
        raise DataError(f"{source}: not a dataset (expected a folder, or a .tar, .tar.gz, .tgz or .zip archive)")
    return source


def load_dataset(path: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, url: str | None = None, md5: str | None = None) -> CifarData:
    """Load CIFAR-10 from ``path``, decoding it once and reading cached arrays afterwards.

    ``path`` is the official python version (``cifar-10-python.tar.gz``, its ``cifar-10-batches-py``
    folder or a folder holding that), or an ImageFolder tree or ``.tar``/``.tar.gz``/``.tgz``/``.zip``
    archive with ``train/<class>/`` and ``test/<class>/``. ``None`` means ``cifar-10-python.tar.gz`` in
    the cache folder, if missing downloaded from ``url`` and checked against ``md5`` (defaults: the
    official archive, see :func:`cifarlab.data.download.download`). Decoded arrays are cached in
    ``cache_dir`` (default :func:`default_cache_dir`) under the source's content fingerprint. Raises
    :class:`DataError` naming the file or member at fault.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    source = _resolve_source(path, cache_dir, progress, url, md5)
    key = cache.fingerprint(source, cache_dir)
    cached_file = cache.cache_file(cache_dir, key)
    cached = cache.load_arrays(cached_file)
    if cached is None:
        cached = _read(source, progress)
        cache.save_arrays(cached_file, *cached)
    (train_x, train_y, test_x, test_y), kind = cached
    return CifarData(train_x, train_y, test_x, test_y, list(official.CLASSES), source=f"{kind} {source}",
                     fingerprint=key)
