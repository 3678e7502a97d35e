"""Tiny, learnable fake CIFAR-10 datasets in every form ``--data`` accepts.

Each class has its own colour and its own stripe direction, under pixel noise,
so even a small network separates the classes within an epoch or two, while a
network that learns nothing stays near 10%. Everything is generated from
seeds, so two calls with the same arguments write the same bytes (archives
included: their timestamps are fixed).

Typical use::

    archive = make_official_archive(tmp_path, 6, 2)          # cifar-10-python.tar.gz look-alike
    folder = make_official_folder(tmp_path, 6, 2)            # .../cifar-10-batches-py
    tree = make_imagefolder(tmp_path / "tree", 6, 2)          # train/<class>/0000.png ...
    packed = make_imagefolder_archive(tmp_path / "d.zip", 6, 2, wrapper="cifar10")
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# Well separated colours, one per class (they survive JPEG compression).
_PALETTE = np.array([[220, 60, 60], [60, 200, 60], [60, 80, 220], [220, 200, 50], [200, 60, 200],
                     [50, 200, 210], [240, 140, 40], [130, 70, 30], [150, 150, 150], [30, 30, 30]])
_FIXED_TIME = 1_700_000_000  # archive member timestamps, so archives are byte-for-byte reproducible


def make_arrays(n_per_class: int, seed: int = 0, noise: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """``(images (10n, 32, 32, 3) uint8, labels (10n,) int64)``, sorted by class.

    Class ``k`` is colour ``_PALETTE[k]`` with stripes at ``18k`` degrees, plus
    Gaussian noise of std ``noise`` drawn from ``seed``.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_class)
    yy, xx = np.mgrid[0:32, 0:32]
    angles = np.deg2rad(18 * labels)[:, None, None]
    stripes = 35 * np.sin((xx * np.cos(angles) + yy * np.sin(angles)) * (2 * np.pi / 8))
    base = _PALETTE[labels][:, None, None, :] + stripes[..., None]
    images = base + rng.normal(0, noise, (len(labels), 32, 32, 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels.astype(np.int64)


# --- the official python version -------------------------------------------------------------


class _Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle wrote the real batches.

    Strings (keys, array bytes) become ``BINSTRING`` opcodes, which load as
    ``bytes`` with ``encoding="bytes"``; numpy's array global is named
    ``numpy.core.multiarray._reconstruct``. So the restricted unpickler is
    tested against the real files' opcodes, not Python 3's ``_codecs.encode``.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        n = len(data)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + data if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + data)
        self.memoize(data)

    def _save_py2_global(self, obj, name=None):
        module, name = obj.__module__, name or obj.__qualname__
        if module.startswith("numpy._core"):
            module = module.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str
    dispatch[type] = _save_py2_global
    dispatch[type(len)] = _save_py2_global


def py2_pickle(obj) -> bytes:
    """``obj`` pickled the way Python 2 cPickle (protocol 2) wrote the CIFAR-10 batches."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def batch_bytes(images: np.ndarray, labels: np.ndarray, batch_label: str = "synthetic batch") -> bytes:
    """One pickled batch: ``data`` (N, 3072) uint8 as red, green, blue planes; ``labels`` a list of ints."""
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3072))
    return py2_pickle({"batch_label": batch_label, "labels": [int(y) for y in labels], "data": data,
                       "filenames": [f"synthetic_{i}.png" for i in range(len(labels))]})


def official_arrays(n_train_per_class: int = 6, n_test_per_class: int = 2, seed: int = 0):
    """``(train_x, train_y, test_x, test_y)`` in the order the synthetic batches hold them (classes mixed)."""
    train_x, train_y = make_arrays(n_train_per_class, seed)
    test_x, test_y = make_arrays(n_test_per_class, seed + 1)
    train_order = np.random.default_rng(seed + 2).permutation(len(train_y))
    test_order = np.random.default_rng(seed + 3).permutation(len(test_y))
    return train_x[train_order], train_y[train_order], test_x[test_order], test_y[test_order]


def official_files(n_train_per_class: int = 6, n_test_per_class: int = 2, seed: int = 0) -> dict[str, bytes]:
    """The files of ``cifar-10-batches-py``: five training batches, ``test_batch``, ``batches.meta``."""
    train_x, train_y, test_x, test_y = official_arrays(n_train_per_class, n_test_per_class, seed)
    files = {f"data_batch_{i + 1}": batch_bytes(x, y, f"training batch {i + 1} of 5")
             for i, (x, y) in enumerate(zip(np.array_split(train_x, 5), np.array_split(train_y, 5)))}
    files["test_batch"] = batch_bytes(test_x, test_y, "testing batch 1 of 1")
    files["batches.meta"] = py2_pickle({"label_names": CLASSES, "num_cases_per_batch": 10000, "num_vis": 3072})
    return files


def make_official_folder(root: str | Path, n_train_per_class: int = 6, n_test_per_class: int = 2,
                         seed: int = 0) -> Path:
    """Write ``root/cifar-10-batches-py/`` and return that folder."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in official_files(n_train_per_class, n_test_per_class, seed).items():
        (folder / name).write_bytes(data)
    return folder


def _write_tar(path: Path, files: dict[str, bytes], compress: bool) -> None:
    with open(path, "wb") as raw:
        # gzip stamps the time and file name into its header unless told otherwise.
        stream = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=_FIXED_TIME) if compress else raw
        with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), _FIXED_TIME, 0o644
                tar.addfile(info, io.BytesIO(data))
        if compress:
            stream.close()


