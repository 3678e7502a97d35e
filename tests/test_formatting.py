"""The one way cifarlab writes durations, percentages and tables: expected texts written out by hand."""

from __future__ import annotations

import math

import pytest

from cifarlab.formatting import Cell, cell, duration, fmt_shape, html_table, percent, text_table


@pytest.mark.parametrize("seconds, text", [
    (0.04, "0.0 s"), (4.5, "4.5 s"), (9.96, "10 s"), (40, "40 s"), (59.4, "59 s"), (59.6, "1 min 00 s"),
    (75, "1 min 15 s"), (600, "10 min 00 s"), (3599, "59 min 59 s"), (3600, "1 h 00 min"), (7500, "2 h 05 min"),
    (None, "-"), (math.nan, "-"), ("75", "-"), (True, "-")])
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("value, digits, text", [
    (0.8446, 2, "84.46%"), (1, 2, "100.00%"), (0.12345, 1, "12.3%"), (0, 2, "0.00%"),
    (None, 2, "-"), (math.nan, 2, "-"), (False, 2, "-")])
def test_percent(value, digits, text):
    assert percent(value, digits) == text


def test_shape():
    assert fmt_shape((512, 2, 2)) == "512x2x2" and fmt_shape(None) == "?"


def test_text_table_aligns_left_and_right_under_a_rule_and_trims_the_line_ends():
    lines = text_table(["name", "n", "note"], [["a", "5", ""], ["long", "123", "x"]], right={1})
    assert lines == ["name    n  note",
                     "----  ---  ----",
                     "a       5",
                     "long  123  x"]


def test_html_table_escapes_text_keeps_cells_and_marks_sort_values():
    page = html_table(["a<b", "n"], [["<i>", cell(0.5, "50%")], [Cell("<b>x</b>"), cell(None)]], sortable=True,
                      table_id="t")
    assert page == ('<div class="wide"><table class="sortable" id="t"><thead><tr><th>a&lt;b</th><th>n</th></tr>'
                    '</thead>\n<tbody>\n<tr><td>&lt;i&gt;</td><td class="num" data-sort="0.5">50%</td></tr>\n'
                    '<tr><td><b>x</b></td><td data-sort="">-</td></tr>\n</tbody></table></div>')
