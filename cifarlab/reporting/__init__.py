"""Reports of runs: the runs table (``runs``, ``tables``), a run's plots and a sweep's plots.

    rows = collect_runs("sweeps/seed-table")
    print(format_rows(sort_rows(rows, "val acc"), columns_for(rows), "markdown"))
"""

from cifarlab.reporting.runs import COLUMNS, collect_run, collect_runs, columns_for, sort_rows
from cifarlab.reporting.tables import FORMATS, format_rows

__all__ = ["COLUMNS", "FORMATS", "collect_run", "collect_runs", "columns_for", "format_rows", "sort_rows"]
