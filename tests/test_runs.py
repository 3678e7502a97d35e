"""The runs table: rows read from run directories, sorted, aggregated over seeds, exported in every format."""

from __future__ import annotations

import csv
import io
import json

import pytest

from cifarlab.cli import main
from cifarlab.config import compose
from cifarlab.inspection.arch import describe_arch
from cifarlab.models import build_model
from cifarlab.reporting import COLUMNS, collect_runs, columns_for, format_rows, sort_rows
from cifarlab.reporting.runs import aggregate_repeats, best_row


def _run(root, name, overrides=(), val=0.5, test=0.49, wall=12.0, sweep=None, preset="seed", arch=True):
    run = root / name
    run.mkdir(parents=True)
    cfg = compose(preset, overrides=list(overrides))
    (run / "config.yaml").write_text(cfg.to_yaml())
    summary = {"status": "completed", "val_acc": val, "test_acc": test, "params": 2_753_546, "wall_seconds": wall,
               "device": "cpu", "seed": 0}
    if arch:  # what the trainer records: the table reads it and builds no network
        summary["arch"] = describe_arch(build_model(cfg.model))
    (run / "summary.json").write_text(json.dumps(summary))
    if sweep is not None:
        (run / "sweep.json").write_text(json.dumps(sweep))
    return run


@pytest.fixture
def runs(tmp_path):
    _run(tmp_path, "a-seed", val=0.60, wall=75.0)
    _run(tmp_path, "b-nobn", ["model.args.batchnorm=false", "model.args.dropout=0", "optim.lr=1e-3"], val=0.55)
    _run(tmp_path, "nested/c-12-4", ["model.name=seedlike", "model.args={conv: 12, fc: 4}", "optim.name=sgd",
                                     "optim.nesterov=true", "optim.weight_decay=5e-4"], val=0.70)
    _run(tmp_path, "d-fast", preset="fast-cpu", val=None, test=None)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "summary.json").write_text("{}")  # no config.yaml beside it
    return tmp_path


def test_rows_carry_the_write_ups_columns(runs):
    rows = {r["label"]: r for r in collect_runs(runs)}
    assert sorted(rows) == ["a-seed", "b-nobn", "c-12-4", "d-fast"]
    seed = rows["a-seed"]
    assert (seed["lr"], seed["batch size"], seed["epochs"], seed["arch"], seed["optimizer"]) == \
        (5e-4, 60, 20, "5-3", "Adam")
    assert (seed["regularization"], seed["activation"], seed["normalization"]) == ("dropout=0.2", "ReLU", "BN")
    assert (rows["b-nobn"]["regularization"], rows["b-nobn"]["normalization"]) == ("none", "none")
    deep = rows["c-12-4"]
    assert (deep["arch"], deep["optimizer"], deep["regularization"]) == \
        ("12-4", "SGD (m=0.9, nesterov)", "dropout=0.2, wd=0.0005")
    fast = rows["d-fast"]
    assert fast["arch"] == "fast (widths=[16, 80, 96], whiten_bias_epochs=1, group_epochs=[2, None, None])"
    assert fast["activation"] == "GELU"
    assert fast["regularization"] == "wd=0.000512, smoothing=0.2, aug=altflip+crop2"
    assert fast["optimizer"] == "Muon (m=0.6) + SGD (m=0.85, nesterov)" and fast["lr"] == 0.08


def test_a_run_recorded_without_architecture_facts_is_still_listed(tmp_path):
    _run(tmp_path, "old", arch=False)
    (row,) = collect_runs(tmp_path)
    assert (row["arch"], row["activation"], row["normalization"], row["val acc"]) == ("seed", "?", "?", 0.5)


def test_sorted_by_validation_accuracy_best_first_missing_last_or_by_any_column(runs):
    rows = collect_runs(runs)
    assert [r["label"] for r in sort_rows(rows)] == ["c-12-4", "a-seed", "b-nobn", "d-fast"]
    assert [r["lr"] for r in sort_rows(rows, "lr")] == sorted(r["lr"] for r in rows)
    assert sort_rows(rows, "wall_time")[-1]["label"] == "a-seed"


