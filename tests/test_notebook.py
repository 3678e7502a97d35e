"""The example notebooks run from top to bottom (nbclient) on tiny synthetic data, so they never rot."""

from __future__ import annotations

from pathlib import Path

import pytest
import synthetic
from skips import require_module

from cifarlab.rundir import RunDir

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _execute(name: str, prefix: str, parameters: dict, tmp_path, monkeypatch) -> list[str]:
    """Run ``examples/NAME`` with its parameters set through ``PREFIX_*`` variables; each code cell's output."""
    nbformat, nbclient = require_module("nbformat", "dev"), require_module("nbclient", "dev")
    require_module("ipykernel", "dev")
    for key, value in parameters.items():
        monkeypatch.setenv(f"{prefix}_{key}", str(value))  # the kernel inherits the environment
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    # ipykernel's "python3" kernel starts "python", which jupyter_client runs as this very interpreter:
    # the kernel imports the cifarlab under test.
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": tmp_path}}).execute()
    return ["".join(o.get("text", "") + o.get("data", {}).get("text/html", "") for o in c.get("outputs", []))
            for c in notebook.cells if c.cell_type == "code"]


def test_quickstart_notebook_runs_and_shows_the_reports(tmp_path, monkeypatch):
    data = synthetic.make_imagefolder(tmp_path / "data", 30, 10)
    out = tmp_path / "out"
    texts = _execute("quickstart.ipynb", "CIFARLAB_QUICKSTART", {
        "DATA": data, "OUT": out, "TRAIN_IMAGES": 250, "VAL_IMAGES": 50, "TEST_IMAGES": 0, "EPOCHS": 1},
        tmp_path, monkeypatch)
    assert any("conv" in t and "params" in t.lower() for t in texts)  # the seed network's table
    assert RunDir(out / "run").summary()["status"] == "completed"
    reports = [t for t in texts if 'class="cl-report"' in t]
    assert len(reports) == 2  # the run's and the sweep's, inline
    assert "Most confident mistakes" in reports[0] and "Runs" in reports[1]
    predicted = [line for t in texts for line in t.splitlines() if ".png -> " in line]
    assert len(predicted) == 4
    assert len(list((out / "sweep" / "trials").iterdir())) == 2


def test_reproduce_writeup_notebook_runs_the_table_and_shows_the_agreement(tmp_path, monkeypatch):
    data = synthetic.make_imagefolder(tmp_path / "data", 30, 10)
    out = tmp_path / "out"
    # One optimizer step per row (60 images), networks at 1/32 width: the notebook's path, not its accuracy.
    texts = _execute("reproduce-writeup.ipynb", "CIFARLAB_REPRODUCE", {
        "DATA": data, "OUT": out, "EPOCHS": 1, "TRAIN_IMAGES": 60, "VAL_IMAGES": 50, "DIVISOR": 32},
        tmp_path, monkeypatch)
    assert RunDir(out / "seed-best").summary()["status"] == "completed"
    assert RunDir(out / "seed-best").config().model.args["divisor"] == 32
    assert any("whole sweep:" in t and "about" in t for t in texts)  # the dry run's compute and time here
    trials = sorted(p.name for p in (out / "seed-table" / "trials").iterdir())
    assert len(trials) == 15 and trials[0].startswith("0000-r01") and trials[-1].startswith("0014-r15")
    table = next(t for t in texts if "best trial, chosen on validation accuracy" in t)
    assert "rank agreement over 15 rows" in table and "BatchNorm: off -> on" in table
    assert any('class="cl-report"' in t and "Agreement with the write-up" in t for t in texts)
