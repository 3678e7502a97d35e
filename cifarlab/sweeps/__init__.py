"""Sweeps: a hyperparameter table as one resumable, parallel Optuna study of ordinary cifarlab runs.

    result = cifarlab.sweep("seed-table", data="cifar10.tar.gz", max_train_images=2000, epochs_scale=0.1)
    print(result.table())
    print(result.best_summary())
"""

from __future__ import annotations

from pathlib import Path

from cifarlab.sweeps.runner import SweepResult, run_sweep
from cifarlab.sweeps.spec import Knobs, SweepSpec, Trial, list_sweeps, load_sweep

__all__ = ["Knobs", "SweepResult", "SweepSpec", "Trial", "list_sweeps", "load_sweep", "run_sweep", "sweep"]


def sweep(path_or_name: str | Path, *, out_dir: str | Path | None = None, storage: str | None = None,
          workers: int = 1, data: str | Path | None = None, max_train_images: int | None = None,
          max_test_images: int | None = None,
          epochs: int | None = None, epochs_scale: float | None = None, val_size: int | None = None,
          repeats: int | None = None, verbose: bool = False) -> SweepResult:
    """Run, or continue, a sweep file or shipped sweep (``seed-table``); the Python face of ``cifarlab sweep``.

    ``out_dir`` defaults to ``sweeps/<name>``, ``storage`` to SQLite in it. The
    knobs apply to every trial after the sweep file: ``data`` (dataset path),
    ``max_train_images``, ``max_test_images``, ``epochs`` or ``epochs_scale`` (multiplies each trial's
    epochs), ``val_size`` and ``repeats`` (seeds per configuration). ``verbose``
    shows each trial's epochs and progress bars.
    """
    knobs = Knobs(data=None if data is None else str(data), max_train_images=max_train_images,
                  max_test_images=max_test_images, epochs=epochs,
                  epochs_scale=epochs_scale, val_size=val_size, repeats=repeats)
    return run_sweep(load_sweep(path_or_name, knobs), out_dir, storage, workers, verbose=verbose)
