"""Sweeps: a hyperparameter table as one resumable, parallel Optuna study of ordinary cifarlab runs.

    result = cifarlab.sweep("seed-table", data="cifar10.tar.gz", max_train_images=2000, epochs_scale=0.1)
    print(result.table())
    print(result.best_summary())
"""

from __future__ import annotations

from pathlib import Path

from cifarlab.sweeps.options import SweepOptions
from cifarlab.sweeps.runner import SweepResult, run_sweep
from cifarlab.sweeps.spec import SweepSpec, Trial, list_sweeps, load_sweep

__all__ = ["SweepOptions", "SweepResult", "SweepSpec", "Trial", "list_sweeps", "load_sweep", "run_sweep", "sweep"]


def sweep(path_or_name: str | Path, *, data: str | None = None, max_train_images: int | None = None,
          max_test_images: int | None = None, epochs: int | None = None, epochs_scale: float | None = None,
          val_size: int | None = None, repeats: int | None = None, out_dir: str | None = None,
          storage: str | None = None, workers: int = 1, devices: str | None = None, artifacts: str | None = None,
          storage_patience: float = 300.0, verbose: bool = False) -> SweepResult:
    """Run, or continue, a sweep file or shipped sweep (``seed-table``); the Python face of ``cifarlab sweep``.

    The keywords are ``cifarlab sweep``'s options, :class:`SweepOptions`, under the same names
    (``max_train_images`` for ``--max-train-images``; ``out_dir`` for ``--out``), e.g.
    ``sweep("seed-table", data=..., max_train_images=2000, epochs_scale=0.1, workers=2)``.
    """
    options = SweepOptions(data=data, max_train_images=max_train_images, max_test_images=max_test_images,
                           epochs=epochs, epochs_scale=epochs_scale, val_size=val_size, repeats=repeats,
                           out_dir=out_dir, storage=storage, workers=workers, devices=devices, artifacts=artifacts,
                           storage_patience=storage_patience, verbose=verbose)
    return run_sweep(load_sweep(path_or_name, options))
