"""The sweep's Optuna study: its storage, the queue of trials, and which worker owns which trial.

Every planned run has a *slot* (grid and explicit runs: its index in the plan; samplers: the number of the Optuna
trial that first drew it). A slot is done once one Optuna trial for it is COMPLETE or PRUNED, or FAIL in its own
error (a dead worker's FAIL is retried).

Optuna's own mechanisms do most of the work: plan rows are enqueued trials; a worker that dies on another machine
is found by its heartbeat, and ``RetryHeartbeatStaleTrialCallback`` queues its trial again with its settings; the
storage is Optuna's RDB storage, made patient of outages here. What Optuna lacks is kept: the slot bookkeeping (an
enqueued trial that fails leaves Optuna no record that its row is still owed), :func:`top_up` (the retry callback
fires only for stale heartbeats, not for a Ctrl-C or a crash), :func:`_dead_here` (a dead process on this machine
is known at once, not after the grace period), :func:`claim` and :class:`QueueLock` (no slot runs twice when
workers race).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import random
import socket
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Self

from cifarlab.errors import CifarlabError, ConfigError, first_line
from cifarlab.sweeps.spec import SweepSpec

if TYPE_CHECKING:
    import optuna

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; SQLite workers then rely on claim() alone
    fcntl = None

HEARTBEAT_SECONDS = 10  # a running trial's liveness signal in the storage
GRACE_SECONDS = 30  # a trial without a heartbeat for this long belongs to a dead worker
SQLITE_TIMEOUT = 60  # seconds a SQLite writer waits for another's lock before 'database is locked'
RACE_ATTEMPTS = 5
# The private RDBStorage methods made patient besides the public ones: those Optuna's own cache layer calls
# (tests/test_optuna_contract.py fails if Optuna renames one, or its cache layer starts calling another).
WRAPPED_PRIVATE = ("_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids", "_get_trials",
                   "_set_trial_param")


class DuplicateTrial(Exception):
    """This Optuna trial is not needed: its slot is another trial's, or the sampler's budget is spent."""


class TrialError(Exception):
    """The trial itself failed (its ``error`` attribute says how): it ends FAIL, and its slot is done, not retried
    (the same settings would fail again)."""


def errored(trial: optuna.trial.FrozenTrial) -> bool:
    """True for a trial that ended in its own error (:class:`TrialError`), not by its worker's death."""
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def default_storage(sweep_dir: Path) -> str:
    """SQLite in the sweep's folder."""
    return f"sqlite:///{(Path(sweep_dir) / 'study.db').resolve()}"


def storage_url(url: str) -> str:
    """The URL as SQLAlchemy is given it: plain ``postgresql://`` means psycopg 3, the ``postgres`` extra's driver
    (SQLAlchemy's default, psycopg2, is not installed)."""
    return "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url


def public_url(url: str) -> str:
    """The storage URL with any password masked, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    with contextlib.suppress(ArgumentError):  # not even a URL: nothing to mask
        return make_url(url).render_as_string(hide_password=True)
    return url


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    parsed = None
    with contextlib.suppress(ArgumentError):  # not a URL: open_study reports it
        parsed = make_url(url)
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:"):
        raise ConfigError(f"--storage {url}: an in-memory database cannot be shared by workers or resumed; "
                          "give a file, e.g. sqlite:///study.db")
    return Path(parsed.database)


class StorageOutage(CifarlabError):
    """The study's storage stayed unreachable for longer than ``--storage-patience``."""


