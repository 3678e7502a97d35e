"""Sweeps: a hyperparameter table as one resumable, parallel Optuna study of ordinary cifarlab runs.

    result = cifarlab.sweep("seed-table", data="cifar10.tar.gz", max_train_images=2000, epochs_scale=0.1)
    print(result.table())
    print(result.best_summary())
"""

from __future__ import annotations

from pathlib import Path

from cifarlab.sweeps.options import SweepOptions, keyword_signature
from cifarlab.sweeps.runner import SweepResult, run_sweep
from cifarlab.sweeps.spec import SweepSpec, Trial, list_sweeps, load_sweep

__all__ = ["SweepOptions", "SweepResult", "SweepSpec", "Trial", "list_sweeps", "load_sweep", "run_sweep", "sweep"]


@keyword_signature
def sweep(path_or_name: str | Path, **options) -> SweepResult:
    """Run, or continue, a sweep file or shipped sweep (``seed-table``); the Python face of ``cifarlab sweep``.

    Its keywords are ``cifarlab sweep``'s options (:class:`SweepOptions`), e.g.
    ``sweep("seed-table", data=..., max_train_images=2000, epochs_scale=0.1, workers=2)``:
"""
    return run_sweep(load_sweep(path_or_name, SweepOptions(**options)))
