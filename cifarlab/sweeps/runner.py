"""Running a sweep: worker processes take trials from the study; each trial is an ordinary cifarlab run.

A trial's run directory is ``<sweep_dir>/trials/<slot>-<label>/`` (or ``<artifacts>/<sweep>/<slot>-<label>/``),
fixed by its slot, so a retry of a killed trial finds the dead one's checkpoint and resumes it. When it cannot (the
dead worker ran on another machine without shared ``--artifacts``, or died before its first epoch ended) it starts
the run again, and the table marks the trial restarted. Trials report validation accuracy after every epoch, which a
median pruner may use to stop them early.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifarlab.errors import CifarlabError, ConfigError, DiskError, first_line
from cifarlab.fileio import write_text
from cifarlab.formatting import duration
from cifarlab.preemption import Interrupted
from cifarlab.reporting.runs import (COLUMNS, SLURM_COLUMN, best_row, collect_run, describe_best, loss_trend,
                                     ranked_table, read_run, row_from_record, write_results)
from cifarlab.reporting.tables import is_at_chance
from cifarlab.rundir import RunDir
from cifarlab.sweeps import slurm
from cifarlab.sweeps import study as study_mod
from cifarlab.sweeps.options import STORAGE_ENV
from cifarlab.sweeps.spec import SweepSpec, Trial, dump, slug

# How a coordinator hands its own pid to worker processes (and its storage URL: options.STORAGE_ENV).
PARENT_ENV = "CIFARLAB_SWEEP_PARENT"
THREADS_ENV = "CIFARLAB_TORCH_THREADS"
DEVICE_ENV = "CIFARLAB_SWEEP_DEVICE"  # the train.device of a worker pinned by --devices
POLL_SECONDS = 2  # how often an idle worker looks whether another's trial finished or died


@dataclass
class SweepResult:
    """A sweep's folder, one row per finished trial (plan order) and the best by validation accuracy."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None

    def table(self, fmt: str = "table") -> str:
        """The sweep's table: configurations (mean ± std when repeated), best first, without test accuracy (reported
        once, for the best trial, and beside the write-up's accuracies in the comparison that follows, if any)."""
        from cifarlab.reporting.writeup import format_comparison

        comparison = format_comparison(self.rows, fmt) if fmt in ("table", "markdown") else ""
        return "\n\n".join(t for t in (ranked_table(self.rows, fmt), comparison) if t)

    def best_summary(self) -> str:
        """The best trial and its test accuracy, reported once."""
        return describe_best(self.best)


def trial_dir(spec: SweepSpec, sweep_dir: Path, slot: int, label: str) -> Path:
    """The run directory of a slot: fixed, so that a retry finds the dead attempt's checkpoint."""
    safe = "".join(c if c.isalnum() or c in "-_.=," else "_" for c in label)[:80]
    return (spec.artifacts_dir or Path(sweep_dir) / "trials") / f"{slot:04d}-{safe}"