def _caused_by(exc: BaseException | None, *types: type) -> BaseException | None:
    """The exception of one of ``types`` that ``exc`` is or was caused by (Optuna wraps SQLAlchemy's in its own)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, types):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def unmasked_outages():
    """Raise the :class:`StorageOutage` behind whatever exception the body raised while handling it.

    Optuna's trial loop reads the finished trial back from the storage; when that read fails, the ``finally``
    block of its ``_run_trial`` (Optuna 4) raises an ``UnboundLocalError`` of its own, which would hide the
    outage's one-line message behind a traceback.
    """
    try:
        yield
    except Exception as exc:
        outage = _caused_by(exc, StorageOutage)
        if outage is None or outage is exc:
            raise
        raise outage from None


def _patient(method):
    """``method`` retried with backoff while the storage is unreachable, for up to ``self.patience`` seconds."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        delay = 0.5
        while True:
            try:
                result = method(self, *args, **kwargs)
                self.down_since = None
                return result
            except Exception as exc:
                # A dropped connection, a server (re)starting, SQLite's 'database is locked': worth retrying.
                cause = _caused_by(exc, OperationalError, InterfaceError)
                if cause is None:
                    raise
                now = time.monotonic()
                self.down_since = self.down_since or now
                left = self.patience - (now - self.down_since)
                if left <= 0:
                    raise StorageOutage(
                        f"--storage {self.shown}: unreachable for {self.patience:.0f} s (--storage-patience; "
                        f"{first_line(cause)}); the study is safe: run the same command again "
                        "when the database is back") from None
                time.sleep(min(delay, left))
                delay = min(2 * delay, 10)
    return call


@functools.cache
def _patient_storage():
    """Optuna's RDBStorage whose every call rides out an outage of ``patience`` seconds, retrying with backoff
    (Optuna's own would end the worker at a dropped connection, and every worker at a server restart)."""
    from optuna.storages import RDBStorage

    class PatientStorage(RDBStorage):
        patience, down_since, shown = 0.0, None, ""

        def record_heartbeat(self, trial_id: int) -> None:
            with contextlib.suppress(StorageOutage):  # its own thread: the main thread reports the outage
                _patient(RDBStorage.record_heartbeat)(self, trial_id)

    for name, member in vars(RDBStorage).items():
        if callable(member) and (not name.startswith("_") or name in WRAPPED_PRIVATE) \
                and name not in ("record_heartbeat", "remove_session"):
            setattr(PatientStorage, name, _patient(member))
    return PatientStorage


@contextlib.contextmanager
def _storage_errors(url: str, doing: str):
    """Any failure to use the storage, raised as a one-line ConfigError naming it (its password masked)."""
    try:
        yield
    except ConfigError:
        raise
    except ImportError as exc:
        extra = "pip install 'cifarlab[postgres]' (psycopg 3)" if url.startswith("postgresql") else \
            "install the driver the URL names"
        raise ConfigError(f"--storage {public_url(url)}: the database driver is not installed ({first_line(exc)}): "
                          f"{extra}") from None
    except Exception as exc:  # SQLAlchemy and its drivers raise many types for a bad URL or server
        while exc.__cause__ is not None:  # Optuna wraps the driver's error, which says what went wrong
            exc = exc.__cause__
        raise ConfigError(f"--storage {public_url(url)}: cannot {doing} "
                          f"({type(exc).__name__}: {first_line(exc)})") from None


