"""Running a sweep: worker processes take trials from the study; each trial is an ordinary cifarlab run.

A trial's run directory is ``<sweep_dir>/trials/<slot>-<label>/``, fixed by its
slot, so a retry of a killed trial finds the dead one's checkpoint and resumes
it (or starts the run again when it died before its first epoch ended).
Trials report validation accuracy after every epoch, which a median pruner
may use to stop them early.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifarlab.errors import CifarlabError
from cifarlab.fileio import write_json, write_text
from cifarlab.reporting.runs import (
    SWEEP_FILE,
    aggregate_repeats,
    best_row,
    collect_run,
    columns_for,
    describe_best,
    is_repeated,
    read_run,
    row_from_record,
    sort_rows,
    write_results,
)
from cifarlab.sweeps import study as study_mod
from cifarlab.sweeps.spec import SweepSpec, Trial, dump, slug

# How a coordinator hands its storage URL and its own pid to worker processes
# (the URL may hold a password, which a command line would show to `ps`).
STORAGE_ENV = "CIFARLAB_SWEEP_STORAGE"
PARENT_ENV = "CIFARLAB_SWEEP_PARENT"
THREADS_ENV = "CIFARLAB_TORCH_THREADS"
POLL_SECONDS = 2  # how often an idle worker looks whether another's trial finished or died


@dataclass
class SweepResult:
    """A sweep's folder, one row per finished trial (plan order) and the best by validation accuracy."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None

    def table(self, fmt: str = "table") -> str:
        """The sweep's table: configurations (mean ± std when repeated), best first, without test accuracy.

        Test accuracy is left out on purpose: it is reported once, for the best trial (:meth:`best_summary`).
        """
        from cifarlab.reporting.tables import format_rows, legend

        shown = sort_rows(aggregate_repeats(self.rows) if is_repeated(self.rows) else self.rows)
        text = format_rows(shown, columns_for(self.rows, test=False), fmt)
        note = legend(shown) if fmt in ("table", "markdown") else ""
        return f"{text}\n\n{note}" if note else text

    def best_summary(self) -> str:
        """The best trial and its test accuracy, reported once."""
        return describe_best(self.best)


def trial_dir(sweep_dir: Path, slot: int, label: str) -> Path:
    """The run directory of a slot: fixed, so that a retry finds the dead attempt's checkpoint."""
    safe = "".join(c if c.isalnum() or c in "-_.=," else "_" for c in label)[:80]
    return Path(sweep_dir) / "trials" / f"{slot:04d}-{safe}"


