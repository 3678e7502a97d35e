"""Sweeps as Slurm job arrays, on a real one-node Slurm cluster (tests/slurm.py) and a real PostgreSQL study.

Every test submits a 4-trial grid with the README's cluster command (2 array tasks) and then does to one task what
a cluster does: nothing, ``scancel --signal=TERM``, its time limit, ``scancel --signal=KILL``. Each trial must end
once, a stopped trial must resume from its checkpoint in the shared ``--artifacts`` folder, and a requeued task's
runs must be in Slurm's accounting (``sacct``) as they happened.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from cifarlab.sweeps.study import storage_url

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Heartbeat of storage")]

README = Path(__file__).resolve().parent.parent / "README.md"
TINY = {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.batch_size": 25,
        "data.val_size": 50}


def readme_commands() -> tuple[str, str]:
    """The README's two cluster lines: the submission and the table."""
    lines = [line.split("  #")[0].strip() for line in README.read_text().splitlines()]
    submit = [line for line in lines if line.startswith("cifarlab sweep ") and " --slurm " in line]
    table = [line for line in lines if line.startswith("cifarlab runs --storage ")]
    assert len(submit) == 1 and len(table) == 1, "the README shows one cluster submission and one table line"
    return submit[0], table[0]


def _from_readme(line: str, **values: str) -> list[str]:
    """A README line as argv, its placeholders (PATH, "$URL", ...) replaced; ``cifarlab`` is this interpreter's."""
    words = shlex.split(line)
    unknown = [w for w in words if w.isupper() or w.startswith("$") or w == "my-sweep.yaml"]
    assert set(unknown) <= set(values), f"README placeholders without a value: {unknown}"
    return [sys.executable, "-m", "cifarlab", *[values.get(w, w) for w in words[1:]]]


def test_the_readme_cluster_lines_have_the_placeholders_the_tests_fill():
    submit, table = readme_commands()
    assert _from_readme(submit, **{"my-sweep.yaml": "s.yaml", "PATH": "d", "$URL": "u", "SHARED": "a", "8": "2"})[3:] \
        == ["sweep", "s.yaml", "--data", "d", "--storage", "u", "--artifacts", "a", "--slurm", "2",
            "--slurm-option=--time=4:00:00"]
    assert _from_readme(table, **{"$URL": "u"})[3:] == ["runs", "--storage", "u"]


def _grid(epochs: int | list[int]) -> dict:
    """4 trials of ``epochs`` each, or one trial per entry of a list of 4."""
    if isinstance(epochs, list):
        return {"name": "tiny", "base": {"preset": "seed"}, "fixed": TINY, "search": {"grid": {"train.epochs": epochs}}}
    return {"name": "tiny", "base": {"preset": "seed"}, "fixed": {**TINY, "train.epochs": epochs},
            "search": {"grid": {"optim.lr": [0.003, 0.0003], "optim.name": ["adam", "sgd"]}}}


