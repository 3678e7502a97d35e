"""``cifarlab runs``: the table of runs under a folder (a sweep, or ``runs/``)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``runs`` sub-command."""
    p = sub.add_parser("runs", help="list runs with the write-up's columns plus accuracy, time, device, seed")
    p.add_argument("root", nargs="?", default="runs", metavar="SWEEP_DIR|RUNS_DIR",
                   help="folder searched recursively for run directories (default runs/)")
    p.add_argument("--sort", default="val acc", metavar="KEY", help="column to sort by (default 'val acc')")
    p.add_argument("--format", choices=["table", "csv", "markdown", "json"], default="table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect, sort and print."""
    from pathlib import Path

    from cifarlab.errors import ConfigError
    from cifarlab.reporting.runs import COLUMNS, collect_runs, sort_rows
    from cifarlab.reporting.tables import format_rows

    root = Path(args.root)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder of runs")
    if args.sort not in COLUMNS + ["run"]:
        raise ConfigError(f"--sort {args.sort!r}: not a column; columns: {', '.join(COLUMNS)}")
    rows = collect_runs(root)
    if not rows:
        raise ConfigError(f"{root}: no run directories (with summary.json and config.yaml) found")
    print(format_rows(sort_rows(rows, args.sort), COLUMNS, args.format))
    return 0
