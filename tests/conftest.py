"""Shared fixtures: an isolated cache folder and small synthetic datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import the `synthetic` helpers module

import synthetic  # noqa: E402
from pg import pg_url, postgres_server  # noqa: E402,F401  (fixtures: a throwaway PostgreSQL server)
from slurm import slurm_cluster  # noqa: E402,F401  (fixture: a throwaway one-node Slurm cluster)
from skips import skip_or_fail, summary_line  # noqa: E402

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
    """The shared JPEG copy of CIFAR-10, or a skip (a failure in CI) when this machine does not have it."""
    if not SHARED_CIFAR.is_file():
        skip_or_fail(f"{SHARED_CIFAR} not present: the real-data tests need the shared JPEG copy of CIFAR-10")
    return SHARED_CIFAR


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    """The run's last line, after pytest's own counts: how many tests were skipped and why, grouped by reason;
    loud when a skip hid something CI would have run (a service, an extra, the shared data)."""
    result = yield
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        line, loud = summary_line(reporter.stats.get("skipped", []))
        reporter.write_sep("!" if loud else "-", line, red=loud, bold=loud)
    return result
