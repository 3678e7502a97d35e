"""``cifarlab export``: a trained model as ONNX (MATLAB, Netron, onnxruntime) or TorchScript."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``export`` sub-command."""
    p = sub.add_parser("export", help="export a trained model to ONNX or TorchScript, checked for parity")
    p.add_argument("path", metavar="RUN_DIR|WEIGHTS", help="run directory or weights.safetensors")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--opset", type=int, default=14, metavar="N", help="ONNX opset (default 14)")
    p.add_argument("--out", metavar="FILE", help="output file (default: model.onnx / model.pt beside the weights)")
    p.add_argument("--allow-any-op", action="store_true",
                   help="accept ONNX ops outside the MATLAB importer allow-list (they are listed as a warning)")


def run(args: argparse.Namespace) -> int:
    """Export, verify and print the preprocessing and the op list."""
    from cifarlab.exporting import export_model

    result = export_model(args.path, format=args.format, opset=args.opset, out=args.out,
                          allow_any_op=args.allow_any_op)
    print(result.describe())
    return 0
