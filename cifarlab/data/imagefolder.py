"""ImageFolder trees (``train/<class>/*``, ``test/<class>/*``), as folders or archives.

Archives (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``) are read member by member
and never extracted, so a member named ``../../etc/passwd`` cannot write
anywhere; such names are refused all the same, as a sign of a hostile file.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from cifarlab.data.images import decode_image
from cifarlab.errors import DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPLITS = ("train", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")


def is_archive(path: Path) -> bool:
    """Whether ``path``'s name says it is an archive this module reads."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _place(name: str, where: Path) -> tuple[str, str] | None:
    """``(split, class)`` for an image member path, None for files that are not images of a split."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith("/") or ".." in parts:
        raise DataError(f"{where}: unsafe member path {name!r} (absolute or with '..'); refusing the archive")
    if len(parts) < 3 or parts[-3] not in SPLITS or PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if any(p.startswith(".") for p in parts):  # hidden files such as macOS ._resource forks
        return None
    return parts[-3], parts[-2]


def _members_folder(root: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path.relative_to(root).as_posix(), path.read_bytes


def _members_tar(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    with tarfile.open(path, "r|*") as tar:  # streaming: one pass over the compressed bytes
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read  # read before the stream moves on


def _members_zip(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                yield info.filename, lambda info=info: zf.read(info)


def _collect(path: Path) -> dict[str, list[tuple[str, str, bytes]]]:
    """Raw image bytes per split as ``(class, member name, bytes)``."""
    if path.is_dir():
        members = _members_folder(path)
    elif path.name.lower().endswith(".zip"):
        members = _members_zip(path)
    else:
        members = _members_tar(path)
    found: dict[str, list[tuple[str, str, bytes]]] = {s: [] for s in SPLITS}
    try:
        for name, read in members:
            place = _place(name, path)
            if place is not None:
                found[place[0]].append((place[1], name, read()))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt archive ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    return found


def read_imagefolder(path: Path, progress: bool = True):
    """``(train_x, train_y, test_x, test_y, classes)`` from an ImageFolder tree or archive."""
    found = _collect(path)
    arrays = []
    for split in SPLITS:
        items = sorted(found[split], key=lambda item: (item[0], item[1]))
        if not items:
            raise DataError(f"{path}: no images under a '{split}/<class>/' folder (expected an ImageFolder tree "
                            f"with train/ and test/, or the official cifar-10-python archive)")
        classes = sorted({c for c, _, _ in items})
        unknown = [c for c in classes if c not in CLASSES]
        if unknown:
            raise DataError(f"{path}: unknown class folder {split}/{unknown[0]} (expected the CIFAR-10 classes: "
                            f"{', '.join(CLASSES)})")
        missing = [c for c in CLASSES if c not in classes]
        if missing:
            raise DataError(f"{path}: missing class folder {split}/{missing[0]}")
        arrays += [_decode_all(items, path, f"decoding {split}", progress),
                   np.array([CLASSES.index(c) for c, _, _ in items], dtype=np.int64)]
    return (*arrays, list(CLASSES))


def _decode_all(items: list[tuple[str, str, bytes]], path: Path, desc: str, progress: bool) -> np.ndarray:
    out = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
    chunk = 512

    def work(start: int) -> int:
        for i in range(start, min(start + chunk, len(items))):
            out[i] = decode_image(items[i][2], name=f"{path}: {items[i][1]}")
        return min(chunk, len(items) - start)

    # Pillow releases the GIL while decoding, so threads use every core without copying the bytes.
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(items), desc=desc, unit="img", leave=False,
                                                   disable=not progress) as bar:
        for n in pool.map(work, range(0, len(items), chunk)):
            bar.update(n)
    return out
