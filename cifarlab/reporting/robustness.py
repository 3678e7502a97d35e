"""The robustness picture: accuracy against corruption severity, one line per corruption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cifarlab.reporting.plots import plt, save_figure


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
