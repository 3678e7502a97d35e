"""The report of a sweep or of any folder of runs: the runs table, accuracy against settings, the best curves.

A sweep ranks its trials on validation accuracy; test accuracy appears once,
for the best trial, as the sweep's own summary states it. A plain folder of
runs is no selection, so its table shows test accuracy beside the rest.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cifarlab.formatting import Cell, cell, esc, html_table
from cifarlab.reporting.html.page import guarded, note, plotted, png_img, section
from cifarlab.reporting.runs import (CHANCE_TEST, aggregate_repeats, best_row, collect_runs, columns_for,
                                     describe_best, is_repeated, loss_trend, sort_rows)
from cifarlab.reporting.sweep_plots import plot_at_chance, plot_best_curves, plot_parameters, plot_trials
from cifarlab.reporting.tables import ACCURACIES, cell_text, is_at_chance, legend
from cifarlab.reporting.writeup import (COLUMNS as WRITEUP_COLUMNS, NOTE, PAIR_COLUMNS, PAIRS_INTRO, agreement,
                                        agreement_lines, comparison_rows, pair_cells, plot_comparison)
from cifarlab.rundir import RunDir


@dataclass
class RunsView:
    """The rows of every run under a folder, and whether the folder is a sweep."""

    root: Path
    rows: list[dict[str, Any]]
    is_sweep: bool

    @classmethod
    def read(cls, root: str | Path, rows: list[dict[str, Any]] | None = None) -> "RunsView":
        """The runs under ``root`` (or ``rows``); a sweep is a folder with a plan, or whose runs are sweep trials."""
        root = Path(root)
        # Copies: the caller's rows (a sweep's own, which it goes on using) stay as they were.
        rows = [dict(row) for row in (collect_runs(root) if rows is None else rows)]
        for slot, row in enumerate(rows):  # trial folders are named by slot, so path order is plan order
            row.setdefault("trial", slot)
        planned = (root / "plan.yaml").is_file() or (root / RunDir.SWEEP).is_file()
        return cls(root, rows, planned or any((Path(r["run"]) / RunDir.SWEEP).is_file() for r in rows))


def _cells(row: dict[str, Any], columns: list[str]) -> list[Cell | str]:
    """``row``'s cells as the runs table formats them (%, ± std, durations); numbers sort as numbers."""
    numeric = ACCURACIES + ("wall time",)
    return [cell(row.get(c), cell_text(row, c)) if c in numeric or isinstance(row.get(c), (int, float))
            else cell_text(row, c) for c in columns]


def _report_link(view: RunsView, row: dict[str, Any]) -> Cell:
    report = Path(row["run"]) / RunDir.REPORT
    if not report.is_file():
        return Cell("-")
    href = os.path.relpath(report, view.root)
    return Cell(f'<a href="{esc(Path(href).as_posix())}">report</a>')


def overview(view: RunsView) -> str:
    """How many runs in which state, and the best one with its test accuracy, stated once."""
    # "completed, at chance" counts as completed here; the note below and its own section say it did not learn
    statuses = Counter(str(row.get("status")).removesuffix(", at chance") for row in view.rows)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    chance = sum(is_at_chance(row) for row in view.rows)
    kind = "trials" if view.is_sweep else "runs"
    best = "<br>".join(esc(line) for line in describe_best(best_row(view.rows)).splitlines())
    unfinished = sum(n for s, n in statuses.items() if not s.startswith("completed"))
    warning = note(f"{unfinished} of the {len(view.rows)} {kind} did not complete (still running, pruned, "
                   "diverged or died): they are listed, but only completed ones can be the best.") if unfinished else ""
    if chance:
        warning += note(f"{chance} of them completed at chance: they did not learn (their section is below).")
    return (f"<p>{len(view.rows)} {kind} ({counts}) under {esc(view.root.resolve())}.</p>{warning}"
            f"<p><b>{best}</b></p>")


def runs_table(view: RunsView) -> str:
    """Every run, one row each, sortable by clicking a column header."""
    columns = columns_for(view.rows, test=not view.is_sweep)
    rows = [_cells(r, columns) + [_report_link(view, r)] for r in sort_rows(view.rows)]
    intro = ("<p>Ranked on validation accuracy; click a column header to sort by it. "
             + ("Test accuracy is left out: it is reported once, for the best trial, above.</p>"
                if view.is_sweep else "</p>"))
    return intro + html_table(columns + ["report"], rows, sortable=True, table_id="runs-table")


