"""Loading CIFAR-10 from every source form, safely, with caching and stratified splits."""

from __future__ import annotations

import http.server
import io
import os
import pickle
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import synthetic
from PIL import Image

from cifarlab.cli import main
from cifarlab.data import cache, decode_image, load_dataset, split_train_val, stratified_subset
from cifarlab.errors import DataError


def _check(data, n_train=50, n_test=20):
    assert data.train_images.shape == (n_train, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (n_test, 32, 32, 3)
    assert data.classes == synthetic.CLASSES
    assert np.bincount(data.train_labels).tolist() == [n_train // 10] * 10


def test_official_archive_and_folder_load_the_same(tmp_path):
    archive = load_dataset(synthetic.make_official_archive(tmp_path / "cifar-10-python.tar.gz"))
    folder = load_dataset(synthetic.make_official_folder(tmp_path / "extracted").parent)
    _check(archive)
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(archive, name), getattr(folder, name))
    # pixels survive the CHW row layout of the official format
    x, y = synthetic.make_arrays(2, seed=1)
    assert np.array_equal(archive.test_images, x) and np.array_equal(archive.test_labels, y)


@pytest.mark.parametrize("suffix, wrapper", [(".tar", None), (".tar.gz", None), (".zip", None),
                                             (".tar.gz", "cifar10"), (".zip", "cifar10")])
def test_imagefolder_archives_match_the_tree(tmp_path, suffix, wrapper):
    tree = load_dataset(synthetic.make_imagefolder(tmp_path / "tree"))
    packed = load_dataset(synthetic.make_imagefolder_archive(tmp_path / f"data{suffix}", wrapper=wrapper))
    _check(tree)
    assert np.array_equal(tree.train_images, packed.train_images)
    assert np.array_equal(tree.test_labels, packed.test_labels)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = synthetic.make_official_folder(tmp_path / "evil")
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_1: refused to load global (posix|os)\.system"):
        load_dataset(folder)
    assert not marker.exists()


def _serve(directory: Path):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_download_from_local_server_checks_md5(tmp_path, isolated_cache):
    import hashlib

    served = tmp_path / "served"
    served.mkdir()
    archive = synthetic.make_official_archive(served / "cifar-10-python.tar.gz")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    server = _serve(served)
    url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
    try:
        with pytest.raises(DataError, match=f"checksum mismatch, expected md5 {'0' * 32}, got {md5}"):
            load_dataset(None, url=url, md5="0" * 32, progress=False)
        assert not any(isolated_cache.iterdir()) or not (isolated_cache / "cifar-10-python.tar.gz").exists()
        assert not list(isolated_cache.glob("*.tmp"))
        _check(load_dataset(None, url=url, md5=md5, progress=False))
        assert (isolated_cache / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()
    finally:
        server.shutdown()


def test_unreachable_download_says_how_to_use_a_local_copy():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="cannot download CIFAR-10 from .*pass --data PATH"):
        load_dataset(None, url=f"http://127.0.0.1:{port}/x.tar.gz", progress=False)


def test_truncated_archive_is_named(tmp_path):
    good = synthetic.make_imagefolder_archive(tmp_path / "good.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="bad.tar.gz: truncated or corrupt archive"):
        load_dataset(bad)


def test_path_traversal_member_is_refused_and_nothing_written(tmp_path):
    evil = synthetic.make_imagefolder_archive(tmp_path / "evil.tar", extra={"../escape.png": b"x"})
    with pytest.raises(DataError, match="unsafe member path '../escape.png'"):
        load_dataset(evil)
    assert not (tmp_path.parent / "escape.png").exists()


def test_missing_class_and_bad_image_are_named(tmp_path):
    tree = synthetic.make_imagefolder(tmp_path / "tree")
    for f in (tree / "test" / "ship").iterdir():
        f.unlink()
    (tree / "test" / "ship").rmdir()
    with pytest.raises(DataError, match="missing class folder test/ship"):
        load_dataset(tree)
    tree2 = synthetic.make_imagefolder(tmp_path / "tree2")
    (tree2 / "train" / "cat" / "0003.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"train/cat/0003.png: cannot decode image"):
        load_dataset(tree2)


def test_missing_path_and_non_dataset_file(tmp_path):
    with pytest.raises(DataError, match="nope: no such dataset file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="notes.txt: not a dataset"):
        load_dataset(tmp_path / "notes.txt")


def test_second_load_comes_from_the_cache_and_content_changes_the_key(tmp_path, monkeypatch):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar")
    first = load_dataset(archive)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr("cifarlab.data.dataset.read_imagefolder", no_decoding)
    second = load_dataset(archive)
    assert "(cached)" in second.source and np.array_equal(first.train_images, second.train_images)
    monkeypatch.undo()
    synthetic.make_imagefolder_archive(archive, n_train_per_class=6)  # new content, same name
    assert load_dataset(archive).fingerprint != first.fingerprint


def test_corrupt_cache_file_is_rebuilt(tmp_path, isolated_cache):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar")
    data = load_dataset(archive)
    cache.cache_file(isolated_cache, data.fingerprint).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache file"):
        again = load_dataset(archive)
    assert np.array_equal(again.train_images, data.train_images)


def test_split_is_stratified_deterministic_disjoint_and_complete():
    labels = np.repeat(np.arange(10), 100)
    np.random.default_rng(0).shuffle(labels)
    train, val = split_train_val(labels, 200)
    assert np.bincount(labels[val]).tolist() == [20] * 10
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 1000
    again_train, again_val = split_train_val(labels, 200)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not np.array_equal(val, split_train_val(labels, 200, seed=1)[1])
    assert len(split_train_val(labels, 0)[1]) == 0
    sub = stratified_subset(train, labels, 50)
    assert len(sub) == 50 and np.bincount(labels[sub]).tolist() == [5] * 10 and np.isin(sub, train).all()


# Every mode each format can store (JPEG: no alpha or palette; 16-bit greyscale: PNG only).
_FORMAT_MODES = [(f, m) for f in ("PNG", "JPEG", "BMP", "WEBP") for m in ("RGB", "RGBA", "L", "P", "I;16")
                 if not (m == "I;16" and f != "PNG") and not (f == "JPEG" and m in ("RGBA", "P"))]


@pytest.mark.parametrize("fmt, mode", _FORMAT_MODES)
@pytest.mark.parametrize("size", [(32, 32), (100, 57)])
def test_decode_image_any_format_mode_size(fmt, mode, size):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    out = decode_image(buf.getvalue(), name="x")
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_cli_data_reports_counts(tmp_path, capsys):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.zip")
    assert main(["data", "--data", str(archive), "--val-size", "10"]) == 0
    out = capsys.readouterr().out
    assert "train 50" in out and "test 20" in out and "validation 10" in out
    assert main(["data", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing: no such dataset file or folder" in err


@pytest.mark.slow
def test_real_shared_copy_loads_completely(shared_cifar):
    data = load_dataset(shared_cifar, progress=False)
    assert data.train_images.shape == (50000, 32, 32, 3) and data.test_images.shape == (10000, 32, 32, 3)
    assert np.bincount(data.train_labels).tolist() == [5000] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
