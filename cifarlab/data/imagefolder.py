"""ImageFolder layouts: ``train/<class>/*`` and ``test/<class>/*``, as a folder or an archive.

The layout may sit at the top of the folder or archive, or inside a single
top-level folder (``cifar10/train/...``). Images deeper inside a class folder
count for that class; files that are not images, or not under ``train/`` or
``test/``, are ignored.

Archives (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``) are read member by member
in memory and never extracted, so no member can write anywhere. Members with
absolute or ``..`` names are refused all the same: an archive that holds them
was built to attack an extractor. Symbolic and hard links inside a tar are
skipped.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm.auto import tqdm

from cifarlab.data.images import IMAGE_SUFFIXES, decode_image
from cifarlab.data.official import CLASSES
from cifarlab.errors import DataError

SPLITS = ("train", "test")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
# No CIFAR image comes near this; a bigger member is a decompression bomb, not a picture.
MAX_IMAGE_BYTES = 64 << 20


def is_archive(path: Path) -> bool:
    """Whether ``path``'s name says it is an archive this module reads."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


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


def _read_images(path: Path, progress: bool) -> list[tuple[tuple[str, ...], str, bytes]]:
    """``(name parts, member name, bytes)`` of every image file, read in one pass."""
    if path.is_dir():
        members = _folder_members(path)
    elif path.name.lower().endswith(".zip"):
        members = _zip_members(path)
    else:
        members = _tar_members(path)
    images = []
    try:
        for name, size, read in tqdm(members, desc=f"reading {path.name}", unit="file", leave=False,
                                     disable=not progress):
            parts = _parts(name, path)
            # Hidden files and macOS resource forks (._x.png, __MACOSX/) are not images.
            if any(p.startswith(".") or p == "__MACOSX" for p in parts):
                continue
            if PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if size > MAX_IMAGE_BYTES:
                raise DataError(f"{path}: {name}: {size} bytes is too big for an image")
            images.append((parts, name, read()))  # read now: a tar stream cannot go back
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt archive ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    return images


def _layout_root(images: list[tuple[tuple[str, ...], str, bytes]], path: Path) -> tuple[str, ...]:
    """The folder holding ``train/`` and ``test/``: the top, or a single wrapping folder."""
    tops = {parts[0] for parts, _, _ in images if len(parts) > 1}
    if tops & set(SPLITS):
        return ()
    if len(tops) == 1 and any(len(parts) > 3 and parts[1] in SPLITS for parts, _, _ in images):
        return (tops.pop(),)
    raise DataError(f"{path}: no train/<class>/ and test/<class>/ image folders, at the top or inside one "
                    "top-level folder (expected an ImageFolder tree or the official cifar-10-python archive)")


def read_imagefolder(path: Path, progress: bool = True) -> tuple[np.ndarray, ...]:
    """``(train_x, train_y, test_x, test_y)`` from an ImageFolder tree or archive.

    Ordered by class (official label order), then path: the same arrays whatever form the tree comes in.
    """
    images = _read_images(path, progress)
    root = _layout_root(images, path)
    per_split: dict[str, list[tuple[int, str, str, bytes]]] = {s: [] for s in SPLITS}
    unknown = set()
    for parts, name, data in images:
        rest = parts[len(root):]
        if parts[:len(root)] != root or len(rest) < 3 or rest[0] not in SPLITS:
            continue
        split, cls = rest[0], rest[1]
        if cls not in CLASSES:
            unknown.add("/".join((*root, split, cls)))
            continue
        per_split[split].append((CLASSES.index(cls), "/".join(rest), name, data))
    if unknown:
        raise DataError(f"{path}: unknown class folder {sorted(unknown)[0]} (expected the CIFAR-10 classes: "
                        f"{', '.join(CLASSES)})")
    where = (lambda name: str(path / name)) if path.is_dir() else (lambda name: f"{path}: {name}")
    arrays = []
    for split in SPLITS:
        items = sorted(per_split[split], key=lambda item: item[:2])
        prefix = "/".join((*root, split))
        if not items:
            raise DataError(f"{path}: no images under {prefix}/<class>/")
        present = {label for label, _, _, _ in items}
        missing = [c for i, c in enumerate(CLASSES) if i not in present]
        if missing:
            raise DataError(f"{path}: missing class folder {prefix}/{missing[0]} (or it holds no images)")
        out = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
        # Serial on purpose: a 32x32 JPEG decodes in ~0.1 ms, mostly Python
        # holding the GIL, so pools did not pay (60,000 JPEGs on 2 shared
        # cores: serial 5.7 s, 2 threads 6.1 s, 2 processes 6.2 s).
        for i, (_, _, name, data) in enumerate(tqdm(items, desc=f"decoding {split}", unit="img", leave=False,
                                                    disable=not progress)):
            out[i] = decode_image(data, name=where(name))
        arrays += [out, np.array([label for label, _, _, _ in items], dtype=np.int64)]
    return tuple(arrays)
