"""``cifarlab runs``: the table of runs under a folder (a sweep's, or ``runs/``), or in a sweep's study storage."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``runs`` sub-command."""
    from cifarlab.sweeps.options import STORAGE_ENV

    p = sub.add_parser("runs", help="list runs: the write-up's columns plus accuracies, parameters, time, device, seed",
                       description="List every run directory under a folder (searched recursively): learning rate, "
                                   "batch size, epochs, architecture (conv-fc), optimizer, regularization, "
                                   "activation, normalization, validation and test accuracy (final model), "
                                   "parameters, wall time, device, seed and status.")
    p.add_argument("root", nargs="?", metavar="SWEEP_DIR|RUNS_DIR",
                   help="folder searched for run directories (default runs/)")
    p.add_argument("--storage", metavar="URL", nargs="?", const="",
                   help="list the finished trials of the sweeps in this Optuna storage instead, from the database "
                        "alone (e.g. a sweep whose workers ran on other machines); without a URL, "
                        f"${STORAGE_ENV}'s, which keeps a password off command lines")
    p.add_argument("--sort", default="val acc", metavar="KEY",
                   help="column to sort by, e.g. val_acc (default; best first), lr, wall_time")
    p.add_argument("--format", choices=["table", "csv", "markdown", "json"], default="table")


def run(args: argparse.Namespace) -> int:
    """Collect, sort and print."""
    from pathlib import Path

    from cifarlab.errors import ConfigError
    from cifarlab.reporting.runs import collect_runs, column, columns_for, sort_rows
    from cifarlab.reporting.tables import format_rows

    key = column(args.sort)  # a bad key fails before the (slower) reading of every run
    if args.storage is not None:
        from cifarlab.sweeps.options import STORAGE_ENV, storage_or_env
        from cifarlab.sweeps.runner import storage_rows

        if args.root is not None:
            raise ConfigError(f"{args.root}: give a folder or --storage, not both")
        url = storage_or_env(args.storage)
        if url is None:
            raise ConfigError(f"--storage without a URL reads ${STORAGE_ENV}, which is not set")
        rows = storage_rows(url)
        where = "--storage: no finished sweep trial in this database"
    else:
        root = Path(args.root or "runs")
        if not root.is_dir():
            raise ConfigError(f"{root}: no such folder of runs")
        rows = collect_runs(root)
        where = f"{root}: no run directories (with summary.json and config.yaml) found"
    if not rows:
        raise ConfigError(where)
    print(format_rows(sort_rows(rows, key), columns_for(rows), args.format))
    return 0
