"""The official CIFAR-10 "python version": pickled batches read without running code.

The batches are Python-2 pickles of dicts holding a uint8 array and lists. A
pickle can name any callable to run on load, so they are read with an
unpickler that resolves only the handful of globals a numpy array needs and
refuses everything else.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from cifarlab.errors import DataError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
FOLDER = "cifar-10-batches-py"


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# (module, name) -> the object it may resolve to. Nothing else can be loaded.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: __import__("codecs").encode,  # Python 3 pickles of bytes at protocol 2
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only numpy arrays, builtin containers and scalars."""

    def __init__(self, data: bytes, name: str):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.name = name

    def find_class(self, module: str, name: str):
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise DataError(f"{self.name}: refused to load global {module}.{name} "
                            "(not part of the CIFAR-10 batch format; the file may be malicious)")
        return factory()


def _key(d: dict, key: str):
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise KeyError(key)


def parse_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` int64 from one pickled batch."""
    try:
        batch = RestrictedUnpickler(data, name).load()
        pixels = np.asarray(_key(batch, "data"), dtype=np.uint8)
        labels = np.asarray(_key(batch, "labels"), dtype=np.int64)
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{name}: not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if pixels.ndim != 2 or pixels.shape[1] != 3072 or len(labels) != len(pixels):
        raise DataError(f"{name}: expected data of shape (N, 3072) and N labels, got {pixels.shape} "
                        f"and {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{name}: labels outside 0..9")
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def parse_meta(data: bytes, name: str) -> list[str]:
    """The class names from ``batches.meta``."""
    try:
        meta = RestrictedUnpickler(data, name).load()
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _key(meta, "label_names")]
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{name}: not a CIFAR-10 batches.meta ({type(exc).__name__}: {exc})") from None
    if len(names) != 10:
        raise DataError(f"{name}: expected 10 class names, got {len(names)}")
    return names


def find_official_folder(path: Path) -> Path | None:
    """``path`` itself or its ``cifar-10-batches-py`` child, if it holds the batches."""
    for candidate in (path, path / FOLDER):
        if (candidate / TEST_BATCH).is_file() and (candidate / META).is_file():
            return candidate
    return None


def is_official_archive(path: Path) -> bool:
    """Whether a tar archive holds the official batches (judged by its first member's folder)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            first = tar.next()
    except (tarfile.TarError, OSError, EOFError):
        return False
    return first is not None and first.name.split("/")[0] == FOLDER


def _assemble(files: dict[str, bytes], where: str):
    missing = [n for n in TRAIN_BATCHES + [TEST_BATCH, META] if n not in files]
    if missing:
        raise DataError(f"{where}: incomplete CIFAR-10 python version, missing {', '.join(missing)}")
    train = [parse_batch(files[n], f"{where}/{n}") for n in TRAIN_BATCHES]
    test_x, test_y = parse_batch(files[TEST_BATCH], f"{where}/{TEST_BATCH}")
    classes = parse_meta(files[META], f"{where}/{META}")
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), test_x, test_y, classes)


def read_official_folder(folder: Path):
    """``(train_x, train_y, test_x, test_y, classes)`` from an extracted ``cifar-10-batches-py``."""
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.name in TRAIN_BATCHES + [TEST_BATCH, META]}
    return _assemble(files, str(folder))


def read_official_archive(path: Path):
    """``(train_x, train_y, test_x, test_y, classes)`` from ``cifar-10-python.tar.gz``, read in place."""
    wanted = set(TRAIN_BATCHES + [TEST_BATCH, META])
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    files[base] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt archive ({exc})") from None
    return _assemble(files, str(path))
