"""Self-contained HTML reports of a run, a sweep or a folder of runs.

    rep = report("runs/fast-cpu-20260101-120000")
    rep.save("report.html")     # one file: pictures inline, no network needed to open it
    rep                         # in Jupyter: shown inline

``run`` draws a run's page, ``sweep`` a sweep's or folder's, ``page`` holds
the HTML pieces both are made of.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifarlab.errors import ConfigError
from cifarlab.fileio import write_text
from cifarlab.reporting.html.page import document, fragment
from cifarlab.rundir import RunDir


@dataclass
class Report:
    """A report page: ``html`` is the whole file, ``fragment`` what a notebook shows inline."""

    title: str
    fragment: str
    source: Path

    @property
    def html(self) -> str:
        """The complete, self-contained HTML page."""
        return document(self.title, self.fragment)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the page (atomically) to ``path``, default ``report.html`` in the reported folder."""
        target = Path(path) if path is not None else self.source / RunDir.REPORT
        write_text(target, self.html)
        return target

    def _repr_html_(self) -> str:
        return self.fragment


def report(path: str | Path, *, rows: list[dict[str, Any]] | None = None) -> Report:
    """The report of ``path``: a run directory, or a sweep or other folder holding runs.

    Missing pieces (a run still training, without test predictions, a folder
    without runs) are stated on the page; only a path that is not a folder is
    an error. ``rows`` (runs-table rows) replace the runs found under a folder:
    a sweep passes its own, whose trials may live elsewhere (``--artifacts``).
    """
    from cifarlab.reporting.html.run import run_sections
    from cifarlab.reporting.html.sweep import sweep_sections

    path = Path(path)
    if path.is_file():
        raise ConfigError(f"{path}: a file; give the run directory it belongs to, a sweep or a folder of runs")
    if not path.is_dir():
        raise ConfigError(f"{path}: no such run directory, sweep or folder of runs")
    if RunDir(path).exists():
        title, subtitle, sections = run_sections(path)
    else:
        title, subtitle, sections = sweep_sections(path, rows)
    return Report(title, fragment(title, subtitle, sections), path)


def write_report_safely(path: str | Path, *, rows: list[dict[str, Any]] | None = None) -> Path | None:
    """Write ``report.html`` into ``path``; a failure is a warning, never the end of the run or sweep."""
    try:
        return report(path, rows=rows).save()
    except Exception as exc:  # noqa: BLE001 - the run's results are already saved; the page is a bonus
        warnings.warn(f"{path}: report.html not written: {type(exc).__name__}: {exc}", stacklevel=2)
        return None