class Array:
    """A sweep submitted as a 2-task array with the README's command, and what the tests look at."""

    def __init__(self, cluster, tmp_path: Path, data: Path, url: str, epochs: int | list[int]):
        self.cluster, self.url, self.folder = cluster, url, tmp_path
        (tmp_path / "my-sweep.yaml").write_text(yaml.safe_dump(_grid(epochs)))
        self.artifacts = tmp_path / "shared"
        argv = _from_readme(readme_commands()[0], **{"my-sweep.yaml": "my-sweep.yaml", "PATH": str(data),
                                                    "$URL": url, "SHARED": str(self.artifacts), "8": "2"})
        # sbatch passes its environment on to the tasks: one torch thread each on the shared CI cores
        done = subprocess.run(argv, cwd=tmp_path, env={**cluster.env(), "OMP_NUM_THREADS": "1"},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        self.job = done.stdout.split()[2].rstrip(":")
        assert done.stdout.startswith(f"Slurm job {self.job}: 2 array tasks"), done.stdout
        self.sweep_dir = tmp_path / "sweeps" / "tiny"

    def task(self, index: int) -> str:
        return f"{self.job}_{index}"

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name="tiny", storage=storage_url(self.url)).trials
        except KeyError:  # no task has created it yet
            return []

    def checkpointed_trial(self, index: int | None = None) -> tuple[Path, int]:
        """The run directory of the trial that task ``index`` (default: slot 0's task) runs, once its first epoch
        is checkpointed, and the task's index."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = [t for t in self.trials() if t.state == TrialState.RUNNING and "run_dir" in t.user_attrs
                       and (t.user_attrs.get("slurm_task") == self.task(index) if index is not None
                            else t.user_attrs["slot"] == 0)]
            if running and (Path(running[0].user_attrs["run_dir"]) / "checkpoint.safetensors").exists():
                return Path(running[0].user_attrs["run_dir"]), int(running[0].user_attrs["slurm_task"].split("_")[1])
            time.sleep(0.05 if running else 0.3)
        raise AssertionError(f"task {index} checkpointed no trial within 120 s:\n{self.logs()}")

    def wait(self, seconds: float = 300) -> None:
        """Until every task of the array has left the queue."""
        deadline = time.monotonic() + seconds
        while self.cluster.run("squeue", "-h", "-j", self.job, check=False).stdout.strip():
            assert time.monotonic() < deadline, f"job {self.job} still queued after {seconds:.0f} s:\n{self.logs()}"
            time.sleep(1)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(self.sweep_dir.glob("slurm-*.out")))

    def log(self, index: int) -> str:
        return (self.sweep_dir / f"slurm-{self.task(index)}.out").read_text()

    def completed_once(self) -> list[optuna.trial.FrozenTrial]:
        done = [t for t in self.trials() if t.state == TrialState.COMPLETE]
        assert sorted(t.user_attrs["slot"] for t in done) == [0, 1, 2, 3], self.logs()
        return done

    def runs(self, *options: str) -> str:
        """What the README's table line prints, with ``options`` added, run from a folder with no run directory."""
        argv = _from_readme(readme_commands()[1], **{"$URL": self.url}) + list(options)
        (self.folder / "elsewhere").mkdir(exist_ok=True)
        done = subprocess.run(argv, cwd=self.folder / "elsewhere", capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def table(self) -> list[dict]:
        """The README's table line, as JSON."""
        return json.loads(self.runs("--format", "json"))

    def accounting(self, seconds: float = 30) -> list[tuple[str, str]]:
        """(task, state) of every run of every task as ``sacct`` has it, once no run is pending or running there:
        slurmctld sends its records to slurmdbd as it goes, so they may lag behind the queue by a moment."""
        deadline = time.monotonic() + seconds
        while True:
            runs = [(task, state) for task, state in self.cluster.accounting(self.job, "JobID,State")]
            if not {"PENDING", "RUNNING"} & {state for _, state in runs}:
                return runs
            assert time.monotonic() < deadline, f"sacct still has {runs} after {seconds:.0f} s"
            time.sleep(0.5)


def _epochs(run_dir: Path) -> list[int]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["epoch"] for r in records if r["type"] == "epoch"]


def _assert_resumed(array: Array, run_dir: Path, index: int, epochs: int) -> None:
    """The trial stopped in task ``index`` ended once, resumed from its checkpoint; that task was requeued."""
    array.completed_once()
    assert _epochs(run_dir) == list(range(1, epochs + 1))  # no epoch trained twice
    attempts = [t for t in array.trials() if t.user_attrs.get("run_dir") == str(run_dir)
                and not t.user_attrs.get("duplicate")]
    assert [t.state for t in attempts] == [TrialState.FAIL, TrialState.COMPLETE]
    assert attempts[0].user_attrs["slurm_task"] == array.task(index)
    assert f"requeued Slurm task {array.task(index)}" in array.log(index)
    assert array.cluster.job(array.task(index))["Restarts"] == "1"  # it ran again: Slurm's count
    # and Slurm's accounting has both runs of the stopped task and one of the other, each ended as it should
    assert sorted(array.accounting()) == sorted([(array.task(index), "REQUEUED"), (array.task(index), "COMPLETED"),
                                                 (array.task(1 - index), "COMPLETED")])
    assert array.log(index).count("cifarlab sweep: stopped by SIGTERM") == 1
    row = next(r for r in array.table() if r["run"].endswith(str(run_dir)))
    assert row["status"] == "completed (resumed)" and row["slurm task"].startswith(f"{array.task(index)}@")


