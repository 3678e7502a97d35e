"""Running a sweep on an Optuna study: resumable, shared by workers, pruned on validation accuracy.

Grid and explicit-run sweeps enqueue their fixed list of trials once; workers
pop them from the study's storage, so two workers never take the same one.
Samplers (TPE, random) draw new trials up to a budget. Each trial is an
ordinary cifarlab run with its own run directory, recorded in the trial's
attributes. A worker that dies stops sending heartbeats; the next worker marks
its trial failed and re-enqueues it, and the retry resumes the dead run from
its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifarlab.errors import ConfigError
from cifarlab.fileio import write_json
from cifarlab.sweeps.spec import SweepSpec, Trial

HEARTBEAT_SECONDS = int(os.environ.get("CIFARLAB_SWEEP_HEARTBEAT", "10"))
SWEEP_FILE = "sweep.json"  # written into each trial's run directory


@dataclass
class SweepResult:
    """Where a sweep's results are and its best trial (chosen on validation accuracy)."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None


def default_storage(sweep_dir: Path) -> str:
    """SQLite in the sweep's folder."""
    return f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_study(spec: SweepSpec, storage_url: str, create: bool):
    """Create (or load) the study; raises ConfigError if the storage cannot be opened."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats are marked experimental by Optuna; they are what makes kill -9 recoverable here.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        storage = RDBStorage(storage_url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=2 * HEARTBEAT_SECONDS,
                             heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                                 max_retry=3, inherit_intermediate_values=True))
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise ConfigError(f"--storage {storage_url}: cannot open ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
            from None
    sampler = optuna.samplers.RandomSampler(seed=0) if spec.kind == "random" else optuna.samplers.TPESampler(seed=0)
    pruner = optuna.pruners.MedianPruner(n_warmup_steps=1) if spec.pruner == "median" else optuna.pruners.NopPruner()
    study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
                                direction="maximize", load_if_exists=True)
    if create and spec.trials and not study.user_attrs.get("enqueued"):
        for trial in spec.trials:
            study.enqueue_trial({}, user_attrs={"trial_index": trial.index}, skip_if_exists=False)
        study.set_user_attr("enqueued", True)
    return study


def _trial_dir(sweep_dir: Path, number: int, label: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.=," else "_" for c in label)[:80]
    return sweep_dir / "trials" / f"{number:04d}-{safe}"


def _objective(spec: SweepSpec, sweep_dir: Path, data, progress: bool):
    import optuna

    import cifarlab

    def objective(trial: optuna.Trial) -> float:
        index = trial.user_attrs.get("trial_index")
        if spec.trials:
            if index is None:  # another worker took the last queued trial first
                trial.set_user_attr("spurious", True)
                raise optuna.TrialPruned()
            planned: Trial = spec.trials[index]
        else:
            overrides = {}
            for key, dist in spec.space.items():
                if "choice" in dist:
                    overrides[key] = trial.suggest_categorical(key, dist["choice"])
                elif "int" in dist:
                    overrides[key] = trial.suggest_int(key, *dist["int"], log=bool(dist.get("log")))
                else:
                    overrides[key] = trial.suggest_float(key, *map(float, dist["float"]), log=bool(dist.get("log")))
            planned = Trial(trial.number, f"{trial.number:04d}", f"{trial.number:04d}", overrides)
        run_dir = Path(trial.user_attrs.get("run_dir") or _trial_dir(sweep_dir, trial.number, planned.label))
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("label", planned.label)

        def report(metrics: dict[str, Any]) -> None:
            trial.report(metrics["val_acc"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        resumable = (run_dir / "checkpoint.safetensors").is_file()
        if not resumable:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / SWEEP_FILE, {"sweep": spec.name, "label": planned.label, "group": planned.group,
                                              "overrides": planned.overrides,
                                              "writeup_accuracy": planned.writeup_accuracy})
        if resumable:
            result = cifarlab.train(resume=run_dir, data=data, callbacks=[report], progress=progress)
        else:
            result = cifarlab.train(spec.compose(planned.overrides), out_dir=run_dir, data=data, callbacks=[report],
                                    progress=progress)
        return result.summary["val_acc"]

    return objective


def run_worker(spec: SweepSpec, sweep_dir: Path, storage_url: str, progress: bool = False) -> None:
    """Take trials from the study until none is left (or the sampler budget is spent)."""
    import optuna
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    import cifarlab

    study = open_study(spec, storage_url, create=False)
    data = cifarlab.load_dataset(spec.compose({}).data.path, progress=progress)
    objective = _objective(spec, sweep_dir, data, progress)
    logging.getLogger("optuna").setLevel(logging.ERROR)  # a pruned or failed trial is reported by us
    while True:
        fail_stale_trials(study)  # trials of dead workers go back to the queue
        states = [t.state for t in study.get_trials(deepcopy=False)]
        waiting, running = states.count(TrialState.WAITING), states.count(TrialState.RUNNING)
        if spec.trials:
            if waiting == 0 and running == 0:
                return
            if waiting == 0:  # another worker's trial: wait for it to finish or go stale
                time.sleep(HEARTBEAT_SECONDS)
                continue
        else:
            done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
            if done >= spec.budget:
                return
        t0 = time.perf_counter()
        study.optimize(objective, n_trials=1, catch=())
        last = study.get_trials(deepcopy=False)[-1] if not spec.trials else None
        _announce(study, t0, last)


def _announce(study, t0: float, last) -> None:
    from optuna.trial import TrialState

    finished = [t for t in study.get_trials(deepcopy=False)
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and not t.user_attrs.get("spurious")]
    if not finished:
        return
    trial = last or max(finished, key=lambda t: t.datetime_complete or t.datetime_start)
    value = f"val acc {trial.value:.2%}" if trial.value is not None else trial.state.name.lower()
    print(f"trial {trial.user_attrs.get('label', trial.number)}: {value} in {time.perf_counter() - t0:.1f}s",
          flush=True)


def run_sweep(spec: SweepSpec, sweep_dir: Path, storage_url: str | None = None, workers: int = 1,
              progress: bool = False, worker_args: list[str] | None = None) -> SweepResult:
    """Run (or continue) the sweep with ``workers`` processes, then write its results files."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    storage_url = storage_url or default_storage(sweep_dir)
    open_study(spec, storage_url, create=True)
    if workers <= 1:
        run_worker(spec, sweep_dir, storage_url, progress)
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CIFARLAB_TORCH_THREADS": str(threads)}
        procs = [subprocess.Popen([sys.executable, "-m", "cifarlab", "sweep", *(worker_args or []), "--worker",
                                   "--storage", storage_url, "--out", str(sweep_dir)], env=env)
                 for _ in range(workers)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise ConfigError(f"{sum(1 for c in codes if c)} of {workers} sweep workers failed (exit codes {codes})")
    return collect(spec, sweep_dir, storage_url)


def collect(spec: SweepSpec, sweep_dir: Path, storage_url: str) -> SweepResult:
    """Rows of the finished trials, the results files and plots; the best trial by validation accuracy."""
    from optuna.trial import TrialState

    from cifarlab.reporting.runs import collect_run, write_results

    study = open_study(spec, storage_url, create=False)
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED) or trial.user_attrs.get("spurious"):
            continue
        row = collect_run(Path(trial.user_attrs["run_dir"]))
        if row is not None:
            row["trial"] = trial.number
            row["pruned"] = trial.state == TrialState.PRUNED
            rows.append(row)
    completed = [r for r in rows if not r["pruned"] and r["val acc"] is not None]
    best = max(completed, key=lambda r: r["val acc"]) if completed else None
    write_results(sweep_dir, rows, best)
    write_json(sweep_dir / "best.json", best or {})
    return SweepResult(sweep_dir=sweep_dir, rows=rows, best=best)


def describe_best(best: dict[str, Any] | None) -> str:
    """The best trial and its test accuracy, reported once, separately from the selection."""
    if best is None:
        return "no trial completed"
    return (f"best trial (by validation accuracy): {best['label']}  val acc {best['val acc']:.2%}\n"
            f"its test accuracy, reported once: {best['test acc']:.2%}  ({best['run']})")

