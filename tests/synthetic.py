"""Tiny, learnable fake CIFAR-10 datasets in every format ``--data`` accepts.

Each class is a distinct colour plus noise, so a network separates them in an
epoch; images are generated from a seed, so tests are reproducible.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_arrays(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N,32,32,3) uint8, labels (N,))`` with class-coloured images."""
    rng = np.random.default_rng(seed)
    colours = np.random.default_rng(1234).integers(30, 226, (10, 3))  # same colours for every split
    labels = np.repeat(np.arange(10), n_per_class)
    noise = rng.normal(0, 25, (len(labels), 32, 32, 3))
    images = np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def _batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return pickle.dumps({b"batch_label": b"synthetic", b"labels": labels.tolist(), b"data": data,
                         b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}, protocol=2)


def official_files(n_train_per_class: int = 5, n_test_per_class: int = 2) -> dict[str, bytes]:
    """The files of ``cifar-10-batches-py`` (five train batches, test batch, meta) as bytes."""
    train_x, train_y = make_arrays(n_train_per_class, seed=0)
    order = np.random.default_rng(5).permutation(len(train_y))  # batches hold mixed classes, like the real ones
    train_x, train_y = train_x[order], train_y[order]
    test_x, test_y = make_arrays(n_test_per_class, seed=1)
    files = {f"data_batch_{i + 1}": _batch_bytes(x, y)
             for i, (x, y) in enumerate(zip(np.array_split(train_x, 5), np.array_split(train_y, 5)))}
    files["test_batch"] = _batch_bytes(test_x, test_y)
    files["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in CLASSES],
                                          b"num_cases_per_batch": 10000, b"num_vis": 3072}, protocol=2)
    return files


def make_official_folder(root: Path, n_train_per_class: int = 5, n_test_per_class: int = 2) -> Path:
    """Write ``root/cifar-10-batches-py/``; returns that folder."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in official_files(n_train_per_class, n_test_per_class).items():
        (folder / name).write_bytes(data)
    return folder


def make_official_archive(path: Path, n_train_per_class: int = 5, n_test_per_class: int = 2) -> Path:
    """Write a ``cifar-10-python.tar.gz`` look-alike at ``path``."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in official_files(n_train_per_class, n_test_per_class).items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _encode(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format={"jpg": "JPEG"}.get(fmt, fmt.upper()))
    return buf.getvalue()


def imagefolder_files(n_train_per_class: int = 5, n_test_per_class: int = 2, fmt: str = "png") -> dict[str, bytes]:
    """``{"train/<class>/<i>.<fmt>": bytes, ...}`` for an ImageFolder tree."""
    files = {}
    for split, n, seed in (("train", n_train_per_class, 0), ("test", n_test_per_class, 1)):
        images, labels = make_arrays(n, seed)
        for i, (image, label) in enumerate(zip(images, labels)):
            files[f"{split}/{CLASSES[label]}/{i:04d}.{fmt}"] = _encode(image, fmt)
    return files


def make_imagefolder(root: Path, n_train_per_class: int = 5, n_test_per_class: int = 2, fmt: str = "png") -> Path:
    """Write an ImageFolder tree under ``root``; returns ``root``."""
    for name, data in imagefolder_files(n_train_per_class, n_test_per_class, fmt).items():
        (Path(root) / name).parent.mkdir(parents=True, exist_ok=True)
        (Path(root) / name).write_bytes(data)
    return Path(root)


def make_imagefolder_archive(path: Path, n_train_per_class: int = 5, n_test_per_class: int = 2,
                             fmt: str = "png", wrapper: str | None = None,
                             extra: dict[str, bytes] | None = None) -> Path:
    """Write an ImageFolder archive (``.tar``, ``.tar.gz``, ``.zip`` by suffix), optionally inside ``wrapper/``."""
    files = imagefolder_files(n_train_per_class, n_test_per_class, fmt)
    files = {(f"{wrapper}/{k}" if wrapper else k): v for k, v in files.items()}
    files.update(extra or {})
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path
