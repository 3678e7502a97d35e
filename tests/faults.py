"""Fault injection for tests: a small disk that fills up or turns read-only, and the CLI in a subprocess.

The disk is a tmpfs mounted for the test, so it needs root (CI runs as root).
Where mounting is not allowed the test is skipped with the reason, except in
CI (``CIFARLAB_REQUIRE_SERVICES=1``), where that is a failure.

Typical use::

    with small_disk(tmp_path / "disk", "1M") as disk:
        fill(disk, leave=4096)          # a full disk, 4 KiB to spare
        resize(disk, "64M")             # space freed
        read_only(disk)                 # remounted read-only
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from skips import skip_or_fail

BALLAST = "ballast"


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"1M"``) mounted at ``path`` for the block."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except FileNotFoundError:
        done = subprocess.CompletedProcess([], 1, "", "no mount command")
    if done.returncode:
        skip_or_fail(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def resize(disk: Path, size: str) -> None:
    """Grow (or shrink) the tmpfs at ``disk``: space freed, as by deleting other files."""
    done = _mount("-o", f"remount,size={size}", str(disk))
    assert done.returncode == 0, done.stderr


def read_only(disk: Path, on: bool = True) -> None:
    """Remount the tmpfs at ``disk`` read-only (or writable again)."""
    done = _mount("-o", f"remount,{'ro' if on else 'rw'}", str(disk))
    assert done.returncode == 0, done.stderr


def free_bytes(disk: Path) -> int:
    """Bytes a process may still write on ``disk``."""
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


def fill(disk: Path, leave: int = 0) -> Path:
    """Write a ballast file so that only about ``leave`` bytes stay free; returns it (delete it to free the space)."""
    ballast = disk / BALLAST
    with open(ballast, "ab") as f:
        f.write(b"\0" * max(0, free_bytes(disk) - leave))
    return ballast


def leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted atomic write would have left (``.<name>.<random>.tmp``), recursively."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*.tmp"))


def start_cli(*args: str, **popen) -> subprocess.Popen:
    """Start ``python -m cifarlab ARGS`` with text pipes for stdout and stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # torch's thread count as in this process: the same sums
    return subprocess.Popen([sys.executable, "-m", "cifarlab", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll ``condition`` until it holds; fail if ``proc`` ends first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (status {proc.returncode}) before the fault could be injected:\n{err}")
        assert time.monotonic() < deadline, "timed out waiting to inject the fault"
        time.sleep(0.02)


def one_line(stderr: str) -> str:
    """The only line of ``stderr`` that is not a progress bar or warning; fails if there are more or a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("cifarlab ")]
    assert len(lines) == 1, stderr
    return lines[0]
