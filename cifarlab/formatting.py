"""How numbers, shapes and tables read in cifarlab's output: one way each, in the terminal, in files and in HTML."""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def fmt_shape(shape: Sequence[int] | None) -> str:
    """``(512, 2, 2)`` -> ``"512x2x2"``; ``None`` (a shape never reached) -> ``"?"``."""
    return "x".join(str(s) for s in shape) if shape is not None else "?"


def duration(seconds: Any) -> str:
    """``"4.5 s"``, ``"40 s"``, ``"1 min 15 s"``, ``"2 h 05 min"``; ``"-"`` for no number."""
    if not _number(seconds):
        return "-"
    if seconds < 9.95:  # a tenth of a second still matters for a tiny run
        return f"{max(0.0, seconds):.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def percent(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage, ``0.8446`` -> ``"84.46%"``; ``"-"`` for no number."""
    return f"{value:.{digits}%}" if _number(value) else "-"


def text_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, right: Collection[int] = ()) -> list[str]:
    """Aligned lines: the header, a rule of dashes, the rows; columns two spaces apart, those in ``right``
    right-aligned (numbers), trailing blanks trimmed."""
    grid = [list(header), *(list(r) for r in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(header))]
    grid.insert(1, ["-" * w for w in widths])

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(cells).rstrip() for cells in grid]


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value), quote=True)


@dataclass
class Cell:
    """A table cell: ``html`` shown, ``sort`` (optional) the value the table sorts it by, ``num`` right-aligned."""

    html: str
    sort: Any = None
    num: bool = False


def cell(value: Any, text: str | None = None) -> Cell:
    """A cell showing ``text`` (default: ``value``) and sorting by ``value``; numbers are right-aligned."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    shown = "-" if value is None and text is None else (text if text is not None else str(value))
    return Cell(esc(shown), "" if value is None else value, numeric)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[Cell | str]], *, sortable: bool = False,
               table_id: str | None = None) -> str:
    """An HTML table; plain strings in ``rows`` are escaped, :class:`Cell` keeps its HTML."""
    def td(c: Cell | str) -> str:
        if not isinstance(c, Cell):
            c = Cell(esc(c))
        attrs = ' class="num"' if c.num else ""
        if sortable and c.sort is not None:
            attrs += f' data-sort="{esc(c.sort)}"'
        return f"<td{attrs}>{c.html}</td>"

    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(td(c) for c in row) + "</tr>" for row in rows)
    attrs = (' class="sortable"' if sortable else "") + (f' id="{esc(table_id)}"' if table_id else "")
    # A wide table scrolls on its own instead of widening the page.
    return f'<div class="wide"><table{attrs}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>'
