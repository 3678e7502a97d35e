"""The decoded-array cache, keyed by a fingerprint of the source's content.

An archive's fingerprint derives from the SHA-256 of its bytes, remembered per
(path, size, mtime) in ``fingerprints.json`` (hashing the shared 19 MB archive
costs a tenth of a second). A folder's hashes the relative paths, sizes and
mtimes of its files: hashing 60,000 images would cost as much as decoding them,
and any edit, copy or touch changes a size or mtime. Both include
:data:`FORMAT_VERSION`, so a change in decoding or storage makes new cache files.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from cifarlab.errors import DiskError
from cifarlab.fileio import atomic_path, write_json

# Bump whenever decoding or the cache file's contents change.
FORMAT_VERSION = 1
INDEX = "fingerprints.json"
_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _archive_sha256(path: Path, cache_dir: Path) -> str:
    """The file's SHA-256, memoized in the cache folder's index by (path, size, mtime)."""
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    index_path = cache_dir / INDEX
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}  # absent or damaged: the index is only a shortcut
    index = index if isinstance(index, dict) else {}
    entry = index.get(str(path))
    if isinstance(entry, dict) and {k: entry.get(k) for k in stamp} == stamp and "sha256" in entry:
        return entry["sha256"]
    digest = _file_sha256(path)
    index[str(path)] = {**stamp, "sha256": digest}
    try:
        write_json(index_path, index)
    except (OSError, DiskError) as exc:
        warnings.warn(f"{index_path}: cannot record the archive's hash: {_why(exc)}", stacklevel=3)
    return digest


def _folder_digest(path: Path) -> str:
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()  # os.walk's order is the file system's; the hash must not depend on it
        for name in sorted(files):
            f = Path(root, name)
            try:
                st = f.stat()
            except FileNotFoundError:  # a dangling link: the readers skip it too
                continue
            h.update(f"{f.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def fingerprint(path: Path, cache_dir: Path) -> str:
    """Hex key of a dataset archive or folder's content (see the module docstring)."""
    path = path.resolve()
    content = f"folder\0{_folder_digest(path)}" if path.is_dir() else f"file\0{_archive_sha256(path, cache_dir)}"
    return hashlib.sha256(f"cifarlab-arrays-v{FORMAT_VERSION}\0{content}".encode()).hexdigest()


def arrays_dir(cache_dir: Path) -> Path:
    """The folder of cached arrays."""
    return Path(cache_dir) / "arrays"


def cache_file(cache_dir: Path, key: str) -> Path:
    """Where the arrays for fingerprint ``key`` are kept."""
    return arrays_dir(cache_dir) / f"{key}.npz"


def _mapped_members(path: Path) -> dict[str, np.ndarray] | None:
    """Each member of an uncompressed ``.npz`` as a read-only memory map of its bytes in the file; None if any
    member is compressed.

    Written by hand (numpy maps ``.npy`` files, not the members of an ``.npz``) because reading the arrays
    eagerly cost 2 s of every run's start on a 2-core VM, and the report, which needs a few test images,
    paid it again: a map costs a millisecond, and only the pages used are read.
    """
    arrays = {}
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                return None
            f.seek(info.header_offset)
            local = f.read(30)  # the member's local header: 30 bytes, then its name and extra field
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise ValueError(f"member {info.filename} has no local header")
            f.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                   + int.from_bytes(local[28:30], "little"))
            npy = np.lib.format
            read_header = npy.read_array_header_1_0 if npy.read_magic(f) == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject or fortran:
                raise ValueError(f"member {info.filename} is not a plain C-ordered array")
            arrays[info.filename[:-4]] = np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape)
    return arrays


def load_arrays(path: Path) -> tuple[tuple[np.ndarray, ...], str] | None:
    """``((train_x, train_y, test_x, test_y), kind)`` from a cache file; None (with a warning if unusable) if not.

    The arrays are read-only memory maps of the file (see :func:`_mapped_members`); index them to copy.
    """
    if not path.is_file():
        return None
    try:
        members = _mapped_members(path)
        if members is None:  # a compressed member: numpy reads it
            with np.load(path, allow_pickle=False) as z:
                members = {name: z[name] for name in (*_ARRAYS, "kind")}
        arrays = tuple(members[name] for name in _ARRAYS)
        kind = str(members["kind"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"{path}: ignoring unreadable cache file ({exc}); rebuilding it", stacklevel=3)
        return None
    if not all(x.dtype == np.uint8 and x.ndim == 4 and x.shape[1:] == (32, 32, 3)
               and y.dtype == np.int64 and y.shape == (len(x),) for x, y in zip(arrays[::2], arrays[1::2])):
        warnings.warn(f"{path}: ignoring cache file with unexpected arrays; rebuilding it", stacklevel=3)
        return None
    return arrays, kind


def save_arrays(path: Path, arrays: tuple[np.ndarray, ...], kind: str) -> None:
    """Write the arrays atomically, uncompressed so that loading them is a plain read.

    A cache folder that cannot be written (full, read-only, not ours) only costs
    the next run a decode: a warning, and nothing half-written is left in it.
    """
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **dict(zip(_ARRAYS, arrays)), kind=np.array(kind))
    except (OSError, DiskError) as exc:
        warnings.warn(f"{path}: cannot write the cache file: {_why(exc)}; using the data without the cache",
                      stacklevel=3)


def _why(exc: OSError | DiskError) -> str:
    """The operating system's reason, e.g. ``No space left on device``."""
    return exc.reason if isinstance(exc, DiskError) else exc.strerror or str(exc)
