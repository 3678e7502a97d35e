"""The HTML page: sections, tables, inline images and the sortable-table script, in one self-contained file.

Nothing on the page is fetched: styles and script are inline, pictures are
base64 PNG ``data:`` URLs. Styles are scoped under ``.cl-report`` so that the
same fragment renders inside a Jupyter notebook without restyling it.
"""

from __future__ import annotations

import base64
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from cifarlab.errors import first_line
from cifarlab.formatting import esc

_STYLE = """
.cl-report { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; max-width: 1100px;
  margin: 0 auto; padding: 0 16px 40px; line-height: 1.45; }
.cl-report h1 { font-size: 1.6em; margin: 0.8em 0 0.1em; }
.cl-report h2 { font-size: 1.2em; margin: 1.6em 0 0.5em; border-bottom: 1px solid #d5d9e0; padding-bottom: 4px; }
.cl-report .sub { color: #5a6270; margin: 0 0 1em; }
.cl-report table { border-collapse: collapse; margin: 0.4em 0 0.8em; font-size: 0.88em; }
.cl-report th, .cl-report td { border: 1px solid #d5d9e0; padding: 3px 8px; text-align: left; vertical-align: top; }
.cl-report th { background: #eef1f5; }
.cl-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cl-report .wide { overflow-x: auto; max-width: 100%; }
.cl-report table.sortable th { cursor: pointer; user-select: none; }
.cl-report table.sortable th[data-dir="asc"]::after { content: " \\25B2"; }
.cl-report table.sortable th[data-dir="desc"]::after { content: " \\25BC"; }
.cl-report .note { background: #fff6dd; border-left: 4px solid #e0b030; padding: 6px 10px; margin: 0.5em 0; }
.cl-report .big { font-size: 1.5em; font-weight: 600; }
.cl-report img.plot { max-width: 100%; height: auto; }
.cl-report .pair { display: flex; flex-wrap: wrap; gap: 8px; }
.cl-report .pair img.plot { width: calc(50% - 4px); min-width: 380px; }
.cl-report img.narrow { max-width: 640px; }
.cl-report .gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.cl-report figure { margin: 0; width: 112px; font-size: 0.78em; text-align: center; }
.cl-report figure img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; }
.cl-report pre { background: #f5f7fa; padding: 8px 10px; overflow-x: auto; font-size: 0.82em; }
.cl-report details { margin: 0.4em 0; }
"""

# Click a header to sort by that column; click again to reverse. Cells may carry
# the value to sort by in data-sort (numbers as numbers); empty values sort last.
_SCRIPT = """
(function () {
  document.querySelectorAll(".cl-report table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var dir = th.dataset.dir === "asc" ? "desc" : "asc";
        table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
        th.dataset.dir = dir;
        var body = table.tBodies[0], rows = Array.from(body.rows);
        var key = function (tr) {
          var c = tr.cells[col], v = c.dataset.sort !== undefined ? c.dataset.sort : c.textContent.trim();
          return v === "" || v === "-" ? null : (isNaN(Number(v)) ? v : Number(v));
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (x === null || y === null) return (x === null) - (y === null);
          var d = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
          return dir === "asc" ? d : -d;
        });
        rows.forEach(function (tr) { body.appendChild(tr); });
      });
    });
  });
})();
"""


def facts(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of ``name: value`` lines, values escaped."""
    rows = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f"<table><tbody>\n{rows}\n</tbody></table>"


def note(text: str) -> str:
    """A highlighted line saying what is missing or how to read what follows."""
    return f'<p class="note">{esc(text)}</p>'


def pre(text: str) -> str:
    """Preformatted text (config files, environment)."""
    return f"<pre>{esc(text)}</pre>"


def png_img(data: bytes, alt: str, css_class: str = "plot") -> str:
    """An ``<img>`` holding the PNG ``data`` inline."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="{css_class}" alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def plotted(plot: Callable[..., None], *args: Any, **kwargs: Any) -> bytes | None:
    """The PNG a file-writing plot of :mod:`cifarlab.reporting`, ``plot(*args, path, **kwargs)``, draws, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "plot.png"
        plot(*args, target, **kwargs)
        return target.read_bytes() if target.is_file() else None


def section(title: str, body: str) -> str:
    """One titled part of a report, around the HTML ``body``."""
    anchor = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def guarded(title: str, build: Callable[..., str], *args: Any) -> str:
    """The section ``build(*args)`` draws; should it fail, one that says so, and a warning.

    A report is most wanted when a run went wrong, so no single section may take the page down with it.
    """
    try:
        return section(title, build(*args))
    except Exception as exc:  # noqa: BLE001 - any failure of one section leaves the others standing
        problem = f"{type(exc).__name__}: {first_line(exc)}"
        warnings.warn(f"report section {title!r} could not be drawn: {problem}", stacklevel=2)
        return section(title, note(f"This section could not be drawn: {problem}"))


def fragment(title: str, subtitle: str, sections: Sequence[str]) -> str:
    """The report without ``<html>``/``<head>``, what a notebook shows inline, around its sections' HTML."""
    body = "\n".join(sections)
    return (f"<style>{_STYLE}</style>\n<div class=\"cl-report\">\n<h1>{esc(title)}</h1>\n"
            f"<p class=\"sub\">{esc(subtitle)}</p>\n{body}\n</div>\n<script>{_SCRIPT}</script>")


def document(title: str, inner: str) -> str:
    """A complete HTML page around a :func:`fragment`."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"  # no favicon request: the page fetches nothing
            f"<title>{esc(title)}</title>\n</head>\n<body>\n{inner}\n</body>\n</html>\n")
