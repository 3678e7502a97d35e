"""A throwaway PostgreSQL server for the tests: Debian's initdb and pg_ctl in a temporary folder, on a loopback port.

The server is started once per test session and stopped at its end; every test
gets a fresh database in it. Without the server binaries (or the psycopg driver)
the tests that need it skip, and the session's last line says so loudly, except under
``CIFARLAB_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where they fail instead (``skips.py`` decides).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from skips import skip_or_fail

USER, PASSWORD = "cifarlab", "s3cret-pw"


def _bindir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One PostgreSQL cluster in a temporary folder, run as the ``postgres`` user when the tests run as root."""

    def __init__(self, bindir: Path):
        self.bindir, self.port = bindir, _free_port()
        # Not under pytest's 0700 tmp folders: the postgres user must be able to enter it.
        self.root = Path(tempfile.mkdtemp(prefix="cifarlab-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        # initdb refuses to run as root, as CI does
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
        self._databases = 0

    def _pg(self, tool: str, *args: str) -> None:
        result = subprocess.run([str(self.bindir / tool), *args], user=self.user, capture_output=True, text=True,
                                cwd=self.root, timeout=120)
        if result.returncode:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {result.stderr.strip()}\n{log}")

    def init(self) -> None:
        """Create the cluster: a password-protected superuser, reachable over TCP on 127.0.0.1 only."""
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            shutil.chown(pwfile, self.user)
        self._pg("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                 "--no-sync", "--no-instructions", "-E", "UTF8")

    def start(self) -> None:
        """Start (or start again) the server and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        """Stop the server, dropping every connection (as a maintenance restart does)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """``pg_ctl restart``: every client connection is dropped, the server is back within a second or two."""
        self.stop()
        self.start()

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        """A SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, hint: str) -> str:
        """A new, empty database; its URL."""
        import psycopg

        self._databases += 1
        name = f"t{self._databases}_" + re.sub(r"[^a-z0-9]+", "_", hint.lower())[:40]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} password={PASSWORD} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server if it runs and delete its folder."""
        try:
            self.stop()
        except RuntimeError:  # it was not running
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server (skip, or fail in CI, when PostgreSQL or psycopg is missing)."""
    bindir = _bindir()
    if bindir is None:
        skip_or_fail("PostgreSQL server binaries not found (apt-get install postgresql): PostgreSQL tests skipped")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg not installed (pip install -e '.[postgres]'): PostgreSQL tests skipped")
    server = Server(bindir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(postgres_server, request) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return postgres_server.create_database(request.node.name)
