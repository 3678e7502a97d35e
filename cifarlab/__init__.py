"""cifarlab: a workbench for convolutional networks on CIFAR-10.

The Python API mirrors the command line::

    import cifarlab
    result = cifarlab.train("seed", data__path="cifar10-jpeg.tar.gz", train__epochs=1)
    report = cifarlab.evaluate(result.run_dir)
    print(report.format_table())
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> module that defines it. Resolved on first use, so that
# `cifarlab --help` does not pay for importing torch.
_API = {
    "Config": "cifarlab.config",
    "compose": "cifarlab.config",
    "load_config": "cifarlab.config",
    "train": "cifarlab.training.trainer",
    "TrainResult": "cifarlab.training.trainer",
    "evaluate": "cifarlab.evaluation",
    "predict": "cifarlab.evaluation",
    "create_model": "cifarlab.models",
    "build_model": "cifarlab.models",
    "list_models": "cifarlab.models",
    "load_dataset": "cifarlab.data",
    "sweep": "cifarlab.sweeps",
    "SweepResult": "cifarlab.sweeps",
    "collect_runs": "cifarlab.reporting",
    "report": "cifarlab.reporting.html",
    "inspect": "cifarlab.inspection",
    "export": "cifarlab.exporting",
}
_RENAMED = {"load_config": "load", "inspect": "inspect_model", "export": "export_model"}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'cifarlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
