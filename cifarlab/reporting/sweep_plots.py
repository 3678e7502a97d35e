"""A sweep's pictures: accuracy per trial, accuracy against each swept setting, the best learning curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from cifarlab.errors import CifarlabError
from cifarlab.reporting.plots import plt, save_figure
from cifarlab.reporting.tables import is_at_chance
from cifarlab.rundir import RunDir


def _swept_values(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trial's own settings (from ``sweep.json``) and its resolved config (``config.yaml``)."""
    run = RunDir(row["run"])
    try:
        cfg = run.config().to_dict()
    except (OSError, CifarlabError):
        return {}, {}
    return run.sweep().get("overrides", {}), cfg


def _lookup(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return "default"  # e.g. a model argument that this trial leaves at the factory's default
        node = node[part]
    if isinstance(node, dict):
        return ",".join(f"{k}={v}" for k, v in node.items()) or "default"
    return node


def plot_trials(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation accuracy of every trial in plan order (the write-up's accuracies are in ``writeup.png``)."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(rows) + 2), 4.8))
    x = list(range(len(rows)))
    colors = ["tab:blue" if str(r["status"]).startswith("completed") else "tab:gray" for r in rows]
    ax.bar(x, [100 * (r["val acc"] or 0) for r in rows], color=colors, label="validation accuracy (ours)")
    if any(c == "tab:gray" for c in colors):
        ax.bar([], [], color="tab:gray", label="pruned, diverged or unfinished")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set(xlabel="trial", ylabel="accuracy (%)", title="Validation accuracy per trial")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def plot_parameters(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation accuracy against each setting the trials vary, one panel each (no file when none varies)."""
    resolved = [_swept_values(r) for r in rows]
    swept = {k for own, _ in resolved for k in own if k != "train.seed"}
    keys = [k for k in sorted(swept)
            if not any(k.startswith(parent + ".") for parent in swept)  # model.args covers model.args.dropout
            and len({str(_lookup(cfg, k)) for _, cfg in resolved if cfg}) > 1]  # a panel needs a spread
    if not keys:
        return
    cols, nrows = min(3, len(keys)), math.ceil(len(keys) / 3)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.8 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(_lookup(cfg, key), r["val acc"]) for (_, cfg), r in zip(resolved, rows)
                  if cfg and r["val acc"] is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in points)
        if numeric:
            values = [v for v, _ in points]
        else:  # categories in order of first appearance
            order = list(dict.fromkeys(str(v) for v, _ in points))
            values = [order.index(str(v)) for v, _ in points]
            ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
        ax.scatter(values, [100 * a for _, a in points], color="tab:blue")
        if numeric and values and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_xscale("log")
        elif numeric and all(isinstance(v, int) for v in values):  # epochs, batch sizes: no 1.25 ticks
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel=key, ylabel="validation accuracy (%)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.suptitle("Validation accuracy against each swept setting")
    fig.tight_layout(rect=(0, 0, 1, 0.96))  # keep the panels clear of the title
    save_figure(fig, path)


def plot_best_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation accuracy per epoch of the three best trials, overlaid."""
    best = sorted((r for r in rows if r["val acc"] is not None), key=lambda r: -r["val acc"])[:3]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in best:
        # A trial run on another machine has no metrics here: its curve stayed there.
        epochs = [r for r in RunDir(row["run"]).epochs() if r.get("val_acc") is not None]
        ax.plot([e["epoch"] for e in epochs], [100 * e["val_acc"] for e in epochs], marker="o",
                label=f"{row['label']} ({row['val acc']:.1%})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title=f"Learning curves of the best {len(best)} trials")
    ax.grid(alpha=0.3)
    if best:
        ax.legend()
    save_figure(fig, path)


def plot_at_chance(rows: list[dict[str, Any]], path: Path) -> None:
    """Training loss per epoch of the runs that ended at chance, beside chance's loss: stuck from the start, or
    learning too slowly for their epochs?"""
    stuck = [r for r in rows if is_at_chance(r)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in stuck:
        epochs = [e for e in RunDir(row["run"]).epochs() if e.get("train_loss") is not None]
        ax.plot([e["epoch"] for e in epochs], [e["train_loss"] for e in epochs], marker=".", label=row["label"])
    ax.axhline(math.log(10), color="grey", linestyle="--", linewidth=1, label="chance (ln 10)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="training loss", title=f"The {len(stuck)} run(s) that ended at chance")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def write_sweep_plots(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``plots/trials.png``, ``plots/parameters.png`` (when settings vary), ``plots/best_curves.png`` and
    ``plots/at_chance.png`` (when a run ended at chance)."""
    plots = Path(sweep_dir) / "plots"
    ordered = sorted(rows, key=lambda r: r.get("trial", 0))
    plot_trials(ordered, plots / "trials.png")
    plot_parameters(ordered, plots / "parameters.png")
    plot_best_curves(ordered, plots / "best_curves.png")
    if any(is_at_chance(r) for r in ordered):
        plot_at_chance(ordered, plots / "at_chance.png")
