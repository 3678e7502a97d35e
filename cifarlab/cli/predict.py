"""``cifarlab predict``: classify image files."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``predict`` sub-command."""
    p = sub.add_parser("predict", help="classify PNG/JPEG/BMP/WebP images of any size")
    p.add_argument("path", metavar="RUN_DIR|WEIGHTS", help="run directory or weights.safetensors")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (resized to 32x32 RGB)")
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="classes to show per image (default 3)")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")


def run(args: argparse.Namespace) -> int:
    """Predict and print one block per image."""
    from cifarlab.evaluation import predict

    predictions = predict(args.path, args.images, top_k=args.top_k)
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=2))
        return 0
    for p in predictions:
        print(p.file)
        for cls, prob in p.top:
            print(f"  {prob:7.2%}  {cls}")
    return 0
