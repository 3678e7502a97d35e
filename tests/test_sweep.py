"""Sweeps: expansion and validation, a grid end to end, kill -9 and resume, two workers, results formats."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cifarlab.cli import main
from cifarlab.errors import ConfigError
from cifarlab.reporting.runs import COLUMNS, collect_runs, sort_rows
from cifarlab.reporting.tables import format_rows
from cifarlab.sweeps import load_sweep

GRID = {
    "name": "tiny",
    "base": {"preset": "fast-cpu"},
    "fixed": {"train.epochs": 1, "train.batch_size": 50, "data.val_size": 50, "data.max_train_images": 100},
    "search": {"grid": {"optim.lr": [0.1, 0.2], "train.label_smoothing": [0.0, 0.2]}},
}


def _write(tmp_path: Path, spec: dict, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def _cli(*args: str, env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "CIFARLAB_SWEEP_HEARTBEAT": "1", "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "cifarlab", "sweep", *args], env=env, **kw)


def _trial_labels(sweep_dir: Path) -> list[str]:
    return [json.loads(p.read_text())["label"] for p in sorted(sweep_dir.glob("trials/*/sweep.json"))]


def test_seed_table_parses_and_expands_to_15_runs():
    spec = load_sweep("seed-table", {"data.max_train_images": 2000})
    assert spec.kind == "runs" and len(spec.trials) == 15
    best = spec.trials[0]
    assert best.label == "seed-recipe" and best.writeup_accuracy == 0.84
    cfg = spec.compose(best.overrides)
    assert (cfg.optim.name, cfg.optim.lr, cfg.train.batch_size, cfg.train.epochs) == ("adam", 5e-4, 60, 20)
    archs = {spec.compose(t.overrides).model.args.get("conv") for t in spec.trials}
    assert {7, 8, 12} <= archs
    scaled = load_sweep("seed-table", epochs_scale=0.1)
    assert [spec.compose(t.overrides).train.epochs for t in scaled.trials][:7] == [2, 2, 2, 2, 2, 1, 3]


def test_dry_run_prints_every_trial_and_trains_nothing(tmp_path, capsys):
    assert main(["sweep", str(_write(tmp_path, GRID)), "--dry-run", "--out", str(tmp_path / "out")]) == 0
    listed = yaml.safe_load(capsys.readouterr().out)
    assert len(listed["runs"]) == 4 and listed["runs"][3]["overrides"] == {"optim.lr": 0.2,
                                                                            "train.label_smoothing": 0.2}
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, message", [
    ({"fixed": {"optim.lrr": 1}}, "unknown key 'optim.lrr'"),
    ({"search": {"grid": {}}}, "key 'search.grid' is empty"),
    ({"search": {"grid": {"optim.lr": []}}}, "must be a non-empty list"),
    ({"search": {"grid": {"train.batch_size": ["big"]}}}, "key 'train.batch_size' must be an integer"),
    ({"search": {"sampler": "tpe", "trials": 3, "space": {"optim.lr": {"float": [-1, 1]}}}},
     "key 'optim.lr' must be positive"),
    ({"repeats": 0}, "key 'repeats' must be a positive integer"),
    ({"colour": "red"}, "unknown key 'colour'"),
])
def test_bad_sweep_files_fail_before_training(tmp_path, capsys, change, message):
    path = _write(tmp_path, {**GRID, **change})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(path) in err and err.count("\n") == 0
    assert not (tmp_path / "out" / "trials").exists()


def test_storage_url_that_cannot_be_opened(tmp_path, capsys):
    assert main(["sweep", str(_write(tmp_path, GRID)), "--storage", "nosuchdb://x", "--out",
                 str(tmp_path / "o")]) == 2
    assert "--storage nosuchdb://x: cannot open" in capsys.readouterr().err


def test_grid_runs_every_trial_and_writes_results(tiny_imagefolder, tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["sweep", str(_write(tmp_path, GRID)), "--data", str(tiny_imagefolder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "its test accuracy, reported once" in printed
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["lr"] for r in rows} == {"0.1", "0.2"}
    assert (out / "results.md").read_text().count("\n| ") >= 4
    for plot in ("trials.png", "parameters.png", "best_curves.png"):
        assert (out / "plots" / plot).stat().st_size > 0
    best = json.loads((out / "best.json").read_text())
    assert best["val acc"] == max(float(r["val acc"]) for r in rows)
    # the same command again finds everything done and trains nothing new
    assert main(["sweep", str(_write(tmp_path, GRID)), "--data", str(tiny_imagefolder), "--out", str(out)]) == 0
    assert len(_trial_labels(out)) == 4


def test_sigkill_after_first_trial_then_restart_runs_each_trial_once(tiny_imagefolder, tmp_path):
    spec = {**GRID, "fixed": {**GRID["fixed"], "train.epochs": 2}}
    path, out = _write(tmp_path, spec), tmp_path / "killed"
    args = [str(path), "--data", str(tiny_imagefolder), "--out", str(out)]
    proc = _cli(*args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    while not proc.stdout.readline().startswith("trial "):  # until the first trial has finished
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    restart = _cli(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = restart.communicate(timeout=300)
    assert restart.returncode == 0, stderr
    labels = _trial_labels(out)
    assert sorted(labels) == sorted(set(labels)) and len(labels) == 4
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)


def test_two_workers_share_the_study_without_duplicates(tiny_imagefolder, tmp_path):
    out = tmp_path / "two"
    proc = _cli(str(_write(tmp_path, GRID)), "--data", str(tiny_imagefolder), "--out", str(out), "--workers", "2",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    labels = _trial_labels(out)
    assert len(labels) == 4 and len(set(labels)) == 4
    import optuna

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    indices = [t.user_attrs["trial_index"] for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(indices) == [0, 1, 2, 3]


def test_repeats_report_mean_and_spread(tiny_imagefolder, tmp_path, capsys):
    spec = {**GRID, "search": {"grid": {"optim.lr": [0.1, 0.2]}}, "repeats": 2}
    assert main(["sweep", str(_write(tmp_path, spec)), "--data", str(tiny_imagefolder), "--out",
                 str(tmp_path / "rep")]) == 0
    assert "±" in capsys.readouterr().out
    assert len(collect_runs(tmp_path / "rep")) == 4
    assert "±" in (tmp_path / "rep" / "results.md").read_text()


def test_runs_table_sorts_and_exports_every_format(tmp_path, capsys):
    for i, (val, lr) in enumerate([(0.5, 0.1), (0.7, 0.01), (0.6, 0.001)]):
        run = tmp_path / f"run{i}"
        run.mkdir()
        (run / "summary.json").write_text(json.dumps({"val_acc": val, "test_acc": val - 0.01, "params": 10,
                                                      "wall_seconds": 1.0, "device": "cpu", "seed": 0,
                                                      "status": "completed"}))
        from cifarlab.config import compose

        (run / "config.yaml").write_text(compose("seed", overrides=[f"optim.lr={lr}"]).to_yaml())
    rows = sort_rows(collect_runs(tmp_path))
    assert [r["val acc"] for r in rows] == [0.7, 0.6, 0.5]
    assert [r["lr"] for r in sort_rows(rows, "lr")] == [0.001, 0.01, 0.1]
    assert rows[0]["arch"] == "5-3" and rows[0]["regularization"] == "dropout 0.2"
    assert rows[0]["normalization"] == "BN" and rows[0]["activation"] == "ReLU"
    for fmt in ("table", "csv", "markdown", "json"):
        assert main(["runs", str(tmp_path), "--format", fmt, "--sort", "lr"]) == 0
        out = capsys.readouterr().out
        assert out.index("0.001") < out.index("0.01")
    assert json.loads(format_rows(rows, COLUMNS, "json"))[0]["val acc"] == 0.7
    assert main(["runs", str(tmp_path), "--sort", "colour"]) == 2
    with pytest.raises(ConfigError):
        load_sweep(str(tmp_path / "missing.yaml"))
