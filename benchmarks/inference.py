"""Inference speed of each shipped model: eager PyTorch vs. ONNX Runtime, batch 1 and batch 256.

Each model is exported to ONNX exactly as `cifarlab export` does (opset 14,
parity-checked), then both runtimes are timed on the same inputs in this run.
The ratio printed is ONNX Runtime images/s over eager PyTorch images/s.

    python benchmarks/inference.py
    python benchmarks/inference.py --quick      # CI: two small models, few repetitions
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from cifarlab.config import load as load_config  # noqa: E402
from cifarlab.models import create_model  # noqa: E402

MODELS = {"seed": {}, "resnet18": {}, "fast": {"width": 1.0}, "fast-cpu": dict(load_config("fast-cpu").model.args),
          "seedlike-8-3": {"conv": 8, "fc": 3}}


def _factory(label: str) -> str:
    return label.split("-")[0]


def timed(fn, batch: int, seconds: float) -> tuple[float, float]:
    """``(images/s, milliseconds per batch)`` of ``fn`` over about ``seconds`` after a warm-up call."""
    fn()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and calls >= 3:
            return calls * batch / elapsed, 1000 * elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent per measurement")
    parser.add_argument("--quick", action="store_true", help="CI mode: two small models, short measurements")
    args = parser.parse_args()
    labels = ["seed", "fast-cpu"] if args.quick else list(MODELS)
    seconds = 0.2 if args.quick else args.seconds
    try:
        import onnxruntime as ort

        from cifarlab.exporting.onnx import export_onnx
    except ImportError:
        ort = None
    print(f"machine: {machine()}")
    if ort is None:
        print("onnxruntime not installed (pip install 'cifarlab[export]'): eager PyTorch only")
    print(f"{'model':<14}{'batch':>6}{'eager img/s':>13}{'eager ms':>10}{'ORT img/s':>11}{'ORT ms':>9}"
          f"{'ORT/eager':>11}")
    torch.manual_seed(0)
    for label in labels:
        model = create_model(_factory(label), **MODELS[label]).eval()
        session = None
        if ort is not None:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "model.onnx"
                # GELU (the fast net) exports as Erf, outside the MATLAB list; ONNX Runtime runs it.
                export_onnx(model, out, {"mean": [0.5] * 3, "std": [0.5] * 3}, allow_any_op=True)
                session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        for batch in (1, 256):
            x = torch.randn(batch, 3, 32, 32)
            with torch.inference_mode():
                eager_ips, eager_ms = timed(lambda: model(x), batch, seconds)
            line = f"{label:<14}{batch:>6}{eager_ips:>13.0f}{eager_ms:>10.2f}"
            if session is not None:
                feed = {"input": x.numpy()}
                ort_ips, ort_ms = timed(lambda: session.run(None, feed), batch, seconds)
                line += f"{ort_ips:>11.0f}{ort_ms:>9.2f}{ort_ips / eager_ips:>10.2f}x"
            print(line)


if __name__ == "__main__":
    main()
