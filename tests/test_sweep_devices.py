"""--devices: one worker per device, each pinned to it; checked on the CPU by the workers' environments."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from cifarlab.cli import main
from cifarlab.sweeps import SweepOptions, load_sweep, runner

GRID = {"name": "tiny", "base": {"preset": "seed"},
        "fixed": {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.epochs": 1,
                  "train.batch_size": 25, "data.val_size": 50},
        "search": {"grid": {"optim.lr": [0.003, 0.0003]}}}


@pytest.fixture
def two_gpus(monkeypatch):
    """This machine, as one with two CUDA devices."""
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)


def _spec(tmp_path, **options):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(GRID))
    return load_sweep(path, SweepOptions(**options))


@pytest.mark.parametrize("devices", ["cuda:0,cuda:1", "all"])
def test_one_worker_per_device_each_sees_only_its_own(tmp_path, monkeypatch, two_gpus, devices):
    started = []

    class Worker:
        def __init__(self, command, env):
            started.append((command, env))

        def wait(self):
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", Worker)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 16)
    spec = _spec(tmp_path, devices=devices, storage_patience=60)
    runner._run_workers(spec, tmp_path / "out", "sqlite:///x.db", runner.worker_devices(spec.options))
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["0", "1"]
    assert {env[runner.DEVICE_ENV] for _, env in started} == {"cuda"}
    assert {env[runner.THREADS_ENV] for _, env in started} == {"8"}  # the cores, shared
    command = started[0][0]
    assert command[-1] == "--worker" and "--devices" not in command and "--storage" not in command
    assert float(command[command.index("--storage-patience") + 1]) == 60
    assert command[command.index("--out") + 1] == str((tmp_path / "out").resolve())


def test_without_devices_workers_stay_unpinned():
    assert runner.worker_devices(SweepOptions(workers=3)) == [None, None, None]
    assert runner.DEVICE_ENV not in runner.worker_env(None, 3, "sqlite:///x.db")


@pytest.mark.parametrize(("args", "message"), [
    (["--devices", "cuda:3"], "--devices cuda:3: there is no cuda:3; this machine has 2 CUDA device(s), cuda:0 to "
                              "cuda:1"),
    (["--devices", "gpu1"], "--devices gpu1: 'gpu1' is not cuda:N, cpu or all"),
    (["--devices", "cuda:0,cuda:1", "--workers", "2"], "--workers and --devices: give one"),
])
def test_bad_devices_are_one_line(tmp_path, capsys, two_gpus, args, message):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(GRID))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_all_on_a_machine_without_gpus_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(GRID))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--devices", "all"]) == 2
    assert "--devices all: this machine has no CUDA device; use --workers N" in capsys.readouterr().err


@pytest.mark.slow
def test_a_worker_pinned_to_the_cpu_trains_there(tiny_imagefolder, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**GRID, "fixed": {**GRID["fixed"], "train.device": "auto"}}))
    out = subprocess.run([sys.executable, "-m", "cifarlab", "sweep", str(path), "--data", str(tiny_imagefolder),
                          "--out", str(tmp_path / "s"), "--devices", "cpu,cpu", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout[out.stdout.index("\n{") + 1:])["rows"]  # after the workers' progress lines
    assert len(rows) == 2 and {r["device"] for r in rows} == {"cpu"}
