"""Rows of runs as an aligned text table, CSV, Markdown or JSON.

Text and Markdown are for reading (percentages, ``mean ± std`` for repeated
configurations, ``≈`` for results within the spread of the best); CSV and JSON
keep the raw values (fractions, seconds) for other tools.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from cifarlab.formatting import duration, percent, text_table

FORMATS = ("table", "csv", "markdown", "json")
ACCURACIES = ("val acc", "test acc", "writeup acc")
WITHIN_SPREAD = "≈"


def is_at_chance(row: dict[str, Any]) -> bool:
    """True for a row whose run completed at chance (``reporting.runs.at_chance``)."""
    return "at chance" in str(row.get("status"))


def cell_text(row: dict[str, Any], column: str) -> str:
    """``row``'s ``column`` as the text and Markdown tables show it."""
    value = row.get(column)
    if value is None:
        return "-"
    std = row.get(f"{column} std")
    if column in ACCURACIES:
        text = percent(value) + (f" ± {percent(std)}" if std is not None else "")
        return f"{WITHIN_SPREAD} {text}" if column == "val acc" and row.get("within spread") else text
    if column == "difference":  # of two accuracies: percentage points
        return f"{100 * value:+.2f} pp"
    if column == "wall time":
        return duration(value) + (f" ± {duration(std)}" if std is not None else "")
    if column == "lr":
        return f"{value:.3g}"
    if column == "params":
        return f"{value:,}"
    return str(value)


def format_rows(rows: list[dict[str, Any]], columns: list[str], fmt: str = "table") -> str:
    """Render ``rows`` as ``fmt`` (table, csv, markdown or json) with these columns, in this order."""
    if fmt == "json":
        return json.dumps([{c: r.get(c) for c in columns + [k for k in ("run", "runs") if k in r]} for r in rows],
                          indent=2, ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if r.get(c) is None else r.get(c) for c in columns] for r in rows)
        return buf.getvalue()
    cells = [[cell_text(r, c) for c in columns] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(v.replace("|", "\\|") for v in line) + " |" for line in [columns, *cells]]
        return "\n".join([lines[0], "|" + "---|" * len(columns), *lines[1:]])
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    return "\n".join(text_table(columns, cells))


def legend(rows: list[dict[str, Any]]) -> str:
    """A line explaining the marks in ``rows``' cells, or ``""`` when there are none."""
    if not any("val acc std" in r for r in rows):
        return ""
    return (f"mean ± standard deviation over seeds; {WITHIN_SPREAD}: below the best configuration by no more than "
            "the larger of the two spreads, so not distinguishable from it with these seeds")
