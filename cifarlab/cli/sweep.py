"""``cifarlab sweep``: run a hyperparameter table as a resumable Optuna study."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``sweep`` sub-command."""
    p = sub.add_parser("sweep", help="run a sweep file (grid, explicit runs, TPE or random search)",
                       description="Run a sweep. Running the same command again continues it: finished trials "
                                   "are kept, an interrupted one resumes from its checkpoint.")
    p.add_argument("sweep", metavar="SWEEP", help="sweep YAML file, or a shipped sweep name (e.g. seed-table)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes on this machine")
    p.add_argument("--storage", metavar="URL", help="SQLAlchemy URL of the study (default: SQLite in the sweep dir)")
    p.add_argument("--out", metavar="DIR", help="sweep directory (default sweeps/<name>)")
    p.add_argument("--data", metavar="PATH", help="dataset for every trial")
    p.add_argument("--max-train-images", type=int, metavar="N", help="train every trial on N images")
    p.add_argument("--epochs", type=int, metavar="N", help="every trial trains N epochs")
    p.add_argument("--epochs-scale", type=float, metavar="X", help="multiply each trial's epochs by X (at least 1)")
    p.add_argument("--val-size", type=int, metavar="N", help="validation images held out (default: the config's)")
    p.add_argument("--repeats", type=int, metavar="K", help="seeds per configuration (overrides the file)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the expanded trials; train nothing")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--progress", action="store_true", help="progress bars inside each trial")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _knobs(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """Overrides applied to every trial, and the same knobs as CLI arguments for worker processes."""
    fixed, argv = {}, []
    for flag, key, value in (("--data", "data.path", args.data),
                             ("--max-train-images", "data.max_train_images", args.max_train_images),
                             ("--epochs", "train.epochs", args.epochs), ("--val-size", "data.val_size", args.val_size)):
        if value is not None:
            fixed[key] = str(Path(value).resolve()) if key == "data.path" else value
            argv += [flag, str(value)]
    for flag, value in (("--epochs-scale", args.epochs_scale), ("--repeats", args.repeats)):
        if value is not None:
            argv += [flag, str(value)]
    return fixed, argv


def run(args: argparse.Namespace) -> int:
    """Validate, then run or continue the sweep and print its table."""
    import os

    from cifarlab.errors import ConfigError
    from cifarlab.reporting.runs import COLUMNS, aggregate_repeats, sort_rows
    from cifarlab.reporting.tables import format_rows
    from cifarlab.sweeps import load_sweep
    from cifarlab.sweeps.runner import describe_best, run_sweep, run_worker
    from cifarlab.sweeps.spec import dump_trials

    if os.environ.get("CIFARLAB_TORCH_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["CIFARLAB_TORCH_THREADS"]))
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    fixed, knob_argv = _knobs(args)
    spec = load_sweep(args.sweep, fixed, epochs_scale=args.epochs_scale, repeats=args.repeats)
    sweep_dir = Path(args.out or Path("sweeps") / spec.name)
    if args.dry_run:
        print(dump_trials(spec), end="")
        return 0
    if args.worker:
        run_worker(spec, sweep_dir, args.storage)
        return 0
    result = run_sweep(spec, sweep_dir, args.storage, args.workers, progress=args.progress,
                       worker_args=[args.sweep, *knob_argv])
    if args.json:
        import json

        print(json.dumps({"rows": result.rows, "best": result.best}, indent=2))
        return 0
    repeated = any(r["group"] != r["label"] for r in result.rows)
    rows = sort_rows(aggregate_repeats(result.rows) if repeated else result.rows)
    print(format_rows(rows, COLUMNS, "table", spread=repeated))
    print(describe_best(result.best))
    print(f"results: {sweep_dir / 'results.csv'}, {sweep_dir / 'results.md'}, plots in {sweep_dir / 'plots'}")
    return 0
