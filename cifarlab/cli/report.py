"""``cifarlab report``: one self-contained HTML page for a run, a sweep or a folder of runs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``report`` sub-command."""
    p = sub.add_parser("report", help="write an HTML report of a run, a sweep or a folder of runs",
                       description="Write one self-contained HTML file (pictures inline, opens from disk without "
                                   "network): for a run its curves, test accuracy with a 95% interval, per-class "
                                   "scores, confusion matrix, calibration, most confident mistakes, robustness, "
                                   "config and environment; for a sweep or folder the sortable runs table, "
                                   "accuracy against each setting and the best learning curves.")
    p.add_argument("path", metavar="RUN_DIR|SWEEP_DIR|RUNS_DIR", help="what to report on")
    p.add_argument("--out", metavar="FILE", help="where to write the page (default PATH/report.html)")


def run(args: argparse.Namespace) -> int:
    """Build the page and write it."""
    import sys
    import warnings

    from cifarlab.reporting.html import report

    with warnings.catch_warnings(record=True) as caught:  # skipped log lines, sections that failed
        warnings.simplefilter("always")
        page = report(args.path)
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"cifarlab report: warning: {message}", file=sys.stderr)
    print(f"report written to {page.save(args.out)}")
    return 0