class _Objective:
    """What one Optuna trial does: claim its slot, then train (or resume) its run and return val acc."""

    def __init__(self, spec: SweepSpec, sweep_dir: Path, study, lock: study_mod.QueueLock, verbose: bool):
        self.spec, self.sweep_dir, self.study, self.lock, self.verbose = spec, sweep_dir, study, lock, verbose
        self._datasets: dict[str | None, Any] = {}

    def __call__(self, trial) -> float:
        import optuna

        self.lock.release()  # the trial is out of the queue and ours: the next worker may take one
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        slot = study_mod.claim(self.study, trial, self.spec)
        planned = self._planned(trial, slot)
        run_dir = trial_dir(self.sweep_dir, slot, planned.label)
        trial.set_user_attr("label", planned.label)
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        try:
            summary = self._train(trial, planned, run_dir)
        except optuna.TrialPruned:
            self._keep_record(trial, run_dir)
            raise
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

    def _data(self, path: str | None):
        """The dataset, loaded once per worker and shared by its trials."""
        if path not in self._datasets:
            from cifarlab.data import load_dataset

            self._datasets[path] = load_dataset(path, progress=self.verbose)
        return self._datasets[path]

    def _train(self, trial, planned: Trial, run_dir: Path) -> dict[str, Any]:
        import optuna

        import cifarlab
        from cifarlab.training.checkpoint import CHECKPOINT_FILE
        from cifarlab.training.trainer import TrainingDiverged

        def report(metrics: dict[str, Any]) -> None:
            trial.report(metrics["val_acc"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {metrics['epoch']}")

        summary = (read_run(run_dir) or {}).get("summary", {})
        if summary.get("status") == "completed":  # trained, but its worker died before the study heard of it
            return summary
        cfg = self.spec.compose(planned.overrides)
        options = {"data": self._data(cfg.data.path), "callbacks": [report], "progress": self.verbose,
                   "verbose": self.verbose}
        try:
            if (run_dir / CHECKPOINT_FILE).is_file():
                return cifarlab.train(resume=run_dir, **options).summary
            if run_dir.exists():  # the last attempt died before its first checkpoint: start clean
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            write_json(run_dir / SWEEP_FILE, {"sweep": self.spec.name, "label": planned.label,
                                              "group": planned.group, "overrides": planned.overrides,
                                              "writeup_accuracy": planned.writeup_accuracy})
            return cifarlab.train(cfg, out_dir=run_dir, **options).summary
        except TrainingDiverged as exc:  # a result, not a crash: the table shows it as diverged
            trial.set_user_attr("diverged", True)
            raise optuna.TrialPruned(str(exc)) from None


def _announcer(spec: SweepSpec):
    """An Optuna callback printing one line per finished trial of this worker."""
    from optuna.trial import TrialState

    total = len(spec.trials) or spec.budget

    def announce(study, trial) -> None:
        if trial.state == TrialState.FAIL:  # a duplicate that stepped aside: nothing ran
            return
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        if trial.user_attrs.get("diverged"):
            outcome = "diverged"
        elif trial.state == TrialState.PRUNED:
            last = trial.last_step
            outcome = f"pruned after epoch {last} (val acc {trial.intermediate_values[last]:.2%})" \
                if last is not None else "pruned"
        else:
            outcome = f"val acc {trial.value:.2%}"
        done = len(study_mod.finished_by_slot(study))
        print(f"[{done}/{total}] {trial.user_attrs.get('label')}: {outcome} in {seconds:.1f}s", flush=True)

    return announce


def run_worker(spec: SweepSpec, sweep_dir: Path, storage_url: str, *, verbose: bool = False) -> None:
    """Take trials from the study until every slot is done (or the sampler's budget is spent)."""
    study = study_mod.open_study(spec, storage_url)
    lock = study_mod.QueueLock(storage_url)
    objective = _Objective(spec, Path(sweep_dir), study, lock, verbose)
    announce = _announcer(spec)
    while True:
        with lock:  # held until the objective has its trial out of the queue (it releases it then)
            study_mod.fail_dead_trials(study)
            study_mod.top_up(study, spec)
            step = study_mod.next_step(study, spec)
            if step == "run":
                study.optimize(objective, n_trials=1, catch=(study_mod.DuplicateTrial,), callbacks=[announce])
        if step == "done":
            return
        if step == "wait":  # other workers' trials are running; one may die and come back to the queue
            time.sleep(POLL_SECONDS)


def exit_with_coordinator() -> None:
    """In a worker process: be interrupted (as by Ctrl-C) when the coordinator dies, even by kill -9."""
    parent = int(os.environ.get(PARENT_ENV, "0"))
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    if parent and os.getppid() != parent:  # it died before the line above took effect
        raise KeyboardInterrupt


def _run_workers(spec: SweepSpec, sweep_dir: Path, storage_url: str, workers: int, verbose: bool) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    env = {**os.environ, STORAGE_ENV: storage_url, PARENT_ENV: str(os.getpid()), THREADS_ENV: str(threads),
           "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "cifarlab", "sweep", spec.source, *spec.knobs.argv(), "--out", str(sweep_dir),
               "--worker"] + (["--verbose"] if verbose else [])
    procs = [subprocess.Popen(command, env=env) for _ in range(workers)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
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
        raise CifarlabError(f"{len(failed)} of {workers} sweep workers failed (exit codes {codes}; their errors are "
                            "above); run the same command again to continue")


def run_sweep(spec: SweepSpec, sweep_dir: str | Path | None = None, storage: str | None = None, workers: int = 1,
              *, verbose: bool = False) -> SweepResult:
    """Run (or continue) a sweep with ``workers`` processes, then write its results and plots.

    ``sweep_dir`` defaults to ``sweeps/<name>``; ``storage`` (an SQLAlchemy URL) to
    SQLite in it. The storage is opened, and checked to hold this sweep, before
    anything trains.
    """
    if workers < 1:
        raise CifarlabError(f"--workers must be at least 1, got {workers}")
    sweep_dir = Path(sweep_dir) if sweep_dir is not None else Path("sweeps") / spec.name
    if storage is None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    storage_url = storage or study_mod.default_storage(sweep_dir)
    study = study_mod.open_study(spec, storage_url)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_text(sweep_dir / "plan.yaml", dump(spec))
    if workers == 1:
        run_worker(spec, sweep_dir, storage_url, verbose=verbose)
    else:
        _run_workers(spec, sweep_dir, storage_url, workers, verbose)
    return collect(spec, sweep_dir, study)


def collect(spec: SweepSpec, sweep_dir: Path, study) -> SweepResult:
    """Rows of the finished trials, ``results.csv``/``.md``, ``best.json`` and the plots."""
    from optuna.trial import TrialState

    rows = []
    for slot, trial in sorted(study_mod.finished_by_slot(study).items()):
        row = collect_run(trial_dir(sweep_dir, slot, trial.user_attrs["label"]))  # wherever the folder is now
        if row is None and "record" in trial.user_attrs:  # run on another machine: the study kept its record
            attrs = trial.user_attrs
            row = row_from_record(attrs["record"], f"{attrs['host']}:{attrs['run_dir']}")
        if row is None:
            continue
        row["trial"] = slot
        if trial.state == TrialState.PRUNED and row["status"] == "stopped":
            row["status"] = "pruned"
        rows.append(row)
    best = best_row(rows)
    write_results(sweep_dir, rows, best, title=f"Sweep {spec.name}")
    return SweepResult(sweep_dir=sweep_dir, rows=rows, best=best)