def make_official_archive(path: str | Path, n_train_per_class: int = 6, n_test_per_class: int = 2,
                          seed: int = 0) -> Path:
    """Write a ``cifar-10-python.tar.gz`` look-alike and return its path.

    ``path`` is the archive to write, or an existing folder to write
    ``cifar-10-python.tar.gz`` into.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "cifar-10-python.tar.gz"
    batches = official_files(n_train_per_class, n_test_per_class, seed)
    # Like the real archive: a readme.html beside the batches, which come in no particular order.
    order = ["readme.html", "data_batch_4", "test_batch", "data_batch_3", "batches.meta", "data_batch_2",
             "data_batch_5", "data_batch_1"]
    batches["readme.html"] = b"<html>synthetic CIFAR-10</html>"
    files = {f"cifar-10-batches-py/{name}": batches[name] for name in order}
    _write_tar(path, files, compress=True)
    return path


# --- ImageFolder layouts ---------------------------------------------------------------------

_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP", "webp": "WEBP", "gif": "GIF"}


def encode_image(image: np.ndarray, fmt: str = "png") -> bytes:
    """``image`` (H, W, 3) uint8 as the bytes of a ``fmt`` file (png, jpg, bmp, webp, gif)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=_PIL_FORMATS[fmt.lower()])
    return buf.getvalue()


def imagefolder_files(n_train_per_class: int = 6, n_test_per_class: int = 2, fmt: str = "png",
                      seed: int = 0) -> dict[str, bytes]:
    """``{"train/<class>/0000.png": bytes, ...}``; numbered so the loader's order is :func:`make_arrays`'s."""
    files = {}
    for split, n, split_seed in (("train", n_train_per_class, seed), ("test", n_test_per_class, seed + 1)):
        images, labels = make_arrays(n, split_seed)
        for i, (image, label) in enumerate(zip(images, labels)):
            files[f"{split}/{CLASSES[label]}/{i:04d}.{fmt}"] = encode_image(image, fmt)
    return files


def make_imagefolder(root: str | Path, n_train_per_class: int = 6, n_test_per_class: int = 2, fmt: str = "png",
                     seed: int = 0) -> Path:
    """Write an ImageFolder tree (``train/<class>/*``, ``test/<class>/*``) under ``root``; return ``root``.

    With PNG the loaded arrays equal :func:`make_arrays` ``(n, seed)`` for
    train and ``(n, seed + 1)`` for test exactly.
    """
    root = Path(root)
    for name, data in imagefolder_files(n_train_per_class, n_test_per_class, fmt, seed).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


_ARCHIVE_KINDS = ("tar.gz", "tgz", "tar", "zip")


def make_imagefolder_archive(path: str | Path, n_train_per_class: int = 6, n_test_per_class: int = 2,
                             fmt: str = "png", *, kind: str | None = None, wrapper: str | None = None,
                             extra: dict[str, bytes] | None = None, seed: int = 0) -> Path:
    """Write an ImageFolder archive and return its path.

    ``kind`` is ``"tar.gz"``, ``"tgz"``, ``"tar"`` or ``"zip"`` (default: from
    ``path``'s suffix); if ``path`` is an existing folder the archive is
    ``path/cifar10.<kind>``. ``wrapper`` puts everything inside one top-level
    folder; ``extra`` adds raw members (names as given, e.g. ``"../evil"``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / f"cifar10.{kind or 'tar.gz'}"
    kind = kind or next((k for k in _ARCHIVE_KINDS if path.name.endswith("." + k)), None)
    if kind not in _ARCHIVE_KINDS:
        raise ValueError(f"{path}: cannot tell the archive kind; pass kind= one of {_ARCHIVE_KINDS}")
    files = {(f"{wrapper}/{k}" if wrapper else k): v
             for k, v in imagefolder_files(n_train_per_class, n_test_per_class, fmt, seed).items()}
    files.update(extra or {})
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr(zipfile.ZipInfo(name, date_time=(2023, 11, 14, 0, 0, 0)), data)
    else:
        _write_tar(path, files, compress=kind != "tar")
    return path


def statuses(rows) -> set[str]:
    """The runs' statuses with the at-chance mark dropped: a tiny synthetic run may complete and still be at chance,
    which is a result of the data, not of what these tests check."""
    return {str(r["status"]).removesuffix(", at chance") for r in rows}
