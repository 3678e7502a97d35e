"""Time to a target test accuracy for a preset, over several seeds.

Trains the preset with test accuracy evaluated after every epoch (evaluation
time reported separately, never counted as training) and stops at the first
epoch at or above the target. The baseline, measured in the same run, is the
seed recipe: its training throughput is measured over a few hundred images and
its 20-epoch time (the write-up's recipe to 84%) projected from that, since
running it out would take hours on a CPU.

    python benchmarks/time_to_accuracy.py --preset fast-cpu --target 0.84 \\
        --data ../shared/data/cifar10-jpeg.tar.gz --seeds 3
    python benchmarks/time_to_accuracy.py --quick     # CI: synthetic data, tiny run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, synthetic_dataset  # noqa: E402

import cifarlab  # noqa: E402
from cifarlab.config import parse_override  # noqa: E402
from cifarlab.data.loader import DeviceLoader, to_device_images  # noqa: E402
from cifarlab.models import create_model  # noqa: E402
from cifarlab.rundir import RunDir  # noqa: E402


class _Reached(Exception):
    """Raised by the epoch callback to stop training once the target is met."""


def run_seed(preset: str, data, target: float, seed: int, overrides: dict) -> dict:
    """Train one seed until ``target``; returns the timings and accuracy.

    ``plain_wall_seconds`` is what a plain ``cifarlab train`` of the same length
    spends: the measured wall time less the per-epoch test evaluations that only
    this benchmark makes (a plain run evaluates the test set once, at the end).
    """
    epochs: list[dict] = []
    total_epochs = cifarlab.load_config(preset, **overrides).train.epochs

    def stop_at_target(metrics: dict) -> None:
        epochs.append(metrics)
        if metrics["test_acc"] >= target and metrics["epoch"] < total_epochs:
            raise _Reached

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        try:
            result = cifarlab.train(preset, out_dir=out, data=data, callbacks=[stop_at_target], progress=False,
                                    verbose=False, train__seed=seed, train__test_every_epoch=True, **overrides)
            summary, finished = result.summary, True
        except _Reached:
            summary, finished = RunDir(out).summary(), False
    wall = time.perf_counter() - t0
    extra_tests = [e["test_seconds"] for e in (epochs if finished else epochs[:-1])]
    return {"seed": seed, "reached": epochs[-1]["test_acc"] >= target, "epochs": len(epochs),
            "test_acc": epochs[-1]["test_acc"], "train_seconds": sum(e["seconds"] for e in epochs),
            "eval_seconds": summary["eval_seconds"], "wall_seconds": wall,
            "plain_wall_seconds": wall - sum(extra_tests)}


def seed_recipe_images_per_s(data, images: int) -> float:
    """Measured training images/s of the seed CNN with its recipe (Adam 5e-4, batch 60)."""
    torch.manual_seed(0)
    model = create_model("seed")
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    loader = DeviceLoader(to_device_images(data.train_images[:images + 60], "cpu"),
                          torch.from_numpy(data.train_labels[:images + 60]), 60,
                          mean=[0.5] * 3, std=[0.5] * 3, shuffle=True, drop_last=True)
    t0, count = None, 0
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t0 is None:  # the first batch is warm-up
            t0 = time.perf_counter()
        else:
            count += len(y)
    return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fast-cpu")
    parser.add_argument("--target", type=float, default=0.84)
    parser.add_argument("--data", help="dataset path (required unless --quick)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the preset, e.g. --set train.epochs=6")
    parser.add_argument("--quick", action="store_true", help="CI mode: synthetic data, 2 epochs, tiny")
    args = parser.parse_args()

    overrides = {k.replace(".", "__"): v for k, v in map(parse_override, args.overrides)}
    if args.quick:
        data = synthetic_dataset()
        overrides.update(train__epochs=2, train__batch_size=100, data__val_size=100)
        baseline_images = 120
    else:
        if not args.data:
            parser.error("--data is required (or use --quick)")
        t0 = time.perf_counter()
        data = cifarlab.load_dataset(args.data, progress=False)
        print(f"data loaded in {time.perf_counter() - t0:.1f}s: {data.source}")
        baseline_images = 600

    runs = [run_seed(args.preset, data, args.target, seed, overrides) for seed in range(args.seeds)]
    seed_ips = seed_recipe_images_per_s(data, baseline_images)
    cfg = cifarlab.load_config(args.preset, **overrides)
    n_train = min(len(data.train_labels) - cfg.data.val_size, cfg.data.max_train_images or len(data.train_labels))
    seed_projected = 20 * n_train / seed_ips

    print(f"machine: {machine()}")
    print(f"preset {args.preset}, target test accuracy {args.target:.2%}, {args.seeds} seed(s), data: {data.source}")
    print(f"{'seed':>4} {'reached':>7} {'epochs':>6} {'test acc':>8} {'train s':>8} {'eval s':>7} {'wall s':>7} "
          f"{'plain wall s':>12}")
    for r in runs:
        print(f"{r['seed']:>4} {str(r['reached']):>7} {r['epochs']:>6} {r['test_acc']:>8.2%} "
              f"{r['train_seconds']:>8.1f} {r['eval_seconds']:>7.1f} {r['wall_seconds']:>7.1f} "
              f"{r['plain_wall_seconds']:>12.1f}")
    for key, label in (("train_seconds", "train seconds to target"), ("wall_seconds", "wall seconds"),
                       ("plain_wall_seconds", "wall seconds of a plain `cifarlab train` (without the extra tests)"),
                       ("test_acc", "final test accuracy")):
        values = [r[key] for r in runs]
        fmt = (lambda v: f"{v:.2%}") if key == "test_acc" else (lambda v: f"{v:.1f}")
        print(f"{label}: mean {fmt(statistics.mean(values))}  min {fmt(min(values))}  max {fmt(max(values))}")
    reached = [r for r in runs if r["reached"]]
    print(f"seeds reaching the target: {len(reached)}/{len(runs)}")
    mean_wall = statistics.mean(r["wall_seconds"] for r in runs)
    print(f"baseline: seed recipe measured at {seed_ips:.1f} images/s here; its 20 epochs of {n_train:,} images "
          f"project to {seed_projected / 60:.1f} min")
    print(f"ratio seed-recipe projected time / {args.preset} mean wall time: {seed_projected / mean_wall:.1f}x")


if __name__ == "__main__":
    main()
