"""The states a sweep trial can end in, reached for real on a tiny synthetic dataset: a trial pruned by the median
pruner, a trial that diverges, and a TPE study whose sampler models real trials; each one's row in the printed
table, ``results.csv``, ``results.md`` and ``report.html``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from html.parser import HTMLParser

import optuna
import pytest
import synthetic
import torch
import yaml
from optuna.trial import TrialState

import cifarlab
from cifarlab.cli import main

pytestmark = pytest.mark.slow

TINY = {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.epochs": 2,
        "train.batch_size": 25, "data.val_size": 50}
# Five ordinary trials (Optuna's MedianPruner judges nothing before 5 have completed), then two that end early:
# - "stuck" learns nothing at a learning rate of 1e-7: its epoch-1 accuracy (chance, 10%) is below the median of
#   the five at epoch 1 (20-40% on this data);
# - "diverge" trains well in epoch 1 at SGD lr 0.1 (about 90%, far above the others) and then explodes when the
#   step schedule multiplies the rate by 1e12: a diverged trial with the sweep's highest val acc, which must still
#   never be chosen as the best.
GOOD = [{"label": f"good{seed}", "set": {"optim.lr": 0.0003, "train.seed": seed}} for seed in range(5)]
STUCK = {"label": "stuck", "set": {"optim.name": "sgd", "optim.lr": 1e-7}}
DIVERGE = {"label": "diverge", "set": {"optim.name": "sgd", "optim.lr": 0.1, "schedule.name": "step",
                                       "schedule.step_epochs": 1, "schedule.gamma": 1e12}}
STATES = {"name": "states", "base": {"preset": "seed"}, "fixed": TINY, "pruner": "median",
          "search": {"runs": [*GOOD, STUCK, DIVERGE]}}


@contextlib.contextmanager
def one_thread():
    """Networks this small train faster on one thread than on several contending for a busy CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _TableParser(HTMLParser):
    """The header and the cell texts of the ``<table id=...>`` of an HTML page."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def html_rows(page: str) -> dict[str, dict[str, str]]:
    """The report's runs table, row by label."""
    parser = _TableParser("runs-table")
    parser.feed(page)
    header, *rows = parser.rows
    return {row[0]: dict(zip(header, row)) for row in rows}


def markdown_rows(text: str) -> dict[str, dict[str, str]]:
    """The first Markdown table of ``results.md``, row by label."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]
    return {row["label"]: row for row in rows}


def printed_rows(printed: str) -> dict[str, str]:
    """The printed table's lines, by their first word (the label)."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("label "))
    return {line.split()[0]: line for line in lines[start + 2:lines.index("", start)]}


