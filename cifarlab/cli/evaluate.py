"""``cifarlab evaluate``: accuracy, per-class accuracy and confusion matrix of a trained model."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` sub-command."""
    p = sub.add_parser("evaluate", help="evaluate a trained model on the test set or validation split")
    p.add_argument("path", metavar="RUN_DIR|WEIGHTS", help="run directory or weights.safetensors")
    p.add_argument("--data", metavar="PATH", help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the report."""
    from cifarlab.evaluation import evaluate

    report = evaluate(args.path, data=args.data, split=args.split, device=args.device, progress=not args.json)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return 0
