"""The run directory's pictures: loss per step, accuracy per epoch, confusion matrix, robustness to corruptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cifarlab.fileio import atomic_path  # noqa: E402
from cifarlab.rundir import RunDir  # noqa: E402


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """Write a figure atomically in the format ``path``'s suffix names (.png, .svg) and free it, written or not (a
    DiskError names ``path``)."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower(), dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)


def smooth(values: Sequence[float], weight: float) -> np.ndarray:
    """Debiased exponential moving average, the smoothing TensorBoard draws."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out


def plot_loss(records: list[dict[str, Any]], path: Path) -> None:
    """Loss per optimizer step, raw and smoothed, with epoch boundaries marked."""
    steps = [r for r in records if r.get("type") == "step"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if steps:
        x = [r["step"] for r in steps]
        y = [r["loss"] for r in steps]
        ax.plot(x, y, color="tab:blue", alpha=0.25, linewidth=0.8, label="per step")
        ax.plot(x, smooth(y, 0.98 if len(y) > 200 else 0.8), color="tab:blue", linewidth=2, label="smoothed")
        for r, after in zip(steps, steps[1:]):
            if after["epoch"] != r["epoch"]:
                ax.axvline(r["step"], color="grey", linewidth=0.5, linestyle=":")
        ax.legend()
    ax.set(xlabel="optimizer step (dotted lines: epoch ends)", ylabel="cross-entropy loss", title="Training loss")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_accuracy(records: list[dict[str, Any]], path: Path, test_acc: float | None = None) -> None:
    """Training and validation accuracy per epoch (and the final test accuracy)."""
    epochs = [r for r in records if r.get("type") == "epoch"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = [r["epoch"] for r in epochs]
    ax.plot(x, [100 * r["train_acc"] for r in epochs], marker="o", label="train (augmented batches)")
    if any(r.get("val_acc") is not None for r in epochs):
        ax.plot(x, [100 * r["val_acc"] if r.get("val_acc") is not None else np.nan for r in epochs],
                marker="o", label="validation")
    if test_acc is not None and x:
        ax.scatter([x[-1]], [100 * test_acc], marker="*", s=160, color="tab:red", zorder=3,
                   label=f"test (final): {test_acc:.2%}")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy per epoch")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_figure(fig, path)


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> None:
    """Heatmap of counts, rows true class, columns predicted, each row shaded by its share."""
    matrix = np.asarray(confusion)
    share = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if share[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (test set)")
    fig.colorbar(im, ax=ax, label="share of the true class")
    save_figure(fig, path)


def write_run_plots(run_dir: Path, records: list[dict[str, Any]], test_report) -> None:
    """Write ``plots/loss.png``, ``plots/accuracy.png`` and ``plots/confusion.png``."""
    plots = Path(run_dir) / RunDir.PLOTS
    plot_loss(records, plots / "loss.png")
    plot_accuracy(records, plots / "accuracy.png", test_acc=test_report.accuracy)
    plot_confusion(test_report.confusion, test_report.classes, plots / "confusion.png")


def plot_robustness(result: dict[str, Any], path: Path) -> None:
    """Plot a ``robustness.json`` record: severity 0 is the clean accuracy, the mean is drawn bold."""
    corruptions: dict[str, dict[str, float]] = result["corruptions"]
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.get_cmap("tab10")
    for i, (name, by_severity) in enumerate(corruptions.items()):
        severities = [0] + [int(s) for s in by_severity]
        ax.plot(severities, [100 * result["clean"]] + [100 * v for v in by_severity.values()],
                marker="o", markersize=3, linewidth=1, color=colours(i % 10),
                linestyle="-" if i < 10 else "--", label=name)
    first = next(iter(corruptions.values()), {})
    mean_per_severity = [100 * sum(t[s] for t in corruptions.values()) / len(corruptions) for s in first]
    ax.plot([0] + [int(s) for s in first], [100 * result["clean"]] + mean_per_severity, color="black",
            linewidth=3, label=f"mean: {result['mean']:.2%}")
    ax.set_xticks(range(0, 6), ["clean", "1", "2", "3", "4", "5"])
    ax.set(xlabel="severity", ylabel="test accuracy (%)",
           title=f"Accuracy under CIFAR-10-C-style corruptions (clean {result['clean']:.2%})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    save_figure(fig, Path(path))
