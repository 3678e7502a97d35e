"""The sweep's Optuna study: its storage, the queue of trials, and which worker owns which trial.

Every planned run has a *slot* (grid and explicit runs: its index in the plan;
samplers: the number of the Optuna trial that first drew it). A slot is done
once one Optuna trial for it is COMPLETE or PRUNED. A trial that died (Ctrl-C,
an error, or a killed process, found by Optuna's heartbeat or, on this machine,
by its process id) is FAIL, and :func:`top_up` puts its slot back in the queue:
the retry resumes the run directory from its last checkpoint.

No slot runs twice, even when two workers race: Optuna hands each WAITING
trial to one worker only (SQLite is serialised by :class:`QueueLock`), and if
two trials for one slot were queued, :func:`claim` lets only the older one run.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Self

from cifarlab.errors import ConfigError
from cifarlab.sweeps.spec import SweepSpec

if TYPE_CHECKING:
    import optuna

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; SQLite workers then rely on claim() alone
    fcntl = None

HEARTBEAT_SECONDS = 10  # a running trial's liveness signal in the storage
GRACE_SECONDS = 30  # a trial without a heartbeat for this long belongs to a dead worker


class DuplicateTrial(Exception):
    """This Optuna trial is not needed: its slot is another trial's, or the sampler's budget is spent."""


def default_storage(sweep_dir: Path) -> str:
    """SQLite in the sweep's folder."""
    return f"sqlite:///{(Path(sweep_dir) / 'study.db').resolve()}"


def public_url(url: str) -> str:
    """The storage URL with any password masked, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not even a URL: nothing to mask
        return url


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:  # open_study reports it
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        raise ConfigError(f"--storage {url}: an in-memory database cannot be shared by workers or resumed; "
                          "give a file, e.g. sqlite:///study.db")
    return Path(parsed.database)


def open_study(spec: SweepSpec, storage_url: str) -> optuna.Study:
    """Open (or create) the sweep's study; one-line ConfigError if the storage fails or holds another plan."""
    import optuna
    from optuna.storages import RDBStorage

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported by the sweep itself
    # Heartbeats are marked experimental; they are what makes a killed worker's trial recoverable.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # SQLite makes concurrent writers wait; several workers' heartbeats need more than the default 5 s.
    engine = {"connect_args": {"timeout": 60}} if _sqlite_file(storage_url) is not None else None
    try:
        storage = RDBStorage(storage_url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                             grace_period=GRACE_SECONDS)
        sampler = optuna.samplers.RandomSampler() if spec.kind == "random" else optuna.samplers.TPESampler()
        pruner = optuna.pruners.MedianPruner(n_warmup_steps=1) if spec.pruner == "median" \
            else optuna.pruners.NopPruner()
        study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
                                    direction="maximize", load_if_exists=True)
    except Exception as exc:  # SQLAlchemy and its drivers raise many types for a bad URL or server
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigError(f"--storage {public_url(storage_url)}: cannot open ({type(exc).__name__}: {first})") \
            from None
    _check_plan(study, spec, storage_url)
    return study


def _check_plan(study: optuna.Study, spec: SweepSpec, storage_url: str) -> None:
    """Refuse to continue a study that was started from different settings: its trials would not match."""
    plan = spec.plan()
    stored = study.user_attrs.get("plan")
    if stored is None:
        study.set_user_attr("plan", plan)
        study.set_user_attr("kind", spec.kind)
        return
    if stored == plan and study.user_attrs.get("kind") == spec.kind:
        return
    if spec.trials and study.user_attrs.get("kind") == spec.kind:
        changed = next((t for t, a, b in zip(spec.trials, stored, plan) if a != b), None)
        what = f"trial {changed.index} '{changed.label}' differs" if changed is not None \
            else f"it planned {len(stored)} trials, this file {len(plan)}"
    else:
        what = "its kind, base, space or pruner differs"
    raise ConfigError(f"{spec.source}: study '{spec.name}' in {public_url(storage_url)} was started with other "
                      f"settings ({what}); continue it with the original file and options, or start afresh "
                      "with --out DIR")


def slot_of(trial: optuna.trial.FrozenTrial, spec: SweepSpec) -> int | None:
    """The planned run a trial belongs to (a sampler's freshly drawn trial: its own number)."""
    slot = trial.user_attrs.get("slot")
    return trial.number if slot is None and not spec.trials else slot