def test_every_format(runs):
    rows = sort_rows(collect_runs(runs))
    columns = columns_for(rows)
    assert "writeup acc" not in columns and "test acc" in columns  # no row has a write-up accuracy
    table = format_rows(rows, columns, "table").splitlines()
    assert len(table) == 2 + 4 and table[0].split()[:3] == ["label", "lr", "batch"]
    assert "70.00%" in table[2] and "1 min 15 s" in table[3] and "2,753,546" in table[3]
    parsed = list(csv.DictReader(io.StringIO(format_rows(rows, columns, "csv"))))
    assert [r["val acc"] for r in parsed] == ["0.7", "0.6", "0.55", ""]
    markdown = format_rows(rows, columns, "markdown").splitlines()
    assert markdown[0].startswith("| label | lr |") and markdown[1].startswith("|---|") and len(markdown) == 6
    assert [r["val acc"] for r in json.loads(format_rows(rows, columns, "json"))] == [0.7, 0.6, 0.55, None]


def test_writeup_accuracy_is_shown_where_a_sweep_kept_one(tmp_path):
    _run(tmp_path, "t0", val=0.8, sweep={"label": "seed-recipe", "writeup_accuracy": 0.84})
    rows = collect_runs(tmp_path)
    assert "writeup acc" in columns_for(rows) and rows[0]["label"] == "seed-recipe"
    assert "84.00%" in format_rows(rows, columns_for(rows))


def test_repeats_are_averaged_and_close_calls_marked(tmp_path):
    for group, vals in {"a": (0.70, 0.74), "b": (0.69, 0.71), "c": (0.50, 0.52)}.items():
        for seed, val in enumerate(vals):
            _run(tmp_path, f"{group}{seed}", val=val, sweep={"label": f"{group}-seed{seed}", "group": group})
    table = {r["label"]: r for r in aggregate_repeats(collect_runs(tmp_path))}
    assert table["a"]["val acc"] == pytest.approx(0.72) and table["a"]["val acc std"] == pytest.approx(0.0283, 1e-2)
    assert (table["a"]["within spread"], table["b"]["within spread"], table["c"]["within spread"]) == \
        (False, True, False)  # b is 0.02 below a, inside a's spread; c is far below
    assert best_row(collect_runs(tmp_path))["label"] == "a"
    text = format_rows(sort_rows(list(table.values())), COLUMNS, "table")
    assert "≈ 70.00% ± 1.41%" in text and "72.00% ± 2.83%" in text


def test_runs_command(runs, capsys):
    for fmt in ("table", "csv", "markdown", "json"):
        assert main(["runs", str(runs), "--format", fmt, "--sort", "lr"]) == 0
        out = capsys.readouterr().out
        assert out.index("0.0005") < out.index("0.001")
    assert main(["runs", str(runs), "--sort", "colour"]) == 2
    assert "--sort 'colour': no such column" in capsys.readouterr().err
    assert main(["runs", str(runs / "missing")]) == 2
    assert main(["runs", str(runs / "not-a-run")]) == 2
    assert "no run directories" in capsys.readouterr().err


def test_runs_from_a_storage_that_is_missing_or_not_a_database_name_the_cause(tmp_path, capsys):
    missing = tmp_path / "nope.db"
    assert main(["runs", "--storage", f"sqlite:///{missing}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"no database file {missing}" in err and "\n" not in err
    assert not missing.exists()  # reading does not leave an empty database behind
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all, just some bytes" * 4)
    assert main(["runs", "--storage", f"sqlite:///{junk}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot read" in err and "file is not a database" in err and "\n" not in err


def test_runs_storage_without_a_url_reads_the_sweeps_environment_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CIFARLAB_SWEEP_STORAGE", raising=False)
    assert main(["runs", "--storage"]) == 2
    assert "--storage without a URL reads $CIFARLAB_SWEEP_STORAGE, which is not set" in capsys.readouterr().err
    from_env, given = tmp_path / "env.db", tmp_path / "given.db"
    monkeypatch.setenv("CIFARLAB_SWEEP_STORAGE", f"sqlite:///{from_env}")
    assert main(["runs", "--storage"]) == 2
    assert f"no database file {from_env}" in capsys.readouterr().err  # the variable's database was the one read
    assert main(["runs", "--storage", f"sqlite:///{given}"]) == 2
    assert f"no database file {given}" in capsys.readouterr().err  # a URL given wins over the variable
