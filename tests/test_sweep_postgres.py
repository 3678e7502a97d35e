"""Sweeps on a real PostgreSQL server (tests/pg.py starts one): workers on several "machines", kill -9 takeover,
the table and optuna-dashboard from the database alone, outages, and bad input.

Several machines are simulated on this one: each worker runs in its own folder (no shared run
directories) and, where the kernel allows, in its own UTS namespace with its own host name, so that
a dead worker is found only as on a real cluster, by its stale heartbeat, not by its process id.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import synthetic
import yaml
from optuna.trial import TrialState
from skips import require_module, skip_or_fail

from cifarlab.cli import main
from cifarlab.sweeps import SweepOptions, load_sweep
from cifarlab.sweeps.study import StorageOutage, open_study, storage_url

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")

TINY = {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.batch_size": 25,
        "data.val_size": 50}


def _grid(epochs: int) -> dict:
    return {"name": "tiny", "base": {"preset": "seed"}, "fixed": {**TINY, "train.epochs": epochs},
            "search": {"grid": {"optim.lr": [0.003, 0.0003], "optim.name": ["adam", "sgd"]}}}


def _machine(name: str) -> list[str]:
    """A command prefix running the command under host name ``name`` (a UTS namespace: root on Linux)."""
    probe = subprocess.run(["unshare", "--uts", "hostname", "probe"], capture_output=True) \
        if shutil.which("unshare") else None
    if probe is None or probe.returncode:
        skip_or_fail("unshare --uts (root on Linux) is needed to give a simulated machine its own host name")
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name]


def _worker(folder: Path, spec: dict, data: Path, url: str, *extra: str, host: str | None = None,
            **popen) -> subprocess.Popen:
    """`cifarlab sweep` run from its own folder, with its own copy of the sweep file (as on another machine)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.yaml").write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "cifarlab", "sweep", "sweep.yaml", "--data", str(data), "--out", "sweep",
               "--storage", url, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny networks: one thread each is fastest on busy CI cores
    return subprocess.Popen((_machine(host) if host else []) + command, cwd=folder, env=env, text=True, **popen)


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="tiny", storage=storage_url(url)).trials
    except KeyError:  # no worker has created it yet
        return []


def _assert_every_slot_completed_once(url: str, n: int = 4) -> list[optuna.trial.FrozenTrial]:
    done = [t for t in _trials(url) if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["slot"] for t in done) == list(range(n))
    return done


def _runs_table(url: str, folder: Path) -> list[dict]:
    """`cifarlab runs --storage URL --format json`, run from a folder holding no run directory."""
    folder.mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, "-m", "cifarlab", "runs", "--storage", url, "--format", "json"],
                         cwd=folder, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# --- bad input: one line, exit 2, nothing lost ---------------------------------------------------


