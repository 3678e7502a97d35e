"""A sweep as a Slurm job array: one array task is one sweep worker, taking trials from the shared study.

``cifarlab sweep NAME --storage URL --slurm N`` writes ``SWEEP_DIR/slurm-sweep.sh`` and submits it with sbatch.
Each task runs the sweep's own command under ``srun``, so that ``scancel --signal=TERM`` and the signal sent ahead
of the time limit reach the worker (``scancel --signal`` spares the batch shell). On SIGTERM the worker
checkpoints its trial, which Optuna marks for retry, then requeues its own task (:func:`requeue_this_task`):
Slurm requeues a preempted task itself, but never one that reached its time limit. Whichever task is free next
resumes the trial from its checkpoint under ``--artifacts``. A task killed outright is found by its heartbeat.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from cifarlab.errors import ConfigError
from cifarlab.fileio import write_text
from cifarlab.sweeps.options import STORAGE_ENV

SCRIPT = "slurm-sweep.sh"
REQUEUE_ENV = "CIFARLAB_SLURM_REQUEUE"  # set by the script: on SIGTERM, the worker requeues its own task
SIGNAL_LEAD = 60  # seconds before the time limit at which Slurm sends SIGTERM (it may be up to 60 s earlier)
# Options that give a task GPUs: its worker then runs one process per GPU Slurm gave it (--devices all).
_GPU_OPTION = re.compile(r"^(--gres=(.*,)?gpu|--gpus(-per-(task|node|socket))?=|-G)")


def task_name(env: dict[str, str] | None = None) -> str | None:
    """This process's Slurm task as ``squeue`` shows it: ``JOB_INDEX`` in an array (``1234_0``), else the job id."""
    env = os.environ if env is None else env
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def trial_attrs(env: dict[str, str] | None = None) -> dict[str, object]:
    """The user attributes a trial records about the Slurm task running it (none outside Slurm)."""
    env = os.environ if env is None else env
    task = task_name(env)
    if task is None:
        return {}
    return {"slurm_task": task, "slurm_job_id": env.get("SLURM_JOB_ID"),
            "slurm_restarts": int(env.get("SLURM_RESTART_COUNT") or 0)}


def describe_attempt(attrs: dict) -> str | None:
    """One attempt of a trial as the runs table shows it: ``1234_0@node7``, ``(requeued N×)`` after a requeue."""
    if "slurm_task" not in attrs:
        return None
    again = f" (requeued {attrs['slurm_restarts']}×)" if attrs.get("slurm_restarts") else ""
    return f"{attrs['slurm_task']}@{attrs.get('host', '?')}{again}"


def wants_gpus(slurm_options: list[str]) -> bool:
    """True when the sbatch options give each task GPUs (``--gres=gpu:N``, ``--gpus=N``, ``--gpus-per-task``...)."""
    return any(_GPU_OPTION.match(option) for option in slurm_options)


def worker_command(spec, sweep_dir: Path, slurm_options: list[str]) -> list[str]:
    """The ``cifarlab sweep`` command each array task runs: this one's options, without ``--slurm`` and without
    ``--storage``, which reaches it in its environment (:data:`~cifarlab.sweeps.options.STORAGE_ENV`)."""
    options = dataclasses.replace(spec.options, out_dir=str(sweep_dir))
    command = [sys.executable, "-m", "cifarlab", "sweep", spec.source, *options.argv()]
    if options.devices is not None:
        command += ["--devices", options.devices]
    elif wants_gpus(slurm_options):  # the task's GPUs, as Slurm's CUDA_VISIBLE_DEVICES numbers them
        command += ["--devices", "all"]
    elif options.workers != 1:
        command += ["--workers", str(options.workers)]
    return command


def write_script(spec, sweep_dir: Path, storage: str, tasks: int, slurm_options: list[str]) -> Path:
    """Write ``SWEEP_DIR/slurm-sweep.sh``, the sbatch script of a sweep run by ``tasks`` array tasks
    (``slurm_options``: further ``#SBATCH`` lines), owner-only as it holds the storage URL; return its path."""
    if tasks < 1:
        raise ConfigError(f"--slurm must be at least 1 array task, got {tasks}")
    sweep_dir = Path(sweep_dir).resolve()
    own = [f"--job-name=cifarlab-{spec.name}", f"--array=0-{tasks - 1}", "--ntasks=1", "--requeue",
           f"--signal=TERM@{SIGNAL_LEAD}", f"--output={sweep_dir}/slurm-%A_%a.out", "--open-mode=append"]
    lines = ["#!/bin/bash",
             f"# The sweep {spec.name} as {tasks} Slurm array tasks, one sweep worker each, written by cifarlab "
             "sweep --slurm.",
             "# Edit it and submit it again with `sbatch THIS_FILE`. It holds the --storage URL: keep it private.",
             *(f"#SBATCH {option}" for option in own + slurm_options),
             "",
             "# SIGTERM (scancel --signal=TERM, the time limit's warning, a preemption) checkpoints the worker's "
             "trial,",
             "# which goes back to the study, and requeues this task: Slurm never requeues a task at its time "
             "limit.",
             f"export {REQUEUE_ENV}=1",
             "# The storage URL (and its password) goes to the worker in its environment: a command line shows in ps.",
             f"export {STORAGE_ENV}={shlex.quote(storage)}",
             # --export=ALL: the environment above reaches the worker even under --slurm-option=--export=NONE
             "exec srun --export=ALL " + shlex.join(worker_command(spec, sweep_dir, slurm_options)),
             ""]
    path = sweep_dir / SCRIPT
    write_text(path, "\n".join(lines), mode=0o700)
    return path


def submit(path: Path) -> str:
    """``sbatch`` the script; the job id."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise ConfigError(f"--slurm: sbatch not found on PATH (is this a Slurm login node?); the script is {path}, "
                          "submit it with sbatch where Slurm is")
    done = subprocess.run([sbatch, "--parsable", str(path)], capture_output=True, text=True)
    if done.returncode:
        why = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()[-1]
        raise ConfigError(f"--slurm: sbatch {path} failed: {why}")
    return done.stdout.strip().split(";")[0]  # --parsable: JOBID or JOBID;CLUSTER


def requeue_this_task() -> str:
    """Put this Slurm task back in the queue after a SIGTERM, unless the job is being cancelled; what was done."""
    # JOB_INDEX, not SLURM_JOB_ID: an array's last task has the array's own job id, which names every task
    job = task_name()
    if job is None:
        return "not a Slurm task: nothing requeued"
    try:
        shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, timeout=60)
        # `scancel` (without --signal) also sends SIGTERM: its job is already COMPLETING, and stays cancelled
        if "JobState=RUNNING" not in shown.stdout.split():
            state = next((w for w in shown.stdout.split() if w.startswith("JobState=")), "JobState unknown")
            return f"Slurm task {job} not requeued ({state}: cancelled or requeued by Slurm)"
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Slurm task {job} not requeued: scontrol failed ({exc})"
    if done.returncode:
        return f"Slurm task {job} not requeued: {done.stderr.strip() or 'scontrol requeue failed'}"
    return f"requeued Slurm task {job}: it continues the sweep when it starts again"