def repeats(view: RunsView) -> str:
    """Mean ± standard deviation over seeds for each configuration that was repeated."""
    if not is_repeated(view.rows):
        return "<p>No configuration was run with more than one seed.</p>"
    groups = sort_rows(aggregate_repeats(view.rows))
    columns = ["label", "seed", "val acc"] + ([] if view.is_sweep else ["test acc"]) + ["wall time", "status"]
    return html_table(columns, [_cells(r, columns) for r in groups], sortable=True) + f"<p>{esc(legend(groups))}</p>"


def settings(view: RunsView) -> str:
    """Validation accuracy against each setting the runs vary."""
    png = plotted(plot_parameters, view.rows)
    return png_img(png, "validation accuracy against each swept setting") if png else \
        "<p>No setting varies across these runs (apart from the seed).</p>"


def per_trial(view: RunsView) -> str:
    """Validation accuracy of every run, in plan order."""
    return png_img(plotted(plot_trials, view.rows), "validation accuracy per trial")


def best_curves(view: RunsView) -> str:
    """Validation accuracy per epoch of the best runs."""
    if not any(r.get("val acc") is not None for r in view.rows):
        return note("No run has a validation accuracy yet.")
    return png_img(plotted(plot_best_curves, view.rows), "learning curves of the best trials")


def writeup_comparison(view: RunsView) -> str:
    """The write-up's accuracy beside our test accuracy, row by row: context, never a ranking."""
    rows = [_cells(r, WRITEUP_COLUMNS) for r in comparison_rows(view.rows)]
    png = plotted(plot_comparison, view.rows)
    return (note(f"Test accuracies, {NOTE}.")
            + html_table(["label", "write-up accuracy", "our test accuracy (same row)", "difference"], rows,
                         sortable=True)
            + (png_img(png, "write-up accuracy beside our test accuracy", "plot narrow") if png else ""))


def at_chance(view: RunsView) -> str:
    """The runs that ended at chance, and their training loss per epoch: they did not learn."""
    stuck = [r for r in sort_rows(view.rows, "label") if is_at_chance(r)]
    rows = [[r["label"], cell(r["val acc"], cell_text(r, "val acc")), loss_trend(r["run"])] for r in stuck]
    return (note(f"{CHANCE_TEST}: these runs did not learn, and their accuracy is no result.")
            + html_table(["label", "val acc", "training"], rows)
            + png_img(plotted(plot_at_chance, view.rows), "training loss of the runs at chance"))


def writeup_agreement(view: RunsView) -> str:
    """Rank agreement with the write-up and its one-factor comparisons: context, never a selection."""
    found = agreement(view.rows)
    if found is None:
        return note("Fewer than three rows have both a write-up accuracy and a test accuracy.")
    lines = "".join(f"<li>{esc(line)}</li>" for line in agreement_lines(found))
    pairs = html_table(PAIR_COLUMNS, [pair_cells(p) for p in found["pairs"]]) if found["pairs"] else ""
    return (note(f"Test accuracies, {NOTE}.") + f"<ul>{lines}</ul>"
            + (f"<p>{esc(PAIRS_INTRO)}:</p>{pairs}" if pairs else ""))


def sweep_sections(path: str | Path, rows: list[dict[str, Any]] | None = None) -> tuple[str, str, list[str]]:
    """Title, subtitle and sections of the report of the sweep or folder of runs at ``path`` (or of ``rows``)."""
    view = RunsView.read(path, rows)
    name = view.root.resolve().name
    title = f"Sweep {name}" if view.is_sweep else f"Runs in {name}"
    subtitle = f"Folder {view.root.resolve()}"
    if not view.rows:
        return title, subtitle, [section("No runs", note(
            f"No run directories (with {RunDir.CONFIG} and {RunDir.SUMMARY}) under {view.root}: nothing to report "
            "yet. A sweep's trials appear here once they have started training."))]
    parts: list[tuple[str, Callable[[RunsView], str]]] = [
        ("Overview", overview),
        ("Runs", runs_table),
        ("Repeats: mean ± std over seeds", repeats),
        ("Validation accuracy against each swept setting", settings),
        ("Validation accuracy per trial", per_trial),
        ("Learning curves of the best trials", best_curves),
    ]
    if any(is_at_chance(r) for r in view.rows):
        parts.append(("Runs that did not learn", at_chance))
    if any(r.get("writeup acc") is not None for r in view.rows):
        parts.append(("Beside the write-up (test accuracy)", writeup_comparison))
        parts.append(("Agreement with the write-up", writeup_agreement))
    return title, subtitle, [guarded(t, build, view) for t, build in parts]
