"""A dataset folder or archive, read member by member in one pass: what both CIFAR-10 layouts are read from.

Archives (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``) are read in memory and never extracted, so no member can
write anywhere. Members with absolute or ``..`` names are refused all the same: an archive that holds them was
built to attack an extractor. Symbolic and hard links inside a tar are skipped, never followed.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from tqdm.auto import tqdm

from cifarlab.errors import DataError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
# No CIFAR-10 file comes near this (a python-version batch is 31 MB): a bigger member is a decompression bomb.
MAX_MEMBER_BYTES = 64 << 20


class Member(NamedTuple):
    """One file of a folder or archive, read."""

    parts: tuple[str, ...]  # its name's components
    name: str  # as the folder or archive spells it
    data: bytes


def is_archive(path: Path) -> bool:
    """Whether ``path``'s name says it is an archive this module reads."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def describe(path: Path, name: str) -> str:
    """How messages name member ``name`` of ``path``: a file path in a folder, ``archive: member`` in an archive."""
    return str(path / name) if path.is_dir() else f"{path}: {name}"


def _parts(name: str, where: Path) -> tuple[str, ...]:
    """The components of a member name; refuses names that would escape an extraction folder."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
        raise DataError(f"{where}: unsafe member path {name!r} (absolute or with '..'); refusing the archive")
    return parts


def _folder_members(root: Path) -> Iterator[tuple[str, int, Callable[[], bytes]]]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            if path.is_file():  # not a dangling link
                yield path.relative_to(root).as_posix(), path.stat().st_size, path.read_bytes


def _tar_members(path: Path) -> Iterator[tuple[str, int, Callable[[], bytes]]]:
    with tarfile.open(path, "r|*") as tar:  # streaming: one pass over the compressed bytes
        for member in tar:
            if member.isfile():  # links and devices are skipped, never followed
                yield member.name, member.size, tar.extractfile(member).read


def _zip_members(path: Path) -> Iterator[tuple[str, int, Callable[[], bytes]]]:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                yield info.filename, info.file_size, lambda info=info: zf.read(info)


def read_members(path: Path, keep: Callable[[PurePosixPath], bool], progress: bool) -> list[Member]:
    """Every file of the folder or archive ``path`` whose name ``keep`` accepts, read in one pass.

    Hidden files and macOS resource forks are passed over; a damaged archive, an unreadable file, an unsafe or an
    oversized member is a :class:`DataError` naming ``path``.
    """
    if path.is_dir():
        members = _folder_members(path)
    elif path.name.lower().endswith(".zip"):
        members = _zip_members(path)
    else:
        members = _tar_members(path)
    found = []
    try:
        for name, size, read in tqdm(members, desc=f"reading {path.name}", unit="file", leave=False,
                                     disable=not progress):
            parts = _parts(name, path)
            if any(p.startswith(".") or p == "__MACOSX" for p in parts) or not keep(PurePosixPath(*parts)):
                continue
            if size > MAX_MEMBER_BYTES:
                raise DataError(f"{describe(path, name)}: {size} bytes is too big for a CIFAR-10 file")
            found.append(Member(parts, name, read()))  # read now: a tar stream cannot go back
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt archive ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    return found
