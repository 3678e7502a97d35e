"""Every option of a sweep, in one table: ``cifarlab sweep``'s flags and the command line of worker processes are
generated from :class:`SweepOptions`, and ``cifarlab.sweep()`` takes the same names as keywords (a test keeps the
two alike); a new option is one field here, one keyword there, and its use where it acts.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


# The storage URL when --storage is not given: how a password reaches workers without a command line showing it.
STORAGE_ENV = "CIFARLAB_SWEEP_STORAGE"


def _option(metavar: str | None, help: str, *, key: str | None = None, default: Any = None, worker: bool = True,
            flag: str | None = None) -> Any:
    """A field of the table: ``key`` is the config key it sets on every trial; ``worker``: repeated to workers;
    ``flag`` the command-line flag when it is not the name's (``--out`` for ``out_dir``, as ``cifarlab train``)."""
    return field(default=default, metadata={"metavar": metavar, "help": help, "key": key, "worker": worker,
                                            "flag": flag})


def flag(f: dataclasses.Field) -> str:
    """The command-line flag of an option."""
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


@dataclass
class SweepOptions:
    """How a sweep runs. Options with a config ``key`` (and ``epochs_scale``, ``repeats``) change every trial,
    after everything in the sweep file, so they are part of the sweep's plan; the others do not."""

    data: str | None = _option("PATH", "dataset for every trial", key="data.path")
    max_train_images: int | None = _option("N", "every trial trains on N images", key="data.max_train_images")
    max_test_images: int | None = _option(
        "N", "every trial reports test accuracy on a class-stratified N of the test images",
        key="data.max_test_images")
    epochs: int | None = _option("N", "every trial trains N epochs", key="train.epochs")
    epochs_scale: float | None = _option(
        "X", "multiply each trial's own epochs by X (rounded, at least 1), e.g. 0.1 for a short form")
    val_size: int | None = _option("N", "validation images held out of the training set", key="data.val_size")
    repeats: int | None = _option("K", "seeds per configuration (replaces the file's)")
    out_dir: str | None = _option("SWEEP_DIR", "the sweep's folder (default sweeps/<name>)", flag="--out")
    # The URL may hold a password, which a command line would show to `ps`: workers get it in their environment.
    storage: str | None = _option(
        "URL", "SQLAlchemy URL of the Optuna study, e.g. postgresql://user:pw@host/db for workers on several "
        f"machines (default: ${STORAGE_ENV} if set, which keeps a password out of command lines, else "
        "sqlite:///SWEEP_DIR/study.db)", worker=False)
    workers: int = _option("N", "worker processes on this machine (default 1)", default=1, worker=False)
    devices: str | None = _option(
        "LIST", "one worker per device, pinned to it: cuda:0,cuda:1 or all (every GPU here)", worker=False)
    artifacts: str | None = _option(
        "DIR", "put the trials' run directories in DIR/<sweep name>, DIR a folder every machine sees (e.g. NFS), so "
        "that a dead worker's trial resumes from its checkpoint on another machine (default SWEEP_DIR/trials)")
    storage_patience: float = _option(
        "SECONDS", "ride out a storage outage (server restart, dropped connection, SQLite 'database is locked') "
        "for this long, retrying with backoff, before stopping (default 300)", default=300.0)
    verbose: bool = _option(None, "each trial's epoch lines and progress bars", default=False)

    def overrides(self) -> dict[str, Any]:
        """The config keys these options set on every trial."""
        found = {f.metadata["key"]: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["key"]}
        if found.get("data.path") is not None:  # workers may run elsewhere: never a relative path
            found["data.path"] = str(Path(found["data.path"]).expanduser().resolve())
        return {key: value for key, value in found.items() if value is not None}

    def argv(self, *, plan_only: bool = False) -> list[str]:
        """These options as ``cifarlab sweep`` flags, for worker processes (``plan_only``: those changing trials)."""
        args = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            plan = f.metadata["key"] is not None or f.name in ("epochs_scale", "repeats")
            if not f.metadata["worker"] or value in (None, False) or (plan_only and not plan):
                continue
            value = str(Path(value).resolve()) if f.name in ("data", "out_dir", "artifacts") else value
            args += [flag(f)] if value is True else [flag(f), str(value)]
        return args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per option."""
    hints = typing.get_type_hints(SweepOptions)
    for f in dataclasses.fields(SweepOptions):
        kind = hints[f.name]
        kind = typing.get_args(kind)[0] if isinstance(kind, types.UnionType) else kind  # int | None -> int
        how = {"action": "store_true"} if kind is bool else \
            {"type": kind, "default": f.default, "metavar": f.metadata["metavar"]}
        parser.add_argument(flag(f), dest=f.name, help=f.metadata["help"], **how)


def storage_or_env(url: str | None) -> str | None:
    """``url``, else ``$CIFARLAB_SWEEP_STORAGE`` when set: what ``--storage`` means to every command."""
    return url or os.environ.get(STORAGE_ENV) or None


def from_args(args: argparse.Namespace) -> SweepOptions:
    """The options parsed by :func:`add_arguments`; ``--storage`` defaults to ``$CIFARLAB_SWEEP_STORAGE``."""
    options = SweepOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SweepOptions)})
    return dataclasses.replace(options, storage=storage_or_env(options.storage))
