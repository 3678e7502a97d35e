"""ImageFolder layouts: ``train/<class>/*`` and ``test/<class>/*``, from a folder or an archive's members.

The layout may sit at the top of the folder or archive, or inside a single
top-level folder (``cifar10/train/...``). Images deeper inside a class folder
count for that class; files that are not images, or not under ``train/`` or
``test/``, are ignored. :mod:`cifarlab.data.archive` reads the members.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cifarlab.data.archive import Member, describe
from cifarlab.data.images import decode_image
from cifarlab.data.official import CLASSES
from cifarlab.errors import DataError

SPLITS = ("train", "test")


def _layout_root(images: list[Member], path: Path) -> tuple[str, ...]:
    """The folder holding ``train/`` and ``test/``: the top, or a single wrapping folder."""
    tops = {parts[0] for parts, _, _ in images if len(parts) > 1}
    if tops & set(SPLITS):
        return ()
    if len(tops) == 1 and any(len(parts) > 3 and parts[1] in SPLITS for parts, _, _ in images):
        return (tops.pop(),)
    raise DataError(f"{path}: no train/<class>/ and test/<class>/ image folders, at the top or inside one "
                    "top-level folder (expected an ImageFolder tree or the official cifar-10-python archive)")


def read_imagefolder(images: list[Member], path: Path, progress: bool = True) -> tuple[np.ndarray, ...]:
    """``(train_x, train_y, test_x, test_y)`` from the image files of the ImageFolder tree or archive ``path``.

    Ordered by class (official label order), then path: the same arrays whatever form the tree comes in.
    """
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
            out[i] = decode_image(data, name=describe(path, name))
        arrays += [out, np.array([label for label, _, _, _ in items], dtype=np.int64)]
    return tuple(arrays)