def open_study(spec: SweepSpec, storage: str) -> optuna.Study:
    """Open (or create) the sweep's study; one-line ConfigError if the storage fails or holds another plan.

    Fails at once when the storage cannot be reached now (a wrong URL is the likely cause); once open, the study's
    storage rides out outages of ``spec.options.storage_patience`` seconds."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials are reported by the sweep itself
    # Heartbeats are marked experimental; they are what makes a killed worker's trial recoverable.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(storage)
    # SQLite makes concurrent writers wait; several workers' heartbeats need more than the default 5 s.
    # A server's pooled connections die with a restart: test each before use.
    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT}} if _sqlite_file(url) is not None \
        else {"pool_pre_ping": True}
    sampler = optuna.samplers.RandomSampler() if spec.kind == "random" else optuna.samplers.TPESampler()
    pruner = optuna.pruners.MedianPruner(n_warmup_steps=1) if spec.pruner == "median" else optuna.pruners.NopPruner()
    with _storage_errors(storage, "open"):
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                # A dead worker's trial (stale heartbeat) goes back to the queue with its settings and slot.
                rdb = _patient_storage()(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                                         grace_period=GRACE_SECONDS,
                                         heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback())
                study = optuna.create_study(study_name=spec.name, storage=rdb, sampler=sampler, pruner=pruner,
                                            direction="maximize", load_if_exists=True)
                _check_plan(study, spec, storage)
                break
            except Exception as exc:
                # Workers started together race to create Optuna's tables and the study's attributes;
                # the loser finds them made on its next attempt.
                if attempt == RACE_ATTEMPTS or not _caused_by(exc, IntegrityError, ProgrammingError):
                    raise
                time.sleep(0.2 + random.random())
    rdb.patience, rdb.shown = spec.options.storage_patience, public_url(storage)
    return study


def load_studies(storage: str) -> list[optuna.Study]:
    """Every study in a storage, read as it is (no tables created); one-line ConfigError if it cannot be read."""
    import optuna
    from optuna.storages import RDBStorage

    db = _sqlite_file(storage)
    if db is not None and not db.is_file():  # SQLite would create an empty database only to find no study in it
        raise ConfigError(f"--storage {public_url(storage)}: no database file {db}")
    with _storage_errors(storage, "read"):
        rdb = RDBStorage(storage_url(storage), skip_table_creation=True)
        return [optuna.load_study(study_name=name, storage=rdb) for name in optuna.get_all_study_names(rdb)]


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
    """Running, waiting or ended with a result: not a dead worker's attempt, whose slot is owed again."""
    from optuna.trial import TrialState

    return trial.state != TrialState.FAIL or errored(trial)


def finished_by_slot(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    """The trial that completed, was pruned or failed in its own error, for each done slot."""
    from optuna.trial import TrialState

    done: dict[int, optuna.trial.FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
        if trial.user_attrs.get("slot") is not None and _live(trial):
            done.setdefault(trial.user_attrs["slot"], trial)
    return done


def dead_attempts(study: optuna.Study) -> dict[int, list[optuna.trial.FrozenTrial]]:
    """Each slot's attempts whose worker died or was stopped (FAIL, not in their own error), oldest first."""
    from optuna.trial import TrialState

    found: dict[int, list] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        attrs = trial.user_attrs
        if attrs.get("slot") is not None and "run_dir" in attrs and not attrs.get("duplicate") and not errored(trial):
            found.setdefault(attrs["slot"], []).append(trial)
    return found


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
    """True when a worker took the trial from the queue but died before it could say who it is (so before its
    first heartbeat: Optuna only fails trials whose heartbeat went stale)."""
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
    attempts: dict[int, list] = {}
    for trial in study.get_trials(deepcopy=False):
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

    Deterministic whichever worker looks first: of two live trials for one slot the older (lower number) runs; a
    sampler's new draw runs only if fewer than ``budget`` older slots are live. (Optuna's ``MaxTrialsCallback`` stops
    a worker only after a trial has finished: two workers at ``budget - 1`` would both draw.)
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
    """Serialises taking a trial from a SQLite study's queue among this machine's workers (:meth:`release` may be
    called when not held): Optuna takes a WAITING trial with a read then a write, which a server database locks
    in between and SQLite does not, so two workers could both take the same trial."""

    def __init__(self, storage_url: str):
        db = _sqlite_file(storage_url)
        self.path = db.with_name(db.name + ".lock") if db is not None and fcntl is not None else None
        self._file = None

    def __enter__(self) -> Self:
        if self.path is not None and self._file is None:
            self._file = open(self.path, "a")  # noqa: SIM115  (held across calls, closed in release)
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def release(self) -> None:
        """Let the next worker take a trial (closing the file drops its lock)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __exit__(self, *exc) -> None:
        self.release()
