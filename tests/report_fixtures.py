"""Run and sweep directories written by hand through RunDir, for report tests that need no training.

``make_run`` writes what a run leaves behind at each stage: ``status="running"``
after some epochs, ``predictions=False`` for a run from before predictions were
saved. Predictions are right for about 80% of the images, with the confidence
of a somewhat over-confident model, so every section has something to draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cifarlab import config as config_mod
from cifarlab.rundir import RunDir


def make_run(path: Path, data: Path, *, status: str = "completed", predictions: bool = True, epochs: int = 3,
             seed: int = 0, lr: float = 1e-3, test_per_class: int = 10, sweep: dict[str, Any] | None = None,
             **summary_extra: Any) -> RunDir:
    """A run directory at ``path`` trained (supposedly) on the ImageFolder ``data``."""
    rng = np.random.default_rng(seed)
    run = RunDir(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = config_mod.load("seed", data__path=str(data), train__epochs=epochs, train__seed=seed, optim__lr=lr,
                          data__val_size=50)
    run.write_config(cfg)
    run.write_env({"python": "3.x", "torch": torch.__version__, "device": "cpu"})
    if sweep is not None:
        run.write_sweep(sweep)
    done = epochs if status == "completed" else max(1, epochs - 1)
    step = 0
    for epoch in range(1, done + 1):
        steps = []
        for _ in range(8):
            step += 1
            steps.append({"type": "step", "epoch": epoch, "step": step, "loss": float(2.3 / (1 + 0.1 * step))})
        val = 0.5 + 0.1 * epoch + 0.01 * seed
        run.append_metrics(steps + [{"type": "epoch", "epoch": epoch, "train_loss": 1.0 / epoch,
                                     "train_acc": 0.4 + 0.1 * epoch, "val_loss": 1.0, "val_acc": val,
                                     "test_acc": None, "lr": lr, "seconds": 1.0, "images_per_s": 100.0}])
    labels = np.repeat(np.arange(10), test_per_class)
    n = len(labels)
    predicted = np.where(rng.random(n) < 0.8, labels, rng.integers(0, 10, n))
    probs = rng.dirichlet(np.full(10, 0.3), n).astype(np.float32) * 0.3
    probs[np.arange(n), predicted] += 0.7
    test_acc = float((predicted == labels).mean())
    if predictions and status == "completed":
        run.write_predictions(torch.arange(n), torch.from_numpy(labels), torch.from_numpy(probs))
    summary = {"status": status, "preset": "seed", "model": "seed", "params": 1234,
               "arch": {"conv": 3, "fc": 2, "activation": "ReLU", "normalization": "BN", "params": 1234,
                        "macs": 56789},
               "epochs": epochs, "epochs_completed": done, "val_acc": 0.5 + 0.1 * done + 0.01 * seed,
               "best_val_acc": 0.5 + 0.1 * done + 0.01 * seed, "best_epoch": done,
               "test_acc": test_acc if status == "completed" else None, "train_seconds": 12.5,
               "wall_seconds": 20.0, "train_images": 250, "test_images": n, "device": "cpu", "precision": "fp32",
               "seed": seed, "data": f"ImageFolder tree {data}", "updated_at": "2026-01-01T00:00:00"}
    run.write_summary({**summary, **summary_extra})
    return run


def make_sweep(root: Path, data: Path, *, writeup: bool = True) -> Path:
    """A finished sweep folder: two learning rates, each with two seeds, as ``trials/<slot>-<label>``."""
    (root / "plan.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "plan.yaml").write_text("name: tiny\n")
    slot = 0
    for lr, writeup_acc in ((1e-3, 0.71), (1e-2, 0.64)):
        for seed in (0, 1):
            label = f"lr={lr:g},seed={seed}"
            make_run(root / "trials" / f"{slot:04d}-{label}", data, seed=seed, lr=lr, sweep={
                "sweep": "tiny", "label": label, "group": f"lr={lr:g}",
                "overrides": {"optim.lr": lr, "train.seed": seed},
                "writeup_accuracy": writeup_acc if writeup else None})
            slot += 1
    return root
