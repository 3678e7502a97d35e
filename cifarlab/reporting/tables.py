"""Formatting rows of runs as an aligned table, CSV, Markdown or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

_PERCENT = {"val acc", "test acc", "writeup acc"}


def _cell(row: dict[str, Any], column: str, spread: bool) -> str:
    value = row.get(column)
    if value is None:
        return "-"
    if column in _PERCENT:
        text = f"{value:.2%}"
        std = row.get(f"{column} std")
        return f"{text} ± {std:.2%}" if spread and std is not None else text
    if column == "lr":
        return f"{value:g}"
    if column == "params":
        return f"{value:,}"
    if column == "wall s":
        return f"{value:.1f}"
    return str(value)


def format_rows(rows: list[dict[str, Any]], columns: list[str], fmt: str = "table", spread: bool = False) -> str:
    """Render ``rows`` in ``fmt``: table, csv, markdown or json (raw values)."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        return buf.getvalue()
    cells = [[_cell(r, c, spread) for c in columns] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