def test_a_two_task_array_completes_every_trial_once(slurm_cluster, pg_url, tiny_imagefolder, tmp_path):
    array = Array(slurm_cluster, tmp_path, tiny_imagefolder, pg_url, epochs=2)
    script = (array.sweep_dir / "slurm-sweep.sh").read_text()
    assert "#SBATCH --array=0-1" in script and "#SBATCH --requeue" in script and "--time=4:00:00" in script
    array.wait()
    done = array.completed_once()
    assert {t.user_attrs["slurm_task"] for t in done} <= {array.task(0), array.task(1)}
    rows = array.table()
    assert {r["status"].removesuffix(", at chance") for r in rows} == {"completed"}
    assert {r["slurm task"].split("@")[0] for r in rows} == {t.user_attrs["slurm_task"] for t in done}
    assert (array.sweep_dir / "results.md").is_file()  # the last task to finish wrote the table


def test_sigterm_checkpoints_requeues_the_task_and_the_trial_resumes(slurm_cluster, pg_url, tiny_imagefolder,
                                                                     tmp_path):
    array = Array(slurm_cluster, tmp_path, tiny_imagefolder, pg_url, epochs=8)
    # The last task: it shares the array's own job id, which a requeue by job id would take for the whole array
    run_dir, _ = array.checkpointed_trial(1)
    slurm_cluster.run("scancel", "--signal=TERM", array.task(1))  # what a preemption or an admin sends
    array.wait()
    _assert_resumed(array, run_dir, 1, epochs=8)
    # The evidence a closing note pastes (pytest -rP shows it): the array as Slurm's accounting and the table see it
    print(slurm_cluster.run("sacct", "-j", array.job, "--duplicates",
                            "--format=JobID,JobName%16,State,ExitCode,Start,End,Elapsed,NodeList").stdout)
    print(array.runs())


LONG = 400  # epochs of the trial a time limit stops: it must outlast Slurm's 30 s between time-limit checks


def test_a_task_at_its_time_limit_checkpoints_requeues_and_the_trial_resumes(slurm_cluster, pg_url,
                                                                              tiny_imagefolder, tmp_path):
    array = Array(slurm_cluster, tmp_path, tiny_imagefolder, pg_url, epochs=[LONG, 2, 2, 2])
    run_dir, index = array.checkpointed_trial()
    # A 1-minute limit now: Slurm's warning (--signal=TERM@60) is due at once and comes at its next check
    slurm_cluster.run("scontrol", "update", f"JobId={array.task(index)}", "TimeLimit=1")
    deadline = time.monotonic() + 90
    while slurm_cluster.job(array.task(index)).get("Restarts") != "1":
        assert time.monotonic() < deadline, f"task {array.task(index)} was not requeued:\n{array.logs()}"
        time.sleep(0.5)
    slurm_cluster.run("scontrol", "update", f"JobId={array.task(index)}", "TimeLimit=UNLIMITED")  # its next run
    array.wait()
    _assert_resumed(array, run_dir, index, epochs=LONG)
    assert "TIME LIMIT" not in array.log(index)  # stopped by the warning, not killed at the limit


def test_a_task_killed_outright_has_its_trial_taken_over(slurm_cluster, pg_url, tiny_imagefolder, tmp_path):
    array = Array(slurm_cluster, tmp_path, tiny_imagefolder, pg_url, epochs=8)
    run_dir, _ = array.checkpointed_trial(0)
    # SIGKILL to the worker itself, as the OOM killer or a dying node deals it (`scancel --signal=KILL` is a
    # cancel: Slurm sends SIGTERM first, and the worker checkpoints)
    worker = next(t for t in array.trials() if t.user_attrs.get("run_dir") == str(run_dir))
    os.kill(worker.user_attrs["pid"], signal.SIGKILL)
    array.wait()
    array.completed_once()
    attempts = [t for t in array.trials() if t.user_attrs.get("run_dir") == str(run_dir)
                and not t.user_attrs.get("duplicate")]
    assert [(t.state, t.user_attrs["slurm_task"]) for t in attempts] == \
        [(TrialState.FAIL, array.task(0)), (TrialState.COMPLETE, array.task(1))]
    assert _epochs(run_dir) == list(range(1, 9))  # resumed from the dead task's checkpoint
    assert "stopped by" not in array.log(0)  # it had no time to save anything after its last checkpoint
    assert slurm_cluster.job(array.task(0))["JobState"] == "FAILED"  # and Slurm does not requeue a failed task
