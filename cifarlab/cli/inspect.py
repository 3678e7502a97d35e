"""``cifarlab inspect``: per-layer shapes, parameters, MACs and design findings of a network."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``inspect`` sub-command."""
    p = sub.add_parser("inspect", help="show a network's layers, shapes, params, MACs and design findings")
    p.add_argument("model", metavar="MODEL|CONFIG",
                   help="registered model or preset name, config YAML, layer-list YAML, run directory, weights "
                        "file, or SWEEP:LABEL for one row of a sweep (e.g. seed-table:r15-8x3-bn)")
    p.add_argument("--input", default="3x32x32", metavar="CxHxW", help="input shape (default 3x32x32)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size for activation memory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--diagram", metavar="FILE", help="also draw the layer chain to FILE (.png or .svg)")


def run(args: argparse.Namespace) -> int:
    """Inspect and print; a model that does not run is an error (exit 2)."""
    from cifarlab.errors import ModelError
    from cifarlab.inspection import draw_diagram, inspect_model

    source = _sweep_row(args.model) if ":" in args.model and not Path(args.model).exists() else args.model
    report = inspect_model(source, input_shape=args.input, batch=args.batch)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    if args.diagram:
        draw_diagram(report, args.diagram)
    if report.errors:
        raise ModelError(report.errors[0].message)
    return 0


def _sweep_row(text: str):
    """The config of the trial labelled LABEL in sweep SWEEP (a shipped name or a file), from ``SWEEP:LABEL``."""
    from cifarlab.errors import ConfigError
    from cifarlab.sweeps.spec import load_sweep

    sweep, label = text.rsplit(":", 1)
    spec = load_sweep(sweep)
    for trial in spec.trials:
        if trial.label == label:
            return spec.compose(trial.overrides)
    labels = ", ".join(t.label for t in spec.trials) or "none (a sampler sweep has no fixed rows)"
    raise ConfigError(f"{spec.source}: no row labelled {label!r}; rows: {labels}")
