"""``cifarlab evaluate``: accuracy, calibration, per-class accuracy and confusion matrix; robustness to corruptions."""

from __future__ import annotations

import argparse
import json

from cifarlab.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` sub-command."""
    p = sub.add_parser("evaluate", help="evaluate a trained model on the test set or validation split")
    p.add_argument("path", metavar="RUN_DIR|WEIGHTS", help="run directory or weights.safetensors")
    p.add_argument("--data", metavar="PATH", help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--corruptions", action="store_true",
                   help="accuracy on the test images under 10 CIFAR-10-C corruptions x 5 severities; "
                        "saves robustness.json and plots/robustness.png in a run directory")
    p.add_argument("--corruption", dest="corruption_names", action="append", metavar="NAME",
                   help="with --corruptions: only this one (repeatable; default all ten)")
    p.add_argument("--max-test-images", type=int, metavar="N",
                   help="with --corruptions: a stratified subset of N test images (time scales with N)")
    p.add_argument("--corruption-seed", type=int, default=0, metavar="S", help="seed of the corruption noise")


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the report."""
    from cifarlab.evaluation import evaluate

    if args.corruptions:
        if args.split != "test":
            raise ConfigError("--corruptions corrupts the test images; drop --split")
        from cifarlab.evaluation.robustness import evaluate_corruptions

        report = evaluate_corruptions(args.path, data=args.data, device=args.device, names=args.corruption_names,
                                      max_images=args.max_test_images, seed=args.corruption_seed,
                                      progress=not args.json)
    elif args.max_test_images is not None or args.corruption_names:
        raise ConfigError("--max-test-images and --corruption go with --corruptions")
    else:
        report = evaluate(args.path, data=args.data, split=args.split, device=args.device, progress=not args.json)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_table())
    return 0
