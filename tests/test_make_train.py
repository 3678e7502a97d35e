"""``make train`` away from this repository's neighbours: the shared copy when present, else a download.

The download runs against a server on 127.0.0.1 (``test_data_download``'s) that
serves a synthetic archive; ``CIFARLAB_CIFAR10_URL``/``_MD5`` point cifarlab at it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import synthetic
from skips import skip_or_fail
from test_data_download import _serve

from cifarlab.data.download import FILENAME, MD5_ENV, URL_ENV
from cifarlab.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent  # the environment running the tests: make must not build another

if shutil.which("make") is None:  # CI runs the suite through make: there it is never missing
    skip_or_fail("make not installed: the Makefile tests need it")


def _make(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    # -o: treat the venv as installed; it is the one running these tests.
    command = ["make", "--no-print-directory", "-C", str(REPO), f"VENV={VENV}", "-o", f"{VENV}/.installed", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _train_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "cifarlab train" in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.slow
def test_make_train_uses_the_shared_copy_when_it_exists(tmp_path):
    shared = tmp_path / "shared" / "cifar10-jpeg.tar.gz"
    shared.parent.mkdir()
    shared.write_bytes(b"stand-in")
    line = _train_line(_make("-n", "train", f"SHARED_DATA={shared}").stdout)
    assert line.split()[-2:] == ["--data", str(shared)]


@pytest.mark.slow
def test_make_train_without_the_shared_copy_passes_no_data_so_cifarlab_downloads(tmp_path):
    line = _train_line(_make("-n", "train", f"SHARED_DATA={tmp_path / 'absent.tar.gz'}").stdout)
    assert "--data" not in line and line.split()[-2:] == ["--preset", "seed"]


@pytest.fixture
def served(tmp_path):
    """``(url, md5)`` of a synthetic official archive on a loopback HTTP server."""
    folder = tmp_path / "served"
    folder.mkdir()
    archive = synthetic.make_official_archive(folder, 6, 2)
    with _serve(folder) as base:
        yield f"{base}/{archive.name}", hashlib.md5(archive.read_bytes()).hexdigest()


@pytest.mark.slow
def test_make_train_downloads_into_the_cache_checks_the_md5_and_trains(tmp_path, served, isolated_cache):
    url, md5 = served
    out = tmp_path / "run"
    args = f"--epochs 1 --set data.val_size=10 --set data.max_test_images=20 --no-progress --out {out}"
    result = _make("train", f"SHARED_DATA={tmp_path / 'absent.tar.gz'}", f"TRAIN_ARGS={args}",
                   env={URL_ENV: url, MD5_ENV: md5})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (isolated_cache / FILENAME).is_file()  # downloaded into the cache, under the official name
    run = RunDir(out)
    assert run.summary()["status"] == "completed"
    assert run.summary()["data"] == f"CIFAR-10 python version {isolated_cache / FILENAME}"


@pytest.mark.slow
def test_make_train_refuses_a_download_whose_md5_does_not_match(tmp_path, served, isolated_cache):
    url, _ = served  # the official checksum is expected, and these bytes are not the official archive
    result = _make("train", f"SHARED_DATA={tmp_path / 'absent.tar.gz'}", "TRAIN_ARGS=--epochs 1",
                   env={URL_ENV: url, MD5_ENV: ""})
    assert result.returncode != 0
    assert "checksum mismatch" in result.stderr and "the download was deleted" in result.stderr
    assert not any(isolated_cache.iterdir())  # nothing half-downloaded left behind
