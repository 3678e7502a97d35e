"""How long `cifarlab inspect` takes per network, against building the network and running it once by hand.

`inspect_model` builds the network, traces one image through it with a hook on
every layer (shapes, parameters, MACs, activation memory) and runs the design
checks. The baseline, timed in the same run, is what a user would do without
it: build the same network and run one eager forward pass of batch 1. The
ratio printed is inspect time over baseline time: what the per-layer table
costs over a bare shape check. The trace runs on the meta device (shapes, no
arithmetic), so the ratio can be below 1.

    python benchmarks/inspect_speed.py
    python benchmarks/inspect_speed.py --quick      # CI: two small networks, few repetitions
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from cifarlab.config import ModelConfig  # noqa: E402
from cifarlab.inspection import inspect_model  # noqa: E402
from cifarlab.models import build_model  # noqa: E402

CUSTOM = Path(__file__).resolve().parent.parent / "examples" / "custom.yaml"
NETWORKS = {"seed": ModelConfig(name="seed"), "seedlike-8-3": ModelConfig(name="seedlike", args={"conv": 8, "fc": 3}),
            "fast": ModelConfig(name="fast"), "resnet18": ModelConfig(name="resnet18"), "custom.yaml": CUSTOM}


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def by_hand(source: ModelConfig | Path) -> None:
    """The baseline: build the network and run one image through it."""
    if isinstance(source, Path):
        from cifarlab.config import compose

        source = compose(config_file=source).model
    with torch.no_grad():
        build_model(source).eval()(torch.zeros(1, 3, 32, 32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per network (median reported)")
    parser.add_argument("--quick", action="store_true", help="CI mode: two small networks, 3 repetitions")
    args = parser.parse_args()
    labels = ["seed", "custom.yaml"] if args.quick else list(NETWORKS)
    repeats = 3 if args.quick else args.repeats
    torch.manual_seed(0)
    print(f"machine: {machine()}")
    print(f"median of {repeats} calls after a warm-up; baseline: build the network + one eager forward pass, batch 1")
    print(f"{'network':<14}{'layers':>7}{'inspect ms':>12}{'baseline ms':>13}{'inspect/baseline':>18}")
    for label in labels:
        source = NETWORKS[label]
        layers = len(inspect_model(source).rows)
        inspect_s = median_seconds(lambda: inspect_model(source), repeats)
        base_s = median_seconds(lambda: by_hand(source), repeats)
        print(f"{label:<14}{layers:>7}{1000 * inspect_s:>12.1f}{1000 * base_s:>13.1f}{inspect_s / base_s:>17.2f}x")


if __name__ == "__main__":
    main()
