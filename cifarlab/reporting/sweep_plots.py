"""A sweep's pictures: accuracy per trial, accuracy against each swept setting, best learning curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cifarlab.reporting.plots import plt, save_figure


def _overrides(row: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads((Path(row["run"]) / "sweep.json").read_text()).get("overrides", {})
    except (OSError, ValueError):
        return {}


def plot_trials(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation accuracy of every trial (and the write-up's accuracy where known)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) + 2), 4.5))
    x = range(len(rows))
    ax.bar(x, [100 * (r["val acc"] or 0) for r in rows], color="tab:blue", label="validation (ours)")
    known = [(i, r["writeup acc"]) for i, r in enumerate(rows) if r.get("writeup acc") is not None]
    if known:
        ax.scatter([i for i, _ in known], [100 * a for _, a in known], marker="D", color="tab:red", zorder=3,
                   label="write-up (test)")
    ax.set_xticks(list(x), [r["label"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Validation accuracy per trial")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def plot_parameters(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation accuracy against each swept setting, one panel per setting."""
    overrides = [_overrides(r) for r in rows]
    keys = sorted({k for o in overrides for k in o if k != "train.seed"})
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        points = [(o[key], r["val acc"]) for o, r in zip(overrides, rows) if key in o and r["val acc"] is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in points)
        values = [v if numeric else str(v) for v, _ in points]
        ax.scatter(values, [100 * a for _, a in points])
        if numeric and values and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
    fig.suptitle("Accuracy against each swept setting")
    save_figure(fig, path)


def plot_best_curves(rows: list[dict[str, Any]], path: Path, top: int = 3) -> None:
    """Validation accuracy per epoch of the best ``top`` trials, overlaid."""
    best = sorted((r for r in rows if r["val acc"] is not None), key=lambda r: -r["val acc"])[:top]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in best:
        lines = (Path(row["run"]) / "metrics.jsonl").read_text().splitlines()
        epochs = [json.loads(line) for line in lines if '"type": "epoch"' in line]
        ax.plot([e["epoch"] for e in epochs], [100 * e["val_acc"] for e in epochs], marker="o", label=row["label"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"Learning curves of the best {len(best)} trials")
    ax.grid(alpha=0.3)
    if best:
        ax.legend()
    save_figure(fig, path)


def write_sweep_plots(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``plots/trials.png``, ``plots/parameters.png`` and ``plots/best_curves.png``."""
    plots = sweep_dir / "plots"
    ordered = sorted(rows, key=lambda r: r.get("trial", 0))
    plot_trials(ordered, plots / "trials.png")
    plot_parameters(ordered, plots / "parameters.png")
    plot_best_curves(ordered, plots / "best_curves.png")
