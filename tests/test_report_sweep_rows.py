"""The sweep report leaves the rows its caller passed as they were: the sweep goes on using them."""

from __future__ import annotations

import copy

from report_fixtures import make_run

from cifarlab.reporting.html.sweep import sweep_sections
from cifarlab.reporting.runs import collect_run


def test_the_callers_rows_are_not_changed(tmp_path):
    rows = [collect_run(make_run(tmp_path / f"t{seed}", tmp_path / "data", seed=seed, epochs=1).path)
            for seed in range(2)]
    assert all("trial" not in row for row in rows)  # the key the report adds to its own copies
    before = copy.deepcopy(rows)
    _, _, sections = sweep_sections(tmp_path, rows)
    assert rows == before
    assert any("t0" in s and "t1" in s for s in sections)  # the rows were used