def _write(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _one_line_error(capsys, tmp_path, *args: str) -> str:
    assert main(["sweep", str(_write(tmp_path, _grid(1))), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


@pytest.mark.slow
def test_an_unreachable_server_is_one_line(tmp_path, capsys, postgres_server):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = _one_line_error(capsys, tmp_path, "--storage", f"postgresql://u:pw@127.0.0.1:{port}/db")
    assert "--storage postgresql://u:***@127.0.0.1" in err and "cannot open" in err and "refused" in err


@pytest.mark.slow
def test_wrong_credentials_are_one_line_with_the_password_masked(tmp_path, capsys, postgres_server):
    url = postgres_server.url(password="not-the-password").replace("postgresql+psycopg://", "postgresql://")
    err = _one_line_error(capsys, tmp_path, "--storage", url)
    assert "password authentication failed" in err and "***" in err and "not-the-password" not in err


@pytest.mark.slow
def test_a_missing_driver_names_the_extra_to_install(tmp_path, capsys, monkeypatch, pg_url):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    err = _one_line_error(capsys, tmp_path, "--storage", pg_url)
    assert "driver is not installed" in err and "pip install 'cifarlab[postgres]'" in err


@pytest.mark.slow
def test_a_database_holding_another_sweeps_plan_is_refused_and_left_as_it_was(tmp_path, capsys, pg_url):
    study = open_study(load_sweep(_write(tmp_path, _grid(1))), pg_url)
    study.enqueue_trial({}, user_attrs={"slot": 0})
    before = (study.user_attrs, [(t.number, t.state) for t in study.trials])
    err = _one_line_error(capsys, tmp_path, "--storage", pg_url, "--epochs", "3")
    assert "was started with other settings" in err and "***" in err
    study = optuna.load_study(study_name="tiny", storage=storage_url(pg_url))
    assert (study.user_attrs, [(t.number, t.state) for t in study.trials]) == before


# --- outages ----------------------------------------------------------------------------------------


class _Clock:
    """The clock of sweeps/study.py: its backoff sleeps recorded and, when ``fake``, only advancing a counter, so
    that an outage's window is checked by what the code waited, never by timing the test."""

    def __init__(self, fake: bool):
        self.fake, self.now, self.sleeps = fake, 1000.0, []

    def monotonic(self) -> float:
        return self.now if self.fake else time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.fake:
            self.now += seconds
        else:
            time.sleep(seconds)


@pytest.mark.slow  # it waits out a server restart of 2 s
def test_a_server_restart_is_ridden_out_and_a_longer_outage_is_one_line(tmp_path, postgres_server, pg_url,
                                                                        monkeypatch):
    spec = load_sweep(_write(tmp_path, _grid(1)), SweepOptions(storage_patience=30))
    study = open_study(spec, pg_url)
    study.enqueue_trial({}, user_attrs={"slot": 0})
    clock = _Clock(fake=False)
    monkeypatch.setattr("cifarlab.sweeps.study.time", clock)
    postgres_server.stop()
    back = threading.Timer(2.0, postgres_server.start)
    back.start()
    try:
        assert len(study.get_trials()) == 1  # waited for the server, then read it
    finally:
        back.join()
    assert clock.sleeps[:2] == [0.5, 1.0]  # it met the outage and backed off, doubling
    assert study._storage._backend.down_since is None  # and knows the server is back
    clock = _Clock(fake=True)
    monkeypatch.setattr("cifarlab.sweeps.study.time", clock)
    study._storage._backend.patience = 1.2  # the window: past it, one line
    postgres_server.stop()
    try:
        with pytest.raises(StorageOutage) as caught:
            study.set_user_attr("note", "written during the outage")
    finally:
        postgres_server.start()
    # backed off, doubling, to the end of the window and no further: 0.5 s, then the 0.7 s left of 1.2
    assert clock.sleeps == pytest.approx([0.5, 0.7])
    message = str(caught.value)
    assert "unreachable for 1 s" in message and "run the same command again" in message
    assert "\n" not in message and postgres_server.url().split(":")[2].split("@")[0] not in message  # password
    assert "note" not in study.user_attrs and len(study.get_trials()) == 1  # nothing half-written


@pytest.mark.slow  # it waits out outages of a few seconds
def test_sqlite_database_is_locked_beyond_its_timeout_is_retried_then_one_line(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.setattr("cifarlab.sweeps.study.SQLITE_TIMEOUT", 0.2)
    db = tmp_path / "study.db"
    study = open_study(load_sweep(_write(tmp_path, _grid(1)), SweepOptions(storage_patience=30)), f"sqlite:///{db}")
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the database
    threading.Timer(1.5, blocker.rollback).start()
    study.enqueue_trial({}, user_attrs={"slot": 0})  # locked for 1.5 s: retried until it could write
    study._storage._backend.patience = 1.0
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageOutage, match="unreachable for 1 s .*database is locked"):
            study.set_user_attr("note", "written while locked")
    finally:
        blocker.rollback()
    assert "note" not in study.user_attrs and len(study.get_trials()) == 1


# --- concurrent creation ----------------------------------------------------------------------------


def _open_together(url: str, path: str, barrier, results) -> None:
    try:
        barrier.wait()
        open_study(load_sweep(path), url)
        results.put("ok")
    except BaseException as exc:  # noqa: BLE001  (reported to the test)
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_workers_starting_together_on_an_empty_database_all_open_it(tmp_path, pg_url):
    path = str(_write(tmp_path, _grid(1)))
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.Queue()
    procs = [context.Process(target=_open_together, args=(pg_url, path, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [results.get(timeout=5) for _ in procs] == ["ok"] * 4
    assert optuna.load_study(study_name="tiny", storage=storage_url(pg_url)).user_attrs["kind"] == "grid"


# --- two machines, one study -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_machine_sweep(postgres_server, tiny_imagefolder, tmp_path_factory):
    """A 4-trial grid run by two workers in separate folders, started together against an empty database."""
    url = postgres_server.create_database("two_machines").replace("postgresql+psycopg://", "postgresql://")
    root = tmp_path_factory.mktemp("machines")
    procs = [_worker(root / name, _grid(2), tiny_imagefolder, url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in ("a", "b")]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    return url, root, [out for out, _ in outputs]


@pytest.mark.slow
def test_two_workers_in_separate_folders_run_every_trial_once(two_machine_sweep):
    url, root, outputs = two_machine_sweep
    done = _assert_every_slot_completed_once(url)
    assert len({t.user_attrs["pid"] for t in done}) == 2  # both workers trained
    ran = {name: sorted(p.name for p in (root / name / "sweep" / "trials").iterdir()) for name in ("a", "b")}
    assert not set(ran["a"]) & set(ran["b"]) and len(ran["a"]) + len(ran["b"]) == 4  # nothing shared or twice
    for out in outputs:  # each prints the whole table, its own and the other's trials
        assert sum(line.startswith("lr=") for line in out.splitlines()) == 4
    for trial in done:  # learning curves for Optuna's tools
        assert sorted(trial.intermediate_values) == [1, 2]


@pytest.mark.slow
def test_the_table_from_a_third_folder_comes_from_the_database(two_machine_sweep, tmp_path):
    url, root, _ = two_machine_sweep
    rows = _runs_table(url, tmp_path / "third")
    assert sorted(r["label"] for r in rows) == ["lr=0.0003,name=adam", "lr=0.0003,name=sgd", "lr=0.003,name=adam",
                                                "lr=0.003,name=sgd"]
    assert synthetic.statuses(rows) == {"completed"} and all(r["val acc"] > 0 for r in rows)
    assert all(r["run"].split(":", 1)[1].startswith(str(root)) for r in rows)  # host:path where it ran


@pytest.mark.slow
def test_optuna_dashboard_serves_the_study_and_its_trials(two_machine_sweep):
    require_module("optuna_dashboard", "dashboard")
    url, _, _ = two_machine_sweep
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = shutil.which("optuna-dashboard", path=Path(sys.executable).parent) or "optuna-dashboard"
    dashboard = subprocess.Popen([command, storage_url(url), "--host", "127.0.0.1", "--port", str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def get(path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return json.load(response)

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = get("/api/studies")["study_summaries"]
                break
            except OSError:
                assert dashboard.poll() is None, dashboard.stderr.read()
                assert time.monotonic() < deadline, "optuna-dashboard did not answer within 60 s"
                time.sleep(0.3)
        assert [s["study_name"] for s in studies] == ["tiny"]
        detail = get(f"/api/studies/{studies[0]['study_id']}?after=0")
        complete = [t for t in detail["trials"] if t["state"] == "Complete"]
        assert len(complete) == 4
        assert all([v["step"] for v in t["intermediate_values"]] == [1, 2] for t in complete)
        assert {t["values"][0] for t in complete} == \
            {t.value for t in _trials(url) if t.state == TrialState.COMPLETE}
    finally:
        dashboard.terminate()
        dashboard.wait(10)


# --- kill -9 on one machine: the other takes its trial over ---------------------------------------


def _kill_mid_trial(root: Path, data: Path, url: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    """Machines a and b share the study; a is killed with kill -9 after its first trial's first checkpoint."""
    a, b = (_worker(root / name, _grid(4), data, url, *extra, host=f"machine-{name}", stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE) for name in ("a", "b"))
    deadline, run_dir = time.monotonic() + 120, None
    while run_dir is None or not (run_dir / "checkpoint.safetensors").exists():
        assert a.poll() is None and time.monotonic() < deadline, "machine a ended before its first checkpoint"
        if run_dir is None:
            running = [t for t in _trials(url) if t.state == TrialState.RUNNING
                       and t.user_attrs.get("host") == "machine-a" and "run_dir" in t.user_attrs]
            run_dir = Path(running[0].user_attrs["run_dir"]) if running else None
        time.sleep(0.02 if run_dir else 0.2)
    a.send_signal(signal.SIGKILL)  # mid-trial: its first epoch is checkpointed, more to go
    a.wait()
    assert [t.state for t in _trials(url) if str(run_dir) == t.user_attrs.get("run_dir")] == [TrialState.RUNNING]
    return b, run_dir


@pytest.mark.slow
def test_a_killed_machines_trial_is_restarted_by_the_other_and_marked(tiny_imagefolder, tmp_path, pg_url):
    b, _ = _kill_mid_trial(tmp_path, tiny_imagefolder, pg_url)
    out, err = b.communicate(timeout=300)  # it waits out the heartbeat grace period, then takes the trial
    assert b.returncode == 0, err
    done = _assert_every_slot_completed_once(pg_url)
    # Duplicates (a worker's ask() that lost a race for a queued slot) step aside untrained
    dead = [t for t in _trials(pg_url) if t.state == TrialState.FAIL and not t.user_attrs.get("duplicate")]
    assert [t.user_attrs["host"] for t in dead] == ["machine-a"]
    assert {t.user_attrs["host"] for t in done} == {"machine-b"}
    rows = {r["label"]: r for r in _runs_table(pg_url, tmp_path / "third")}
    assert rows[dead[0].user_attrs["label"]]["status"] == "completed (restarted)"
    assert sorted(r["status"] for r in rows.values()).count("completed") == 3


@pytest.mark.slow
def test_with_shared_artifacts_the_other_machine_resumes_the_checkpoint(tiny_imagefolder, tmp_path, pg_url):
    shared = tmp_path / "nfs"
    b, run_dir = _kill_mid_trial(tmp_path, tiny_imagefolder, pg_url, "--artifacts", str(shared), "--verbose")
    out, err = b.communicate(timeout=300)
    assert b.returncode == 0, err
    assert "resuming after epoch" in out
    _assert_every_slot_completed_once(pg_url)
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["type"] == "epoch"]
    assert epochs == [1, 2, 3, 4]  # no epoch trained twice
    assert sorted(synthetic.statuses(_runs_table(pg_url, tmp_path / "third"))) == \
        ["completed", "completed (resumed)"]


# --- the server restarts mid-sweep ------------------------------------------------------------------


@pytest.mark.slow
def test_a_sweep_survives_a_server_restart_and_one_past_its_patience_is_rerun(tiny_imagefolder, tmp_path,
                                                                           postgres_server, pg_url):
    first = _worker(tmp_path / "m", _grid(3), tiny_imagefolder, pg_url, "--storage-patience", "3",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert first.stdout.readline().startswith("[1/4] ")
    postgres_server.restart()  # back within the window: the sweep carries on
    assert first.stdout.readline().startswith("[2/4] ")
    postgres_server.stop()  # down for longer than the window: one line, exit 2
    try:
        out, err = first.communicate(timeout=120)
    finally:
        postgres_server.start()
    assert first.returncode == 2, err
    assert err.strip().count("\n") == 0 and "unreachable for 3 s" in err and "Traceback" not in err
    again = _worker(tmp_path / "m", _grid(3), tiny_imagefolder, pg_url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    _assert_every_slot_completed_once(pg_url)
