"""The write-up's accuracies beside ours: a table and a plot, for comparison only.

The write-up chose its rows on the test set (it had no validation split), so its
numbers are test accuracies picked on the test set. cifarlab ranks on
validation accuracy; here, apart from that ranking, each row's write-up
accuracy is put beside cifarlab's *test* accuracy for the same row, the only
like-for-like number, and labelled so that nobody selects on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cifarlab.reporting.plots import plt, save_figure
from cifarlab.reporting.tables import format_rows

NOTE = "for comparison with the write-up, not for selection (the write-up picked its rows on the test set)"
COLUMNS = ["label", "writeup acc", "test acc", "difference"]


def comparison_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that carry a write-up accuracy, in plan order, with ``difference`` = ours (test) - the write-up's."""
    known = sorted((r for r in rows if r.get("writeup acc") is not None), key=lambda r: r.get("trial", 0))
    return [{"label": r["label"], "writeup acc": r["writeup acc"], "test acc": r.get("test acc"),
             "difference": None if r.get("test acc") is None else r["test acc"] - r["writeup acc"],
             "run": r.get("run")} for r in known]


def format_comparison(rows: list[dict[str, Any]], fmt: str = "table") -> str:
    """The comparison table of :func:`comparison_rows`, headed by its note; ``""`` when no row has one."""
    compared = comparison_rows(rows)
    if not compared:
        return ""
    table = format_rows(compared, COLUMNS, fmt)
    return table if fmt in ("csv", "json") else f"Beside the write-up, {NOTE}:\n\n{table}"


def plot_comparison(rows: list[dict[str, Any]], path: Path) -> bool:
    """One point per row: the write-up's accuracy against ours (test), with the diagonal; False if nothing to plot."""
    points = [r for r in comparison_rows(rows) if r["test acc"] is not None]
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    xs = [100 * r["writeup acc"] for r in points]
    ys = [100 * r["test acc"] for r in points]
    lo, hi = max(0.0, min(xs + ys) - 5), min(100.0, max(xs + ys) + 5)
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="same accuracy")
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    # Rows often land on or near the same point (e.g. at chance): one short label per whole-percent
    # point, naming each row by its label's first part (r01-12x4 -> r01).
    names: dict[tuple[float, float], list[str]] = {}
    for r, x, y in zip(points, xs, ys):
        names.setdefault((round(x), round(y)), []).append(r["label"].split("-")[0])
    for i, ((x, y), labels) in enumerate(sorted(names.items())):  # neighbours alternate above and below
        ax.annotate(", ".join(labels), (x, y), textcoords="offset points", xytext=(3, 5 if i % 2 else -11),
                    fontsize=7)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", xlabel="write-up's test accuracy (%)",
           ylabel="cifarlab's test accuracy, same row (%)")
    ax.set_title("Beside the write-up: for comparison, not for selection", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)
    return True
