"""Every form of CIFAR-10 that ``--data`` accepts loads to the same arrays."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import synthetic

from cifarlab.data import CLASSES, load_dataset
from cifarlab.errors import DataError

N_TRAIN, N_TEST = 6, 2  # per class


def _assert_same(a, b):
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def _assert_shapes(data):
    assert data.train_images.shape == (10 * N_TRAIN, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10 * N_TEST, 32, 32, 3) and data.test_images.dtype == np.uint8
    assert data.train_labels.dtype == np.int64 and data.test_labels.dtype == np.int64
    assert np.bincount(data.train_labels).tolist() == [N_TRAIN] * 10
    assert np.bincount(data.test_labels).tolist() == [N_TEST] * 10
    assert data.classes == CLASSES == synthetic.CLASSES
    assert len(data.fingerprint) == 64 and int(data.fingerprint, 16) >= 0


def test_official_archive_folder_and_parent_folder_load_the_same_pixels(tmp_path):
    archive = load_dataset(synthetic.make_official_archive(tmp_path, N_TRAIN, N_TEST), progress=False)
    folder = synthetic.make_official_folder(tmp_path / "extracted", N_TRAIN, N_TEST)
    from_folder = load_dataset(folder, progress=False)
    from_parent = load_dataset(folder.parent, progress=False)
    _assert_shapes(archive)
    _assert_same(archive, from_folder)
    _assert_same(archive, from_parent)
    # The planar (3, 32, 32) rows of the batches come back as the HWC images that were written.
    train_x, train_y, test_x, test_y = synthetic.official_arrays(N_TRAIN, N_TEST)
    assert np.array_equal(archive.train_images, train_x) and np.array_equal(archive.train_labels, train_y)
    assert np.array_equal(archive.test_images, test_x) and np.array_equal(archive.test_labels, test_y)
    assert archive.source == f"CIFAR-10 python version {tmp_path / 'cifar-10-python.tar.gz'}"
    assert from_folder.source == f"CIFAR-10 python version {folder}"


def test_official_batches_in_a_zip_load_like_the_tar(tmp_path):
    # Both layouts are read through one member reader, so the python version may come zipped too.
    import zipfile

    folder = synthetic.make_official_folder(tmp_path / "src", N_TRAIN, N_TEST)
    with zipfile.ZipFile(tmp_path / "cifar.zip", "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"cifar-10-batches-py/{f.name}")
    zipped = load_dataset(tmp_path / "cifar.zip", progress=False)
    _assert_same(zipped, load_dataset(folder, progress=False))
    assert zipped.source.startswith("CIFAR-10 python version")


def test_a_batch_file_found_twice_is_named(tmp_path):
    folder = synthetic.make_official_folder(tmp_path / "data", N_TRAIN, N_TEST)
    shutil.copytree(folder, tmp_path / "data" / "copy")
    with pytest.raises(DataError, match="data: holds two batches.meta files .*cifar-10-batches-py/batches.meta and "
                                        "copy/batches.meta"):
        load_dataset(tmp_path / "data", progress=False)


def test_python3_repickled_batches_load_too(tmp_path):
    # Python 3 writes bytes at protocol 2 through _codecs.encode(..., "latin1"), which the real files never use.
    folder = synthetic.make_official_folder(tmp_path, N_TRAIN, N_TEST)
    x, y = synthetic.make_arrays(1, seed=9)
    data = x.transpose(0, 3, 1, 2).reshape(10, 3072)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": y.tolist()}, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}, protocol=2))
    loaded = load_dataset(folder, progress=False)
    assert np.array_equal(loaded.test_images, x) and np.array_equal(loaded.test_labels, y)


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tgz", "zip"])
@pytest.mark.parametrize("wrapper", [None, "cifar10"])
def test_imagefolder_archives_load_like_the_tree(tmp_path, kind, wrapper):
    tree = load_dataset(synthetic.make_imagefolder(tmp_path / "tree", N_TRAIN, N_TEST), progress=False)
    archive = synthetic.make_imagefolder_archive(tmp_path / f"data.{kind}", N_TRAIN, N_TEST, wrapper=wrapper)
    packed = load_dataset(archive, progress=False)
    _assert_shapes(packed)
    _assert_same(tree, packed)
    assert packed.source == f"ImageFolder archive {archive}"
    # PNG is lossless and files sort by class then name: the arrays are exactly what was generated.
    assert np.array_equal(tree.train_images, synthetic.make_arrays(N_TRAIN, seed=0)[0])
    assert np.array_equal(tree.test_images, synthetic.make_arrays(N_TEST, seed=1)[0])


def test_tree_inside_a_wrapping_folder_and_jpeg_files(tmp_path):
    synthetic.make_imagefolder(tmp_path / "outer" / "cifar10", N_TRAIN, N_TEST, fmt="jpg")
    data = load_dataset(tmp_path / "outer", progress=False)
    _assert_shapes(data)
    # JPEG drops the pixel noise but keeps each image's colour: same images, same order.
    expected = synthetic.make_arrays(N_TRAIN, seed=0)[0].mean(axis=(1, 2))
    assert np.abs(data.train_images.mean(axis=(1, 2)) - expected).max() < 5


def test_files_outside_the_layout_are_ignored(tmp_path):
    tree = synthetic.make_imagefolder(tmp_path / "tree", N_TRAIN, N_TEST)
    (tree / "README.txt").write_text("not an image")
    (tree / "preview.png").write_bytes((tree / "train" / "cat" / "0018.png").read_bytes())
    (tree / "train" / "cat" / ".hidden.png").write_bytes(b"junk")
    (tree / "train" / "cat" / "notes.txt").write_text("junk")
    _assert_shapes(load_dataset(tree, progress=False))


def test_missing_class_folder_is_named(tmp_path):
    tree = synthetic.make_imagefolder(tmp_path / "tree", N_TRAIN, N_TEST)
    shutil.rmtree(tree / "test" / "ship")
    with pytest.raises(DataError, match="tree: missing class folder test/ship"):
        load_dataset(tree, progress=False)


def test_missing_class_inside_a_wrapped_archive_is_named(tmp_path):
    files = {f"cifar10/{k}": v for k, v in synthetic.imagefolder_files(1, 1).items() if "/frog/" not in k}
    archive = tmp_path / "d.zip"
    synthetic.make_imagefolder_archive(archive, 0, 0, extra=files)
    with pytest.raises(DataError, match="d.zip: missing class folder cifar10/train/frog"):
        load_dataset(archive, progress=False)


def test_extra_class_folder_is_named(tmp_path):
    tree = synthetic.make_imagefolder(tmp_path / "tree", N_TRAIN, N_TEST)
    shutil.copytree(tree / "train" / "cat", tree / "train" / "kitten")
    with pytest.raises(DataError, match="unknown class folder train/kitten"):
        load_dataset(tree, progress=False)


def test_undecodable_image_is_named(tmp_path):
    tree = synthetic.make_imagefolder(tmp_path / "tree", N_TRAIN, N_TEST)
    (tree / "train" / "cat" / "0033.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"tree/train/cat/0033\.png: cannot decode image"):
        load_dataset(tree, progress=False)
    bad = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 1, 1, extra={"train/dog/zz.jpg": b"\xff\xd8junk"})
    with pytest.raises(DataError, match=r"d\.tar: train/dog/zz\.jpg: cannot decode image"):
        load_dataset(bad, progress=False)


def test_missing_path_non_dataset_file_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="nope: no such dataset file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"notes\.txt: not a dataset"):
        load_dataset(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no train/<class>/ and test/<class>/ image folders"):
        load_dataset(tmp_path / "empty")


def test_incomplete_official_folder_lists_what_is_missing(tmp_path):
    folder = synthetic.make_official_folder(tmp_path, N_TRAIN, N_TEST)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="incomplete CIFAR-10 python version, missing data_batch_3"):
        load_dataset(folder)


@pytest.mark.parametrize("batch, message", [
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, "labels outside 0..9"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "2 images but labels of shape"),
    ({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, r"shape \(N, 3072\)"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "got float32 array"),
    ({"labels": [0, 1]}, "no 'data' entry"),
    ([1, 2, 3], "not a dict"),
])
def test_malformed_batches_are_named(tmp_path, batch, message):
    folder = synthetic.make_official_folder(tmp_path, N_TRAIN, N_TEST)
    (folder / "data_batch_2").write_bytes(synthetic.py2_pickle(batch))
    with pytest.raises(DataError, match=f"data_batch_2: .*{message}"):
        load_dataset(folder)


def test_wrong_class_names_in_meta_are_refused(tmp_path):
    folder = synthetic.make_official_folder(tmp_path, N_TRAIN, N_TEST)
    (folder / "batches.meta").write_bytes(synthetic.py2_pickle({"label_names": CLASSES[::-1]}))
    with pytest.raises(DataError, match="batches.meta: class names .* are not CIFAR-10's"):
        load_dataset(folder)
