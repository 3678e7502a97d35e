"""The decoded-array cache, keyed by the content of the source.

An archive's key is the SHA-256 of its bytes; to spare re-hashing 100 MB on
every run, the hash is remembered per (path, size, mtime) in a small index. A
folder's key hashes its files' relative paths, sizes and modification times:
reading every image to hash it would cost what the cache saves.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from cifarlab.fileio import atomic_path, write_json

FORMAT_VERSION = "v1"
_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(path: Path, cache_dir: Path) -> str:
    """Content key of a dataset file or folder (see the module docstring)."""
    path = path.resolve()
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return f"{FORMAT_VERSION}-dir-{h.hexdigest()[:32]}"
    st = path.stat()
    index_path = cache_dir / "fingerprints.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    entry = index.get(str(path))
    if entry is None or entry.get("stamp") != stamp:
        entry = {"stamp": stamp, "sha256": _file_sha256(path)}
        index[str(path)] = entry
        write_json(index_path, index)
    return f"{FORMAT_VERSION}-{entry['sha256'][:32]}"


def cache_file(cache_dir: Path, key: str) -> Path:
    """Where the arrays for ``key`` are kept."""
    return cache_dir / "arrays" / f"{key}.npz"


def load_arrays(path: Path) -> tuple | None:
    """``(train_x, train_y, test_x, test_y, classes)`` from a cache file, or None if absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = tuple(z[name] for name in _ARRAYS)
            classes = [str(c) for c in z["classes"]]
    except (OSError, ValueError, KeyError) as exc:
        warnings.warn(f"{path}: ignoring unreadable cache file ({exc}); rebuilding it", stacklevel=2)
        return None
    return (*arrays, classes)


def save_arrays(path: Path, train_x, train_y, test_x, test_y, classes) -> None:
    """Write the arrays atomically (uncompressed: loading is then a plain read)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, train_images=train_x, train_labels=train_y, test_images=test_x, test_labels=test_y,
                     classes=np.array(classes))