def csv_rows(path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {row["label"]: row for row in csv.DictReader(f)}


def trial_states(out) -> dict[str, TrialState]:
    """Each trial's state as Optuna recorded it in the sweep's study."""
    study = optuna.load_study(study_name="states", storage=f"sqlite:///{out / 'study.db'}")
    return {t.user_attrs["label"]: t.state for t in study.get_trials()}


@pytest.fixture(scope="module")
def states_sweep(tiny_imagefolder, tmp_path_factory):
    """The sweep of :data:`STATES`, run once for the tests of this module: its folder and what it printed."""
    root = tmp_path_factory.mktemp("states")
    path = root / "sweep.yaml"
    path.write_text(yaml.safe_dump(STATES))
    printed = io.StringIO()
    with one_thread(), contextlib.redirect_stdout(printed):
        code = main(["sweep", str(path), "--data", str(tiny_imagefolder), "--out", str(root / "out")])
    assert code == 0, printed.getvalue()
    return root / "out", printed.getvalue()


def test_a_trial_far_below_the_median_is_pruned_after_its_first_epoch(states_sweep):
    out, printed = states_sweep
    assert trial_states(out) == {**{f"good{s}": TrialState.COMPLETE for s in range(5)},
                                 "stuck": TrialState.PRUNED, "diverge": TrialState.PRUNED}
    assert "stuck: pruned after epoch 1 (val acc 10.00%)" in printed
    summary = json.loads((out / "trials" / "0005-stuck" / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["epochs_completed"] == 1  # stopped halfway
    assert csv_rows(out / "results.csv")["stuck"]["status"] == "pruned"
    assert printed_rows(printed)["stuck"].split()[-1] == "pruned"
    assert markdown_rows((out / "results.md").read_text())["stuck"]["status"] == "pruned"
    assert html_rows((out / "report.html").read_text())["stuck"]["status"] == "pruned"
    others = {label: row["status"] for label, row in csv_rows(out / "results.csv").items() if label.startswith("good")}
    assert others == dict.fromkeys(others, "completed") and len(others) == 5


def test_a_diverging_trial_is_marked_diverged_and_never_chosen_as_best(states_sweep):
    out, printed = states_sweep
    assert "diverge: diverged in" in printed
    rows = csv_rows(out / "results.csv")
    assert rows["diverge"]["status"] == "diverged"
    completed = {label: float(row["val acc"]) for label, row in rows.items() if row["status"] == "completed"}
    # the test's premise: by its epoch-1 accuracy alone the diverged trial would have been the best
    assert float(rows["diverge"]["val acc"]) > max(completed.values())
    best = max(completed, key=completed.get)
    assert json.loads((out / "best.json").read_text())["label"] == best
    assert f"best trial, chosen on validation accuracy: {best} " in printed
    assert printed_rows(printed)["diverge"].split()[-1] == "diverged"
    md = (out / "results.md").read_text()
    assert markdown_rows(md)["diverge"]["status"] == "diverged"
    assert f"best trial, chosen on validation accuracy: {best} " in md
    page = (out / "report.html").read_text()
    assert html_rows(page)["diverge"]["status"] == "diverged"
    assert f"best trial, chosen on validation accuracy: {best} " in page
    assert "7 trials (5 completed, 1 diverged, 1 pruned)" in page


def test_a_tpe_study_models_its_trials_and_completes_its_budget(tiny_imagefolder, tmp_path, monkeypatch):
    modelled = []

    class SpiedTPE(optuna.samplers.TPESampler):
        """TPE that draws from its model after 2 trials (Optuna's default waits for 10) and counts those draws."""

        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "n_startup_trials": 2, "seed": 0})

        def _sample(self, study, trial, search_space):
            modelled.append(trial.number)
            return super()._sample(study, trial, search_space)

    monkeypatch.setattr(optuna.samplers, "TPESampler", SpiedTPE)
    spec = {"name": "tpe", "base": {"preset": "seed"}, "fixed": {**TINY, "train.epochs": 1},
            "search": {"sampler": "tpe", "trials": 4, "space": {"optim.lr": {"float": [1e-4, 1e-2], "log": True}}}}
    path = tmp_path / "tpe.yaml"
    path.write_text(yaml.safe_dump(spec))
    with one_thread():
        result = cifarlab.sweep(path, data=tiny_imagefolder, out_dir=tmp_path / "out")
    assert modelled == [2, 3]  # the two trials after the start-up ones came from TPE's model, not at random
    assert len(result.rows) == 4 and synthetic.statuses(result.rows) == {"completed"}
    lrs = [r["lr"] for r in result.rows]
    assert len(set(lrs)) == 4 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    rows = csv_rows(tmp_path / "out" / "results.csv")
    assert len(rows) == 4 and synthetic.statuses(rows.values()) == {"completed"}
    assert set(markdown_rows((tmp_path / "out" / "results.md").read_text())) == set(rows)
    page = html_rows((tmp_path / "out" / "report.html").read_text())
    assert set(page) == set(rows) and synthetic.statuses(page.values()) == {"completed"}
    best = max(rows, key=lambda label: float(rows[label]["val acc"]))
    assert result.best["label"] == best