def _live(trial: optuna.trial.FrozenTrial) -> bool:
    from optuna.trial import TrialState

    return trial.state != TrialState.FAIL


def finished_by_slot(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    """The trial that completed (or was pruned) for each done slot."""
    from optuna.trial import TrialState

    done = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        slot = trial.user_attrs.get("slot")
        if slot is not None and slot not in done:
            done[slot] = trial
    return done


def _dead_here(trial: optuna.trial.FrozenTrial) -> bool:
    """True when the trial's worker ran on this machine and that process is gone."""
    if trial.user_attrs.get("host") != socket.gethostname():
        return False
    pid = trial.user_attrs.get("pid")
    if pid == os.getpid():  # this process runs no trial while it looks: the pid was reused
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, TypeError):
        return False
    try:  # a killed child that its parent has not reaped yet still has a pid (Linux: state Z)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _never_started(trial: optuna.trial.FrozenTrial) -> bool:
    """True when a worker took the trial from the queue but died before it could say who it is.

    Such a trial has no heartbeat either, and Optuna only fails trials whose heartbeat went stale.
    """
    started = trial.datetime_start
    return "pid" not in trial.user_attrs and started is not None and \
        (datetime.datetime.now() - started).total_seconds() > GRACE_SECONDS


def fail_dead_trials(study: optuna.Study) -> None:
    """Mark the running trials of dead workers FAIL: by heartbeat, and on this machine by process id."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _dead_here(trial) or _never_started(trial):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def top_up(study: optuna.Study, spec: SweepSpec) -> None:
    """Queue every slot that has no live trial: never started (plans), or only failed attempts."""
    trials = study.get_trials(deepcopy=False)
    attempts: dict[int, list] = {}
    for trial in trials:
        if trial.user_attrs.get("slot") is not None:
            attempts.setdefault(trial.user_attrs["slot"], []).append(trial)
    slots = range(len(spec.trials)) if spec.trials else sorted(attempts)
    for slot in slots:
        tried = attempts.get(slot, [])
        if any(_live(t) for t in tried):
            continue
        drawn = [t for t in tried if t.params]  # a sampler's retry keeps the values it drew
        params = max(drawn, key=lambda t: t.number).params if drawn else {}
        study.enqueue_trial(params, user_attrs={"slot": slot})


def next_step(study: optuna.Study, spec: SweepSpec) -> str:
    """``run`` a trial, ``wait`` for other workers' running trials (one may die and come back), or ``done``."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = {t.state for t in trials}
    if TrialState.WAITING in states:
        return "run"
    if not spec.trials and len({slot_of(t, spec) for t in trials if _live(t)}) < spec.budget:
        return "run"
    return "wait" if TrialState.RUNNING in states else "done"


def claim(study: optuna.Study, trial: optuna.Trial, spec: SweepSpec) -> int:
    """The slot this running trial owns, or DuplicateTrial when it must not run.

    Deterministic whichever worker looks first: of two live trials for one slot
    the older (lower number) runs; a sampler's new draw runs only if fewer than
    ``budget`` older slots are live.
    """
    me = trial.number
    others = [t for t in study.get_trials(deepcopy=False) if t.number != me and _live(t)]
    slot = trial.user_attrs.get("slot")
    if slot is None and spec.trials:
        raise DuplicateTrial("every planned trial is taken")
    if slot is None:
        if len({slot_of(t, spec) for t in others if slot_of(t, spec) < me}) >= spec.budget:
            raise DuplicateTrial("the sampler's budget is spent")
        trial.set_user_attr("slot", me)
        return me
    if any(slot_of(t, spec) == slot and (t.number < me or t.state.is_finished()) for t in others):
        raise DuplicateTrial(f"slot {slot} is another trial's")
    return slot


class QueueLock:
    """Serialises taking a trial from a SQLite study's queue among this machine's workers.

    Optuna takes a WAITING trial with a read then a write; server databases lock
    the row in between, SQLite does not, so two workers could both take the same
    trial. Re-entrant-safe: :meth:`release` may be called when not held.
    """

    def __init__(self, storage_url: str):
        db = _sqlite_file(storage_url)
        self.path = db.with_name(db.name + ".lock") if db is not None and fcntl is not None else None
        self._file = None

    def acquire(self) -> None:
        """Block until this process holds the lock."""
        if self.path is not None and self._file is None:
            self._file = open(self.path, "a")  # noqa: SIM115  (held across calls, closed in release)
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        """Let the next worker take a trial."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
