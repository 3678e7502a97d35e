"""``cifarlab sweep``: run a hyperparameter table as a resumable Optuna study."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``sweep`` sub-command; its options come from :class:`cifarlab.sweeps.SweepOptions`."""
    from cifarlab.sweeps.options import add_arguments

    p = sub.add_parser(
        "sweep", help="run a sweep file: a grid, explicit runs, or a TPE/random search",
        description="Run a sweep: every trial is an ordinary run under SWEEP_DIR/trials/, ranked on validation "
                    "accuracy. Running the same command again continues it: finished trials are kept, an "
                    "interrupted one resumes from its last checkpoint.")
    p.add_argument("sweep", metavar="SWEEP", help="sweep YAML file, or a shipped sweep's name (seed-table)")
    add_arguments(p)
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the expanded trials, their training compute and, from a short probe of "
                        "each network here, the time they would take; train nothing")
    p.add_argument("--no-probe", action="store_true", help="--dry-run without the timing probe")
    p.add_argument("--json", action="store_true", help="print the trials (--dry-run) or results as JSON")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a process started by --workers
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate, then run or continue the sweep and print its table."""
    import json
    import os
    from pathlib import Path

    from cifarlab.sweeps import load_sweep, run_sweep, runner
    from cifarlab.sweeps.options import from_args
    from cifarlab.sweeps.spec import describe, dump

    spec = load_sweep(args.sweep, from_args(args))
    if args.dry_run:
        from cifarlab.devices import cpu_flags_line, cpu_model
        from cifarlab.sweeps.cost import describe_costs, format_costs, sweep_costs

        costs = sweep_costs(spec, measure=not args.no_probe)
        machine = f"{cpu_model()} ({cpu_flags_line()})"
        if args.json:
            cost = describe_costs(costs, spec.options.workers, machine)
            print(json.dumps({**describe(spec), "cost": cost}, indent=2, ensure_ascii=False))
        else:
            print(dump(spec).rstrip("\n") + "\n" + format_costs(costs, spec.options.workers, machine))
        return 0
    if args.worker:
        import torch

        runner.exit_with_coordinator()
        torch.set_num_threads(int(os.environ[runner.THREADS_ENV]))  # the machine's cores, shared among workers
        runner.run_worker(spec, Path(args.out_dir), os.environ[runner.STORAGE_ENV])
        return 0
    result = run_sweep(spec)
    if args.json:
        print(json.dumps({"sweep_dir": str(result.sweep_dir), "rows": result.rows, "best": result.best}, indent=2,
                         ensure_ascii=False))
        return 0
    print(f"\n{result.table()}\n\n{result.best_summary()}")
    print(f"results: {result.sweep_dir / 'results.md'}, {result.sweep_dir / 'results.csv'}, "
          f"plots in {result.sweep_dir / 'plots'}")
    return 0
