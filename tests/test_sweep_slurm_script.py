"""``cifarlab sweep --slurm``'s script and errors, and a worker's Slurm bookkeeping, without a Slurm cluster (the
cluster's own tests are test_sweep_slurm.py)."""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

import pytest
import yaml

from cifarlab.cli import main
from cifarlab.sweeps import runner, slurm
from cifarlab.sweeps.options import STORAGE_ENV

GRID = {"name": "tiny", "base": {"preset": "seed"}, "fixed": {"train.epochs": 1},
        "search": {"grid": {"optim.lr": [0.003, 0.0003]}}}


def _sweep(tmp_path: Path, *args: str) -> list[str]:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(GRID))
    return ["sweep", str(path), "--out", str(tmp_path / "out"), "--storage", "postgresql://u:pw@db/s", *args]


def test_dry_run_writes_and_prints_the_script_and_gpus_pin_the_worker(tmp_path, capsys):
    assert main(_sweep(tmp_path, "--slurm", "3", "--slurm-option=--gres=gpu:2", "--dry-run")) == 0
    printed = capsys.readouterr().out
    script = tmp_path / "out" / slurm.SCRIPT
    assert script.read_text() == printed and stat.S_IMODE(script.stat().st_mode) == 0o700  # it holds a password
    assert "#SBATCH --array=0-2\n" in printed and "#SBATCH --requeue\n" in printed and "--gres=gpu:2" in printed
    assert "#SBATCH --signal=TERM@60\n" in printed and f"export {slurm.REQUEUE_ENV}=1\n" in printed
    worker = shlex.split(printed.splitlines()[-1])
    assert worker[:3] == ["exec", "srun", "--export=ALL"] and worker[-2:] == ["--devices", "all"]
    # The password stays off the worker's command line, which every user of the node sees in ps.
    assert "--storage" not in worker and "pw" not in printed.splitlines()[-1] and "--slurm" not in worker
    assert f"export {STORAGE_ENV}=postgresql://u:pw@db/s\n" in printed


def test_the_storage_may_come_from_the_environment(tmp_path, capsys, monkeypatch):
    command = _sweep(tmp_path, "--slurm", "2", "--dry-run")
    del command[command.index("--storage"):command.index("--storage") + 2]
    monkeypatch.setenv(STORAGE_ENV, "postgresql://u:it's@db/s")  # a quote, which the script must keep
    assert main(command) == 0
    exported = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"export {STORAGE_ENV}="))
    assert shlex.split(exported.removeprefix("export "))[0] == f"{STORAGE_ENV}=postgresql://u:it's@db/s"


def test_without_gpus_the_workers_option_is_passed_on(tmp_path, capsys):
    assert main(_sweep(tmp_path, "--slurm", "1", "--workers", "2", "--dry-run")) == 0
    worker = shlex.split(capsys.readouterr().out.splitlines()[-1])
    assert worker[-2:] == ["--workers", "2"] and "--devices" not in worker


@pytest.mark.parametrize(("args", "message"), [
    (["--slurm", "0", "--dry-run"], "--slurm must be at least 1 array task, got 0"),
    (["--slurm-option=--time=5"], "--slurm-option is an sbatch option for --slurm TASKS; give --slurm too"),
])
def test_bad_slurm_options_are_one_line(tmp_path, capsys, args, message):
    assert main(_sweep(tmp_path, *args)) == 2
    assert capsys.readouterr().err.strip() == f"cifarlab sweep: error: {message}"


def test_slurm_needs_a_storage_every_node_reaches(tmp_path, capsys):
    command = _sweep(tmp_path, "--slurm", "2", "--dry-run")
    at = command.index("--storage")
    del command[at:at + 2]  # no --storage: the default SQLite file
    assert main(command) == 2
    assert "--slurm: give --storage URL, a database every node reaches" in capsys.readouterr().err


def test_without_sbatch_the_script_is_kept_and_the_error_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = tmp_path / slurm.SCRIPT
    with pytest.raises(slurm.ConfigError, match=f"--slurm: sbatch not found on PATH .*the script is {path}"):
        slurm.submit(path)


def test_a_trial_records_its_array_task_and_the_table_shows_each_attempt():
    env = {"SLURM_ARRAY_JOB_ID": "12", "SLURM_ARRAY_TASK_ID": "1", "SLURM_JOB_ID": "14", "SLURM_RESTART_COUNT": "1"}
    attrs = slurm.trial_attrs(env)
    assert attrs == {"slurm_task": "12_1", "slurm_job_id": "14", "slurm_restarts": 1}
    assert slurm.describe_attempt({**attrs, "host": "node7"}) == "12_1@node7 (requeued 1×)"
    assert slurm.trial_attrs({"SLURM_JOB_ID": "9"})["slurm_task"] == "9" and slurm.trial_attrs({}) == {}


def test_requeue_outside_slurm_does_nothing(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert slurm.requeue_this_task() == "not a Slurm task: nothing requeued"


def _fake_scontrol(tmp_path: Path, monkeypatch, state: str) -> Path:
    """An scontrol on PATH that reports ``state`` and logs its calls."""
    bindir, calls = tmp_path / "bin", tmp_path / "calls"
    bindir.mkdir(parents=True)
    (bindir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "JobId=14 JobState={state} Reason=None"\n')
    (bindir / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("SLURM_JOB_ID", "14")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    return calls


def test_a_running_task_requeues_itself_but_a_cancelled_one_stays_cancelled(tmp_path, monkeypatch):
    calls = _fake_scontrol(tmp_path, monkeypatch, "RUNNING")
    assert slurm.requeue_this_task() == "requeued Slurm task 12_1: it continues the sweep when it starts again"
    assert calls.read_text().splitlines() == ["show job -o 12_1", "requeue 12_1"]
    calls = _fake_scontrol(tmp_path / "cancelled", monkeypatch, "COMPLETING")
    assert "not requeued (JobState=COMPLETING" in slurm.requeue_this_task()
    assert calls.read_text().splitlines() == ["show job -o 12_1"]


def test_the_arrays_last_task_requeues_itself_not_the_whole_array(tmp_path, monkeypatch):
    calls = _fake_scontrol(tmp_path, monkeypatch, "RUNNING")
    monkeypatch.setenv("SLURM_JOB_ID", "12")  # the last task keeps the array's job id: `requeue 12` means all tasks
    slurm.requeue_this_task()
    assert calls.read_text().splitlines() == ["show job -o 12_1", "requeue 12_1"]


def test_a_pinned_worker_gets_the_nth_of_the_gpus_slurm_gave_its_task(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert runner.worker_env("cuda:1", 2, "sqlite:///x.db")["CUDA_VISIBLE_DEVICES"] == "3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert runner.worker_env("cuda:1", 2, "sqlite:///x.db")["CUDA_VISIBLE_DEVICES"] == "1"
    assert runner.worker_env("cpu", 2, "sqlite:///x.db")["CUDA_VISIBLE_DEVICES"] == ""
