"""The machinery that keeps sweep workers apart and tied to their coordinator: the queue lock, the check that a
trial's worker process on this machine is dead (zombies included), and a worker's exit with its coordinator."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from skips import not_applicable

from cifarlab.errors import ConfigError
from cifarlab.sweeps.runner import PARENT_ENV
from cifarlab.sweeps.study import QueueLock, _dead_here

try:
    import fcntl
except ImportError:
    not_applicable("no fcntl (Windows): QueueLock has no file lock there, and workers no parent-death signal")
REPO = Path(__file__).resolve().parent.parent


def _locked_elsewhere(path: Path) -> bool:
    """Whether another open file of ``path`` holds its lock: a non-blocking try from a new descriptor."""
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def test_the_queue_lock_of_a_sqlite_study_is_a_file_beside_it_held_until_released(tmp_path):
    lock = QueueLock(f"sqlite:///{tmp_path / 'study.db'}")
    assert lock.path == tmp_path / "study.db.lock"
    with lock:
        assert _locked_elsewhere(lock.path)
        lock.release()  # the objective releases it as soon as its trial is out of the queue
        assert not _locked_elsewhere(lock.path)
    assert not _locked_elsewhere(lock.path)


def test_two_holders_of_the_queue_lock_take_turns(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first, second = QueueLock(url), QueueLock(url)
    taken = threading.Event()

    def other_worker():
        with second:
            taken.set()

    with first:
        worker = threading.Thread(target=other_worker, daemon=True)
        worker.start()
        # Were the lock no lock, the second holder would be in at once; it is given ample time to get in wrongly.
        assert not taken.wait(0.5)
    assert taken.wait(30)  # in as soon as the first let go
    worker.join(30)
    assert not _locked_elsewhere(first.path)


def test_releasing_a_queue_lock_that_is_not_held_does_nothing(tmp_path):
    lock = QueueLock(f"sqlite:///{tmp_path / 'study.db'}")
    lock.release()
    lock.release()
    assert not lock.path.exists()  # never taken, so never created
    with lock:
        pass
    lock.release()  # the with-block released it already
    with lock:  # and it can be taken again
        assert _locked_elsewhere(lock.path)


def test_only_a_sqlite_study_has_a_queue_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # A server database locks between Optuna's read and write of a queued trial itself: no file, nothing held.
    lock = QueueLock("postgresql://user:pw@db.example:5432/sweeps")
    assert lock.path is None
    with lock:
        assert lock._file is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="in-memory database"):
        QueueLock("sqlite:///:memory:")


def _trial(pid, host=None) -> SimpleNamespace:
    """What _dead_here reads of a trial: the worker's host name and process id."""
    return SimpleNamespace(user_attrs={"host": socket.gethostname() if host is None else host, "pid": pid})


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_killed_child_not_yet_reaped_is_dead(tmp_path):
    if not Path("/proc/self/stat").is_file():
        not_applicable("no /proc: the zombie check is Linux's")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _dead_here(_trial(child.pid)) is False  # alive
        assert _dead_here(_trial(child.pid, host="another-machine")) is False  # not this machine's to judge
        child.kill()
        deadline = time.monotonic() + 30
        while _state(child.pid) != "Z":  # killed, not yet reaped: it keeps its pid, and kill(pid, 0) succeeds
            assert time.monotonic() < deadline, "the killed child never became a zombie"
            time.sleep(0.01)
        os.kill(child.pid, 0)  # the premise: a signal test alone would call it alive
        assert _dead_here(_trial(child.pid)) is True
    finally:
        child.kill()
        child.wait()
    assert _dead_here(_trial(child.pid)) is True  # reaped: no such process
    assert _dead_here(_trial(os.getpid())) is True  # this process runs no trial while it looks: a reused pid
    assert _dead_here(_trial(None)) is False  # a trial that has not said who runs it


# A worker as the coordinator starts it: it ties itself to its parent, says so, and reports an interruption.
WORKER = """
import sys, time
from cifarlab.sweeps.runner import exit_with_coordinator
try:
    exit_with_coordinator()
    print("ready", flush=True)
    time.sleep(60)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
# The coordinator: starts the worker with its own pid in the environment, says the worker's pid, then waits.
COORDINATOR = f"""
import os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", {WORKER!r}], env={{**os.environ, {PARENT_ENV!r}: str(os.getpid())}},
                          stdout=open(sys.argv[1], "w"))
print(worker.pid, flush=True)
time.sleep(60)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_a_worker_is_interrupted_when_its_coordinator_is_killed(tmp_path):
    if not sys.platform.startswith("linux"):
        not_applicable("the parent-death signal (prctl) is Linux's")
    log = tmp_path / "worker.log"
    coordinator = subprocess.Popen([sys.executable, "-c", COORDINATOR, str(log)], stdout=subprocess.PIPE, text=True,
                                   env=_env())
    worker_pid = int(coordinator.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text():
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.05)
        coordinator.kill()  # kill -9: the coordinator can pass nothing on
        coordinator.wait()
        while "interrupted" not in log.read_text():
            assert time.monotonic() < deadline, f"the worker was not interrupted: {log.read_text()!r}"
            time.sleep(0.05)
        assert log.read_text().splitlines() == ["ready", "interrupted"]
    finally:
        coordinator.kill()
        with contextlib.suppress(ProcessLookupError):  # a failed test leaves no worker behind
            os.kill(worker_pid, signal.SIGKILL)


def _worker_run(parent: int) -> str:
    done = subprocess.run([sys.executable, "-c", WORKER.replace("time.sleep(60)", "")], capture_output=True,
                          text=True, timeout=60, env={**_env(), PARENT_ENV: str(parent)})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.slow
def test_a_worker_whose_coordinator_is_already_gone_stops_at_once():
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert _worker_run(gone.pid) == ["interrupted"]  # its parent is not the coordinator it was given
    assert _worker_run(os.getpid()) == ["ready", "not interrupted"]  # the premise: with its coordinator it runs
