"""The official CIFAR-10 "python version", read without running code from its pickles.

``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/`` with five training
batches, ``test_batch`` and ``batches.meta``: Python 2 cPickle files (protocol
2) of dicts whose ``data`` is a uint8 array ``(10000, 3072)`` (rows are the
red, green and blue 32x32 planes) and whose ``labels`` is a list of ints.

A pickle can name any callable to run on load, so these files are read with an
unpickler that resolves only the globals a numpy array needs and refuses every
other one, before anything is called.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np

from cifarlab.data.archive import Member, describe
from cifarlab.errors import DataError

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
BATCH_FILES = (*TRAIN_BATCHES, TEST_BATCH, META)


def _latin1_encode(text: str, encoding: str) -> bytes:
    # Python 3 writes bytes at protocol 2 as _codecs.encode(text, "latin1").
    # The real (Python 2) batches never need it, re-pickled copies do; other
    # codecs (zlib, base64...) are no part of that idiom and stay refused.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r} in _codecs.encode")
    return codecs.encode(text, "latin1")


# (module, name) -> the object it may resolve to. Nothing else can be loaded.
_ALLOWED = {
    # numpy 1 writes arrays with the first name, numpy 2 with the second.
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits builtin containers and scalars, bytes and numpy arrays, nothing else.

    ``encoding="bytes"`` keeps Python 2 ``str`` values (the dict keys, the
    array bytes) as ``bytes``, as the batches need.
    """

    def __init__(self, data: bytes, name: str):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.name = name

    def find_class(self, module: str, name: str):
        """Resolve only the allowed globals; refuse any other with a :class:`DataError`."""
        if (module, name) not in _ALLOWED:
            raise DataError(f"{self.name}: refused to load global {module}.{name} "
                            "(not part of the CIFAR-10 batch format; the file may be malicious)")
        return _ALLOWED[module, name]


def _unpickle_dict(data: bytes, name: str, what: str) -> dict:
    try:
        obj = RestrictedUnpickler(data, name).load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed pickle raises nearly any type
        raise DataError(f"{name}: not a CIFAR-10 {what} ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{name}: not a CIFAR-10 {what} (holds a {type(obj).__name__}, not a dict)")
    return obj


def _field(d: dict, key: str, name: str):
    for k in (key.encode(), key):  # bytes in the Python 2 files, str in re-pickled copies
        if k in d:
            return d[k]
    raise DataError(f"{name}: no '{key}' entry")


def parse_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 32, 32, 3)`` uint8 HWC and labels ``(N,)`` int64 from one pickled batch."""
    batch = _unpickle_dict(data, name, "batch")
    pixels, labels = _field(batch, "data", name), _field(batch, "labels", name)
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072:
        got = (f"{pixels.dtype} array of shape {pixels.shape}" if isinstance(pixels, np.ndarray)
               else type(pixels).__name__)
        raise DataError(f"{name}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: 'labels' must be a list of integers ({exc})") from None
    if labels.shape != (len(pixels),):
        raise DataError(f"{name}: {len(pixels)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{name}: labels outside 0..9 (from {labels.min()} to {labels.max()})")
    return np.ascontiguousarray(pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def check_meta(data: bytes, name: str) -> None:
    """Check that ``batches.meta`` names the ten CIFAR-10 classes in the official order."""
    meta = _unpickle_dict(data, name, "batches.meta")
    names = _field(meta, "label_names", name)
    if not isinstance(names, list):
        raise DataError(f"{name}: 'label_names' must be a list")
    names = [n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in names]
    if names != CLASSES:
        raise DataError(f"{name}: class names {names} are not CIFAR-10's {CLASSES}")


def read_official(batches: list[Member], path: Path) -> tuple[np.ndarray, ...]:
    """``(train_x, train_y, test_x, test_y)`` from the batch files of the folder or archive ``path``."""
    files: dict[str, Member] = {}
    for member in batches:
        base = member.parts[-1]
        if base in files:
            raise DataError(f"{path}: holds two {base} files ({files[base].name} and {member.name})")
        files[base] = member
    missing = [n for n in BATCH_FILES if n not in files]
    if missing:
        raise DataError(f"{path}: incomplete CIFAR-10 python version, missing {', '.join(missing)}")

    def parse(name: str) -> tuple[np.ndarray, np.ndarray]:
        return parse_batch(files[name].data, describe(path, files[name].name))

    check_meta(files[META].data, describe(path, files[META].name))
    train = [parse(n) for n in TRAIN_BATCHES]
    test_x, test_y = parse(TEST_BATCH)
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), test_x, test_y
