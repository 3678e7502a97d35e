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
    p.add_argument("--slurm", type=int, metavar="TASKS",
                   help="submit the sweep as a Slurm job array of TASKS workers (needs --storage URL of a database "
                        "every node reaches); writes SWEEP_DIR/slurm-sweep.sh, which --dry-run prints instead")
    p.add_argument("--slurm-option", action="append", default=[], metavar="OPT",
                   help="with --slurm: one more sbatch option, e.g. --slurm-option=--time=4:00:00 or "
                        "--slurm-option=--gres=gpu:1 (each task's worker then uses the GPUs Slurm gives it)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a process started by --workers


def run(args: argparse.Namespace) -> int:
    """Validate, then run or continue the sweep and print its table."""
    import json
    import os
    import sys
    from pathlib import Path

    from cifarlab.errors import ConfigError
    from cifarlab.preemption import Interrupted
    from cifarlab.sweeps import load_sweep, run_sweep, runner, slurm
    from cifarlab.sweeps.options import from_args
    from cifarlab.sweeps.spec import describe, dump

    spec = load_sweep(args.sweep, from_args(args))
    if args.slurm is not None:
        return _submit(spec, args)
    if args.slurm_option:
        raise ConfigError("--slurm-option is an sbatch option for --slurm TASKS; give --slurm too")
    if args.dry_run:
        from cifarlab.devices import machine
        from cifarlab.sweeps.cost import describe_costs, format_costs, sweep_costs

        costs = sweep_costs(spec, measure=not args.no_probe)
        if args.json:
            cost = describe_costs(costs, spec.options.workers, machine())
            print(json.dumps({**describe(spec), "cost": cost}, indent=2, ensure_ascii=False))
        else:
            print(dump(spec).rstrip("\n") + "\n" + format_costs(costs, spec.options.workers, machine()))
        return 0
    if args.worker:
        import torch

        runner.exit_with_coordinator()
        torch.set_num_threads(int(os.environ[runner.THREADS_ENV]))  # the machine's cores, shared among workers
        runner.run_worker(spec, Path(args.out_dir), spec.options.storage)  # the coordinator's, from STORAGE_ENV
        return 0
    try:
        result = run_sweep(spec)
    except Interrupted:  # checkpointed, and the trial is back in the study: a Slurm task also goes back in the queue
        if os.environ.get(slurm.REQUEUE_ENV):
            print(f"cifarlab sweep: {slurm.requeue_this_task()}", file=sys.stderr, flush=True)
        raise
    if args.json:
        print(json.dumps({"sweep_dir": str(result.sweep_dir), "rows": result.rows, "best": result.best}, indent=2,
                         ensure_ascii=False))
        return 0
    print(f"\n{result.table()}\n\n{result.best_summary()}")
    print(f"results: {result.sweep_dir / 'results.md'}, {result.sweep_dir / 'results.csv'}, "
          f"plots in {result.sweep_dir / 'plots'}")
    return 0


def _submit(spec, args: argparse.Namespace) -> int:
    """``--slurm TASKS``: check the study, write the job array's script and submit it (``--dry-run``: print it)."""
    from cifarlab.errors import ConfigError
    from cifarlab.fileio import write_text
    from cifarlab.sweeps import slurm, study
    from cifarlab.sweeps.spec import dump

    if spec.options.storage is None:
        raise ConfigError("--slurm: give --storage URL, a database every node reaches (e.g. postgresql://...): the "
                          "default SQLite file in SWEEP_DIR is for one machine")
    sweep_dir = spec.sweep_dir.resolve()
    if not args.dry_run:  # a wrong URL or another sweep's study: one line now, not in every task's log
        study.open_study(spec, spec.options.storage)
        write_text(sweep_dir / "plan.yaml", dump(spec))
    path = slurm.write_script(spec, sweep_dir, spec.options.storage, args.slurm, args.slurm_option)
    if args.dry_run:
        print(path.read_text(), end="")
        return 0
    job = slurm.submit(path)
    print(f"Slurm job {job}: {args.slurm} array tasks ({job}_0 ...), script {path}, logs {sweep_dir}/slurm-{job}_*.out")
    return 0
