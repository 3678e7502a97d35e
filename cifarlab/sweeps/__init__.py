"""Sweeps: the hyperparameter table as one resumable, parallel Optuna study.

    result = cifarlab.sweep("seed-table", max_train_images=2000, epochs=2)
"""

from __future__ import annotations

from pathlib import Path

from cifarlab.sweeps.runner import SweepResult, run_sweep
from cifarlab.sweeps.spec import SweepSpec, Trial, list_sweeps, load_sweep

__all__ = ["SweepResult", "SweepSpec", "Trial", "list_sweeps", "load_sweep", "run_sweep", "sweep"]


def sweep(path_or_name: str, *, out_dir: str | Path | None = None, storage: str | None = None, workers: int = 1,
          data: str | None = None, max_train_images: int | None = None, epochs: int | None = None,
          epochs_scale: float | None = None, repeats: int | None = None) -> SweepResult:
    """Run (or continue) a sweep file or shipped sweep; returns its rows and best trial."""
    fixed = {k: v for k, v in (("data.path", str(Path(data).resolve()) if data else None),
                               ("data.max_train_images", max_train_images), ("train.epochs", epochs)) if v is not None}
    spec = load_sweep(path_or_name, fixed, epochs_scale=epochs_scale, repeats=repeats)
    argv = [str(path_or_name)] + [a for flag, v in (("--data", data), ("--max-train-images", max_train_images),
                                                    ("--epochs", epochs), ("--epochs-scale", epochs_scale),
                                                    ("--repeats", repeats)) if v is not None for a in (flag, str(v))]
    return run_sweep(spec, Path(out_dir or Path("sweeps") / spec.name), storage, workers, worker_args=argv)
