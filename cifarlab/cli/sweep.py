"""``cifarlab sweep``: run a hyperparameter table as a resumable Optuna study."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``sweep`` sub-command."""
    p = sub.add_parser(
        "sweep", help="run a sweep file: a grid, explicit runs, or a TPE/random search",
        description="Run a sweep: every trial is an ordinary run under SWEEP_DIR/trials/, ranked on validation "
                    "accuracy. Running the same command again continues it: finished trials are kept, an "
                    "interrupted one resumes from its last checkpoint.")
    p.add_argument("sweep", metavar="SWEEP", help="sweep YAML file, or a shipped sweep's name (seed-table)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes on this machine (default 1)")
    p.add_argument("--storage", metavar="URL",
                   help="SQLAlchemy URL of the Optuna study, e.g. postgresql://host/db for workers on several "
                        "machines (default: sqlite:///SWEEP_DIR/study.db)")
    p.add_argument("--out", metavar="SWEEP_DIR", help="the sweep's folder (default sweeps/<name>)")
    p.add_argument("--data", metavar="PATH", help="dataset for every trial")
    p.add_argument("--max-train-images", type=int, metavar="N", help="every trial trains on N images")
    p.add_argument("--max-test-images", type=int, metavar="N",
                   help="every trial reports test accuracy on a class-stratified N of the test images")
    p.add_argument("--epochs", type=int, metavar="N", help="every trial trains N epochs")
    p.add_argument("--epochs-scale", type=float, metavar="X",
                   help="multiply each trial's own epochs by X (rounded, at least 1), e.g. 0.1 for a short form")
    p.add_argument("--val-size", type=int, metavar="N", help="validation images held out of the training set")
    p.add_argument("--repeats", type=int, metavar="K", help="seeds per configuration (replaces the file's)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the expanded trials; train nothing")
    p.add_argument("--json", action="store_true", help="print the trials (--dry-run) or results as JSON")
    p.add_argument("--verbose", action="store_true", help="each trial's epoch lines and progress bars")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a process started by --workers
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate, then run or continue the sweep and print its table."""
    import json
    import os
    from pathlib import Path

    from cifarlab.sweeps import Knobs, load_sweep, run_sweep, runner
    from cifarlab.sweeps.spec import describe, dump

    knobs = Knobs(data=args.data, max_train_images=args.max_train_images, max_test_images=args.max_test_images,
                  epochs=args.epochs,
                  epochs_scale=args.epochs_scale, val_size=args.val_size, repeats=args.repeats)
    spec = load_sweep(args.sweep, knobs)
    if args.dry_run:
        print(json.dumps(describe(spec), indent=2, ensure_ascii=False) if args.json else dump(spec).rstrip("\n"))
        return 0
    if args.worker:
        import torch

        runner.exit_with_coordinator()
        torch.set_num_threads(int(os.environ[runner.THREADS_ENV]))  # the machine's cores, shared among workers
        runner.run_worker(spec, Path(args.out), os.environ[runner.STORAGE_ENV], verbose=args.verbose)
        return 0
    result = run_sweep(spec, args.out, args.storage, args.workers, verbose=args.verbose)
    if args.json:
        print(json.dumps({"sweep_dir": str(result.sweep_dir), "rows": result.rows, "best": result.best}, indent=2,
                         ensure_ascii=False))
        return 0
    print()
    print(result.table())
    print()
    print(result.best_summary())
    print(f"results: {result.sweep_dir / 'results.md'}, {result.sweep_dir / 'results.csv'}, "
          f"plots in {result.sweep_dir / 'plots'}")
    return 0
