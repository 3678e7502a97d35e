"""Atomic file writes: a crash or a failing disk never leaves a half-written file behind.

A disk fault while writing (no space, read-only file system, permission
denied, I/O error) becomes one :class:`~cifarlab.errors.DiskError` naming the
file the caller meant to write. Serializers that write files themselves
(safetensors, TorchScript) fail on a full disk with their own exception types,
or abort the process, so they serialize to bytes and :func:`write_bytes` writes them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from cifarlab.errors import DiskError

# The errors a disk or a file system's limits cause, as opposed to a caller's bug or a network.
DISK_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                         errno.EIO})

# mkstemp makes files private (0600); a finished file gets the mode a plain open() would give.
# The umask can only be read by setting it, so it is read once, at import.
_UMASK = os.umask(0)
os.umask(_UMASK)
_NEW_FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a disk fault raised in the block into a :class:`DiskError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FAULTS:
            raise
        raise DiskError(path, exc) from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success, with ``mode`` if given.

    The temporary file lives in the same directory so the final ``os.replace``
    is atomic on POSIX file systems. On any failure it is deleted and ``path``
    keeps its previous content; a disk fault is raised as :class:`DiskError`.
    """
    path = Path(path)
    with disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.chmod(tmp_path, _NEW_FILE_MODE if mode is None else mode)
            os.replace(tmp_path, path)
        finally:
            with contextlib.suppress(OSError):  # an I/O error here must not hide the one that matters
                tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (``mode``: its permissions, default as a plain ``open()`` gives)."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str, mode: int | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``mode`` as in :func:`write_bytes`)."""
    write_bytes(path, text.encode("utf-8"), mode)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``, all or nothing (see :func:`append_bytes`)."""
    append_bytes(path, text.encode("utf-8"))


def append_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Append ``data`` to ``path``, all or nothing.

    If the disk fails part-way, the file is cut back to its previous length, so
    no torn line or record is kept, and :class:`DiskError` is raised. The file is
    opened unbuffered: a buffer flushed at close could write the torn tail back.
    """
    rest = memoryview(data)
    with disk_errors(path), open(path, "ab", buffering=0) as f:
        start = os.fstat(f.fileno()).st_size
        try:
            while rest:
                rest = rest[f.write(rest):]
        except OSError:
            with contextlib.suppress(OSError):
                f.truncate(start)
            raise
