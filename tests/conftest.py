"""Shared fixtures: an isolated cache folder and small synthetic datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import the `synthetic` helpers module

import synthetic  # noqa: E402
from pg import MISSING, pg_url, postgres_server  # noqa: E402,F401  (fixtures: a throwaway PostgreSQL server)

REPO = Path(__file__).resolve().parent.parent
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """The cache folder of module- and session-scoped fixtures, which run before a test's own is set.

    Without it a report drawn once per module cached its dataset in the user's ``~/.cache/cifarlab``.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIFARLAB_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder: no test sees another's cached arrays."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("CIFARLAB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_imagefolder(tmp_path_factory) -> Path:
    """A PNG ImageFolder tree: 30 train and 10 test images per class."""
    return synthetic.make_imagefolder(tmp_path_factory.mktemp("imagefolder"), 30, 10)


@pytest.fixture(scope="session")
def shared_cifar() -> Path:
    """The shared JPEG copy of CIFAR-10, or a skip when this machine does not have it."""
    if not SHARED_CIFAR.is_file():
        pytest.skip("../shared/data/cifar10-jpeg.tar.gz not present: real-data test needs the shared JPEG copy")
    return SHARED_CIFAR


def pytest_terminal_summary(terminalreporter):
    """Say loudly when tests that need a service (PostgreSQL) were skipped: CI would have run them."""
    for reason in dict.fromkeys(MISSING):
        terminalreporter.write_sep("!", f"SKIPPED: {reason}", red=True, bold=True)
