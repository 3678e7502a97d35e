"""Downloading the official archive when no ``--data`` is given, from a server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest
import synthetic

from cifarlab.data import load_dataset
from cifarlab.data.download import FILENAME
from cifarlab.errors import DataError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serve(directory):
    """Serve ``directory`` on an ephemeral port of 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


@pytest.fixture
def served_archive(tmp_path):
    """``(url, md5, bytes)`` of a synthetic official archive served over HTTP."""
    served = tmp_path / "served"
    served.mkdir()
    archive = synthetic.make_official_archive(served)
    with _serve(served) as base:
        yield f"{base}/{archive.name}", hashlib.md5(archive.read_bytes()).hexdigest(), archive.read_bytes()


def test_download_with_the_right_md5_lands_in_the_cache_and_loads(served_archive, isolated_cache):
    url, md5, content = served_archive
    data = load_dataset(None, url=url, md5=md5, progress=False)
    assert data.train_images.shape == (60, 32, 32, 3) and np.bincount(data.test_labels).tolist() == [2] * 10
    assert (isolated_cache / FILENAME).read_bytes() == content
    assert data.source == f"CIFAR-10 python version {isolated_cache / FILENAME}"
    # Present now: the next load neither downloads nor needs the server.
    again = load_dataset(None, url="http://127.0.0.1:9/unused", md5="0" * 32, progress=False)
    assert again.fingerprint == data.fingerprint


def test_checksum_mismatch_deletes_the_download(served_archive, isolated_cache):
    url, md5, _ = served_archive
    with pytest.raises(DataError, match=f"checksum mismatch, expected md5 {'0' * 32}, got {md5}"):
        load_dataset(None, url=url, md5="0" * 32, progress=False)
    assert list(isolated_cache.iterdir()) == []  # neither the archive nor a temporary file


def test_url_from_the_environment(served_archive, isolated_cache, monkeypatch):
    url, md5, _ = served_archive
    monkeypatch.setenv("CIFARLAB_CIFAR10_URL", url)
    load_dataset(None, md5=md5, progress=False)
    assert (isolated_cache / FILENAME).is_file()


def test_missing_file_on_the_server_is_a_download_error(served_archive, isolated_cache):
    url, md5, _ = served_archive
    with pytest.raises(DataError, match=r"cannot download CIFAR-10 from .*/nothing\.tar\.gz: HTTP 404 File not found; "
                                        r"pass --data PATH"):
        load_dataset(None, url=url.rsplit("/", 1)[0] + "/nothing.tar.gz", md5=md5, progress=False)
    assert list(isolated_cache.iterdir()) == []


def test_unreachable_server_says_how_to_use_a_local_copy(isolated_cache):
    with socket.socket() as s:  # bound but never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/cifar-10-python.tar.gz"
        with pytest.raises(DataError, match=rf"cannot download CIFAR-10 from {url}: .*refused.*; pass --data PATH "
                                            r"to use a local copy \(official archive or ImageFolder tree/archive\)"):
            load_dataset(None, url=url, progress=False)
    assert list(isolated_cache.iterdir()) == []