class _Objective:
    """What one Optuna trial does: claim its slot, then train (or resume) its run and return val acc; and
    :meth:`announce`, the callback printing one line per finished trial of this worker."""

    def __init__(self, spec: SweepSpec, sweep_dir: Path, study, lock: study_mod.QueueLock):
        from cifarlab.data import load_dataset

        self.spec, self.sweep_dir, self.study, self.lock = spec, sweep_dir, study, lock
        self.verbose = spec.options.verbose
        # The dataset, loaded once per worker and shared by its trials.
        self._data = functools.cache(lambda path: load_dataset(path, progress=self.verbose))

    def __call__(self, trial) -> float:
        import optuna

        self.lock.release()  # the trial is out of the queue and ours: the next worker may take one
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        for key, value in slurm.trial_attrs().items():  # which array task holds it, for `cifarlab runs`
            trial.set_user_attr(key, value)
        try:
            slot = study_mod.claim(self.study, trial, self.spec)
        except study_mod.DuplicateTrial:  # it trains nothing; the attributes a retry inherits are not its own
            trial.set_user_attr("duplicate", True)
            raise
        planned = self._planned(trial, slot)
        run_dir = trial_dir(self.spec, self.sweep_dir, slot, planned.label)
        trial.set_user_attr("label", planned.label)
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        try:
            summary = self._train(trial, planned, run_dir)
        except optuna.TrialPruned:
            self._keep_record(trial, run_dir)
            raise
        except (DiskError, study_mod.StorageOutage):  # the machine's fault: the worker stops, a rerun resumes
            raise
        except Exception as exc:  # this trial's own failure (a bug, a bad setting): one line, then the next trial
            self._keep_record(trial, run_dir)
            trial.set_user_attr("error", f"{type(exc).__name__}: {first_line(exc)}")
            raise study_mod.TrialError(trial.user_attrs["error"]) from exc
        self._keep_record(trial, run_dir)
        return summary["val_acc"]

    @staticmethod
    def _keep_record(trial, run_dir: Path) -> None:
        """Copy the run's config and summary into the study: a table made on another machine needs them."""
        record = read_run(run_dir)
        if record is not None:
            trial.set_user_attr("record", record)

    def _planned(self, trial, slot: int) -> Trial:
        if self.spec.trials:
            return self.spec.trials[slot]
        own = {}
        for key, dist in self.spec.space.items():  # a retry gets back the values its first attempt drew
            if "choice" in dist:
                own[key] = trial.suggest_categorical(key, dist["choice"])
            elif "int" in dist:
                own[key] = trial.suggest_int(key, *dist["int"], log=bool(dist.get("log")))
            else:
                own[key] = trial.suggest_float(key, *map(float, dist["float"]), log=bool(dist.get("log")))
        label = slug(own, short_floats=True)  # a drawn float's 17 digits tell a reader nothing
        return Trial(slot, label, label, own)

    def _train(self, trial, planned: Trial, run_dir: Path) -> dict[str, Any]:
        import optuna

        import cifarlab
        from cifarlab.training.trainer import TrainingDiverged

        def report(metrics: dict[str, Any]) -> None:
            if metrics["val_acc"] is None:  # not validated this epoch (train.val_every): nothing to report or prune
                return
            trial.report(metrics["val_acc"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {metrics['epoch']}")

        summary = (read_run(run_dir) or {}).get("summary", {})
        if summary.get("status") == "completed":  # trained, but its worker died before the study heard of it
            return summary
        cfg = self.spec.compose(planned.overrides)
        if os.environ.get(DEVICE_ENV):  # pinned by --devices (not part of the plan: machines differ)
            cfg.train.device = os.environ[DEVICE_ENV]
        options = {"data": self._data(cfg.data.path), "callbacks": [report], "progress": self.verbose,
                   "verbose": self.verbose}
        # A dead attempt's slot: resumed from its checkpoint where this worker sees it, else started again
        resume = (run_dir / RunDir.CHECKPOINT).is_file()
        if planned.index in study_mod.dead_attempts(self.study):  # the table says so: its work was kept, or lost
            trial.set_user_attr("attempt", "resumed" if resume else "restarted")
        try:
            if resume:
                return cifarlab.train(resume=run_dir, **options).summary
            if run_dir.exists():  # the last attempt died before its first checkpoint: start clean
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            RunDir(run_dir).write_sweep({"sweep": self.spec.name, "label": planned.label, "group": planned.group,
                                         "overrides": planned.overrides,
                                         "writeup_accuracy": planned.writeup_accuracy})
            return cifarlab.train(cfg, out_dir=run_dir, **options).summary
        except TrainingDiverged as exc:  # a result, not a crash: the table shows it as diverged
            trial.set_user_attr("diverged", True)
            raise optuna.TrialPruned(str(exc)) from None

    def announce(self, study, trial) -> None:
        from optuna.trial import TrialState

        if trial.state == TrialState.FAIL and not study_mod.errored(trial):  # a duplicate that stepped aside
            return
        # This trial's place in the order of completion, not a count taken when the callback runs: two workers
        # that finish together would both count both trials and print the same number
        mine = trial.datetime_complete, trial.number
        done = sum((t.datetime_complete, t.number) <= mine for t in study_mod.finished_by_slot(study).values())
        total = len(self.spec.trials) or self.spec.budget
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        if study_mod.errored(trial):
            outcome = f"failed: {trial.user_attrs['error']}"
        elif trial.user_attrs.get("diverged"):
            outcome = "diverged"
        elif trial.state == TrialState.PRUNED:
            last = trial.last_step
            outcome = f"pruned after epoch {last} (val acc {trial.intermediate_values[last]:.2%})" \
                if last is not None else "pruned"
        else:
            outcome = f"val acc {trial.value:.2%}"
            row = collect_run(trial.user_attrs["run_dir"])
            if row is not None and is_at_chance(row):  # a number that would read as a result: say it is none
                outcome += f", at chance, it did not learn: {loss_trend(row['run'])}"
        print(f"[{done}/{total}] {trial.user_attrs.get('label')}: {outcome} in {duration(seconds)}", flush=True)


def run_worker(spec: SweepSpec, sweep_dir: Path, storage_url: str) -> None:
    """Take trials from the study until every slot is done (or the sampler's budget is spent)."""
    study = study_mod.open_study(spec, storage_url)
    lock = study_mod.QueueLock(storage_url)
    objective = _Objective(spec, Path(sweep_dir), study, lock)
    while True:
        with lock:  # held until the objective has its trial out of the queue (it releases it then)
            study_mod.fail_dead_trials(study)
            study_mod.top_up(study, spec)
            step = study_mod.next_step(study, spec)
            if step == "run":
                with study_mod.unmasked_outages():
                    study.optimize(objective, n_trials=1, catch=(study_mod.DuplicateTrial, study_mod.TrialError),
                                   callbacks=[objective.announce])
        if step == "done":
            return
        if step == "wait":  # Optuna has no blocking ask: poll while others run; one may die and come back
            time.sleep(POLL_SECONDS)


def exit_with_coordinator() -> None:
    """In a worker process: be interrupted (as by Ctrl-C) when the coordinator dies, even by kill -9."""
    parent = int(os.environ.get(PARENT_ENV, "0"))
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    if parent and os.getppid() != parent:  # it died before the line above took effect
        raise KeyboardInterrupt


def worker_devices(options) -> list[str | None]:
    """The ``train.device`` of each worker process: one per ``--devices`` entry, else ``--workers`` unpinned."""
    if options.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {options.workers}")
    if options.devices is None:
        return [None] * options.workers
    if options.workers != 1:
        raise ConfigError("--workers and --devices: give one (--devices starts one worker per device)")
    import torch

    count = torch.cuda.device_count()
    devices = [f"cuda:{i}" for i in range(count)] if options.devices == "all" else options.devices.split(",")
    if not devices:
        raise ConfigError("--devices all: this machine has no CUDA device; use --workers N")
    for device in devices:
        index = re.fullmatch(r"cuda:(\d+)", device)
        if device != "cpu" and index is None:
            raise ConfigError(f"--devices {options.devices}: {device!r} is not cuda:N, cpu or all")
        if index and int(index[1]) >= count:
            have = f"{count} CUDA device(s), cuda:0 to cuda:{count - 1}" if count else "no CUDA device"
            raise ConfigError(f"--devices {options.devices}: there is no {device}; this machine has {have}")
    return devices


def worker_threads(workers: int) -> int:
    """Each worker's share of this machine's cores when ``workers`` processes train side by side."""
    return max(1, (os.cpu_count() or 1) // workers)


def worker_env(device: str | None, workers: int, storage_url: str) -> dict[str, str]:
    """A worker process's environment: the storage, its share of the cores, and its device if pinned."""
    threads = str(worker_threads(workers))
    env = {**os.environ, STORAGE_ENV: storage_url, PARENT_ENV: str(os.getpid()), THREADS_ENV: threads,
           "OMP_NUM_THREADS": threads}
    if device is not None:  # the worker sees its one GPU as cuda:0 (or none, pinned to the CPU)
        env[DEVICE_ENV] = "cpu" if device == "cpu" else "cuda"
        # cuda:N counts the GPUs this process sees: where CUDA_VISIBLE_DEVICES already narrows them (as Slurm does
        # for a task's GPUs), the worker's is the Nth of that list, not the machine's Nth
        visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
        index = int(device.split(":")[1]) if device != "cpu" else None
        env["CUDA_VISIBLE_DEVICES"] = "" if index is None else visible[index] if visible else str(index)
    return env


def _run_workers(spec: SweepSpec, sweep_dir: Path, storage_url: str, devices: list[str | None]) -> None:
    options = dataclasses.replace(spec.options, out_dir=str(sweep_dir))
    command = [sys.executable, "-m", "cifarlab", "sweep", spec.source, *options.argv(), "--worker"]
    procs = [subprocess.Popen(command, env=worker_env(d, len(devices), storage_url)) for d in devices]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted):  # a SIGTERM (kill, Kubernetes) may have reached this process alone
            for p in procs:
                p.send_signal(exc.signum)
        # A Ctrl-C in the terminal reached the workers too; give them time to save, then pass it on.
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    failed = [c for c in codes if c]
    if failed:
        raise CifarlabError(f"{len(failed)} of {len(procs)} sweep workers failed (exit codes {codes}; their errors "
                            "are above); run the same command again to continue")


def run_sweep(spec: SweepSpec) -> SweepResult:
    """Run (or continue) a sweep as its options say (:class:`SweepOptions`), then write its results and plots.

    The folder defaults to ``sweeps/<name>``, the storage (an SQLAlchemy URL) to SQLite in it; the storage is
    opened, and checked to hold this sweep, before anything trains.
    """
    devices = worker_devices(spec.options)
    sweep_dir = spec.sweep_dir
    if spec.options.storage is None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    storage_url = spec.options.storage or study_mod.default_storage(sweep_dir)
    study = study_mod.open_study(spec, storage_url)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_text(sweep_dir / "plan.yaml", dump(spec))
    if devices == [None]:
        run_worker(spec, sweep_dir, storage_url)
    else:
        _run_workers(spec, sweep_dir, storage_url, devices)
    return collect(spec, sweep_dir, study)


def trial_row(trial, run_dir: Path | None = None, *, local: bool = True,
              attempts: tuple = ()) -> dict[str, Any] | None:
    """A finished trial's table row: from its run directory if this machine sees it (and ``local``), else from the
    record the study keeps. ``attempts``: the slot's earlier attempts, killed or stopped, for the Slurm column."""
    from optuna.trial import TrialState

    attrs = trial.user_attrs
    here = [w for w in (attrs.get("run_dir"), run_dir) if local and w is not None and Path(w).is_dir()]
    row = next((r for r in map(collect_run, here) if r is not None), None)  # where it ran, or in its sweep's folder
    if row is None and "record" in attrs:  # run on another machine: the study kept its record
        row = row_from_record(attrs["record"], f"{attrs['host']}:{attrs['run_dir']}")
    if row is None and (study_mod.errored(trial) or trial.state == TrialState.RUNNING):  # no summary (yet)
        label = attrs.get("label", f"trial {attrs['slot']}")
        row = dict.fromkeys(COLUMNS) | {"label": label, "group": label, "run": attrs.get("run_dir")}
    if row is None:
        return None
    row["trial"] = attrs["slot"]
    if study_mod.errored(trial):
        row["status"], row["error"] = "failed", attrs["error"]
    if trial.state == TrialState.RUNNING:
        row["status"] = "running"
    if trial.state == TrialState.PRUNED and row["status"] == "stopped":
        row["status"] = "pruned"
    if attrs.get("attempt") and str(row["status"]).startswith("completed"):  # its first worker died, or stopped
        row["status"] = row["status"].replace("completed", f"completed ({attrs['attempt']})", 1)
    tasks = [slurm.describe_attempt(t.user_attrs) for t in (*attempts, trial)]
    if any(tasks):
        row[SLURM_COLUMN] = " → ".join(t or "?" for t in tasks)
    return row


def storage_rows(storage: str) -> list[dict[str, Any]]:
    """One row per finished or running trial of every sweep in a study storage, from the database alone."""
    from optuna.trial import TrialState

    rows = []
    for study in study_mod.load_studies(storage):
        earlier = study_mod.dead_attempts(study)
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if "label" in t.user_attrs]
        for trial in [*study_mod.finished_by_slot(study).values(), *running]:
            rows.append(trial_row(trial, local=False, attempts=earlier.get(trial.user_attrs["slot"], ())))
    return [row for row in rows if row is not None]


def collect(spec: SweepSpec, sweep_dir: Path, study) -> SweepResult:
    """Rows of the finished trials, ``results.csv``/``.md``, ``best.json`` and the plots."""
    earlier = study_mod.dead_attempts(study)
    rows = [trial_row(trial, trial_dir(spec, sweep_dir, slot, trial.user_attrs["label"]),
                      attempts=earlier.get(slot, ()))
            for slot, trial in sorted(study_mod.finished_by_slot(study).items())]
    rows = [row for row in rows if row is not None]
    best = best_row(rows)
    write_results(sweep_dir, rows, best, title=f"Sweep {spec.name}")
    from cifarlab.reporting.html import write_report_safely

    write_report_safely(sweep_dir, rows=rows)
    return SweepResult(sweep_dir=sweep_dir, rows=rows, best=best)
