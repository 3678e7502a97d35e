"""Sweeps survive being killed, and two workers share one study: the real command line in subprocesses."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import synthetic
import yaml
from optuna.trial import TrialState

from cifarlab.training.checkpoint import load_checkpoint

TINY = {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.batch_size": 25,
        "data.val_size": 50}
GRID = {"name": "tiny", "base": {"preset": "seed"}, "fixed": {**TINY, "train.epochs": 2},
        "search": {"grid": {"optim.lr": [0.003, 0.0003], "optim.name": ["adam", "sgd"]}}}


def _sweep(tmp_path: Path, spec: dict, data: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny networks: one thread each is fastest on busy CI cores
    return subprocess.Popen([sys.executable, "-m", "cifarlab", "sweep", str(path), "--data", str(data), "--out",
                             str(out), *extra], env=env, text=True, **popen)


def _trials(out: Path, name: str = "tiny") -> list:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}").trials


def _assert_each_trial_ran_once(out: Path, n: int, epochs: int, resumed: tuple[str, ...] = ()) -> None:
    done = [t for t in _trials(out) if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["slot"] for t in done) == list(range(n))  # every slot exactly once
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n
    # the table says which trial went on from a checkpoint an earlier session left
    assert {r["label"]: synthetic.statuses([r]).pop() for r in rows} == \
        {r["label"]: "completed (resumed)" if r["label"] in resumed else "completed" for r in rows}
    for trial in sorted((out / "trials").iterdir()):  # and no epoch trained twice into a run's log
        records = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in records if r["type"] == "epoch"] == list(range(1, epochs + 1))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_killed_sweep_continues_where_it_stopped(tiny_imagefolder, tmp_path, sig):
    spec, out = {**GRID, "fixed": {**TINY, "train.epochs": 4}}, tmp_path / "sweep"
    first = _sweep(tmp_path, spec, tiny_imagefolder, out, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert first.stdout.readline().startswith("[1/4] ")  # the first trial has finished
    second_checkpoint = out / "trials" / "0001-lr=0.003,name=sgd" / "checkpoint.safetensors"
    while not second_checkpoint.exists():
        assert first.poll() is None, "the sweep ended before its second trial's first epoch"
        time.sleep(0.02)
    first.send_signal(sig)  # during the second trial: it has 3 of its 4 epochs to go
    first.communicate()
    assert first.returncode == (-9 if sig == signal.SIGKILL else 130)
    summary = json.loads((second_checkpoint.parent / "summary.json").read_text())
    assert summary["status"] == ("running" if sig == signal.SIGKILL else "interrupted")
    # Where the resume must start: the checkpoint's own record. summary.json is written just
    # after the checkpoint, so a kill between the two leaves it one epoch behind.
    checkpointed = load_checkpoint(second_checkpoint)[1]["state"]["epochs_completed"]
    assert 1 <= checkpointed < 4

    again = _sweep(tmp_path, spec, tiny_imagefolder, out, "--verbose", stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    # the second trial went on from its checkpoint instead of starting over
    assert f"resuming after epoch {checkpointed}" in stdout
    assert "[1/4] " not in stdout  # the finished first trial was kept, not run again
    _assert_each_trial_ran_once(out, 4, epochs=4, resumed=("lr=0.003,name=sgd",))


@pytest.mark.slow
def test_two_workers_share_one_study_without_running_a_trial_twice(tiny_imagefolder, tmp_path):
    out = tmp_path / "two"
    proc = _sweep(tmp_path, GRID, tiny_imagefolder, out, "--workers", "2", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert len(_trials(out)) == 4  # no trial was even taken twice, let alone trained twice
    _assert_each_trial_ran_once(out, 4, epochs=2)
    assert sorted(line.split("]")[0] for line in stdout.splitlines() if line.startswith("[")) == \
        ["[1/4", "[2/4", "[3/4", "[4/4"]
