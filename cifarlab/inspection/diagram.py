"""A picture of the layer chain: one box per leaf layer, output shapes on the arrows (PNG or SVG).

Declarative residual blocks get their identity path drawn beside the chain,
ending in a "+" where it is added back; layers with an error finding have a red
outline. Drawn with matplotlib, so no graphviz binary is needed.
"""

from __future__ import annotations

from pathlib import Path

from cifarlab.errors import ModelError
from cifarlab.formatting import fmt_shape

_COLORS = {"Conv": "#9ecae1", "Linear": "#fdae6b", "BatchNorm": "#c7e9c0", "Pool": "#dadaeb",
           "Dropout": "#eeeeee", "Flatten": "#eeeeee"}


def _color(kind: str) -> str:
    return next((color for key, color in _COLORS.items() if key in kind), "#fff7bc")  # activations and the rest


def _draw_skip(ax, pos, block: str, first: int, last: int, per_column: int) -> None:
    """The identity path of a residual block: from above its first layer to a "+" below its last."""
    (x, top), (_, bottom) = pos(first), pos(last)
    if first // per_column != last // per_column:  # split across columns: label the merge only
        top = bottom
    y0, y1, lane = top + 0.32, bottom - 0.32, x + 3.0
    ax.plot([x + 1.4, lane, lane], [y0, y0, y1], color="#2b6", lw=0.9)
    ax.annotate("", xy=(x + 1.48, y1), xytext=(lane, y1), arrowprops={"arrowstyle": "->", "color": "#2b6", "lw": 0.9})
    ax.text(x + 1.4, y1, "+", ha="center", va="center", fontsize=7, color="#2b6", fontweight="bold",
            bbox={"boxstyle": "circle,pad=0.1", "facecolor": "white", "edgecolor": "#2b6", "lw": 0.9})
    ax.text(lane + 0.08, (y0 + y1) / 2, block, rotation=90, ha="left", va="center", fontsize=6, color="#2b6")


def draw_diagram(report, path: str | Path, per_column: int = 24) -> Path:
    """Draw ``report`` (an :class:`InspectReport`) to ``path``; the format follows the extension."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ModelError(f"{path}: diagram must be a .png or .svg file")
    from matplotlib.patches import FancyBboxPatch

    from cifarlab.reporting.plots import plt, save_figure

    rows = report.rows
    ncol = max(1, -(-len(rows) // per_column))
    nrow = min(len(rows), per_column) + 1
    fig, ax = plt.subplots(figsize=(3.6 * ncol, 0.55 * nrow + 0.6))
    ax.set(xlim=(0, 3.6 * ncol), ylim=(-nrow, 1))
    ax.axis("off")
    ax.set_title(f"{report.model_name}: {report.params:,} params, {report.macs / 1e6:.1f} M MACs", fontsize=9)
    bad = {f.layer for f in report.errors}

    def pos(i: int) -> tuple[float, float]:
        return 3.6 * (i // per_column) + 0.3, -(i % per_column) - 0.5

    ax.text(pos(0)[0] + 1.4, 0.25, f"input {fmt_shape(report.input_shape)}", ha="center", va="center", fontsize=7)
    for i, r in enumerate(rows):
        x, y = pos(i)
        ax.add_patch(FancyBboxPatch((x, y - 0.18), 2.8, 0.36, boxstyle="round,pad=0.02", facecolor=_color(r.type),
                                    edgecolor="#c00" if r.name in bad else "#444"))
        ax.text(x + 1.4, y, f"{r.name}  ({r.type})", ha="center", va="center", fontsize=7)
        if i + 1 < len(rows) and (i + 1) % per_column:
            ax.annotate("", xy=(x + 1.4, y - 0.82), xytext=(x + 1.4, y - 0.18),
                        arrowprops={"arrowstyle": "->", "color": "#444", "lw": 0.8})
        ax.text(x + 1.5, y - 0.5, fmt_shape(r.output_shape), ha="left", va="center", fontsize=6, color="#333")
    for block, first, last in report.residuals:
        _draw_skip(ax, pos, block, first, last, per_column)
    save_figure(fig, path)
    return path
