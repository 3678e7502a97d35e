"""A failing disk: every write says one line naming the file, keeps what was there and leaves no temp file."""

from __future__ import annotations

import errno
import json
import os
import re
import threading

import pytest
import synthetic
import torch
from faults import fill, leftovers, one_line, read_only, resize, small_disk, start_cli
from safetensors.torch import load_file
from skips import require_module

from cifarlab import fileio
from cifarlab.cli import main
from cifarlab.config import compose
from cifarlab.data import cache, load_dataset
from cifarlab.errors import DiskError
from cifarlab.models import build_model
from cifarlab.models.weights import load_trained, save_weights
from cifarlab.rundir import RunDir
from cifarlab.training.checkpoint import load_checkpoint

FULL = "cannot write: No space left on device (ENOSPC)"
FULL_RE = re.escape(FULL)


def test_atomic_write_on_a_full_disk_keeps_the_old_file(tmp_path):
    with small_disk(tmp_path / "disk", "256k") as disk:
        target = disk / "summary.json"
        fileio.write_json(target, {"status": "running"})
        with pytest.raises(DiskError) as caught:
            fileio.write_bytes(target, b"x" * 1_000_000)
        assert str(caught.value) == f"{target}: {FULL}" and caught.value.errno == errno.ENOSPC
        assert json.loads(target.read_text()) == {"status": "running"}
        assert leftovers(disk) == []


def test_metrics_append_on_a_full_disk_keeps_no_torn_line(tmp_path):
    with small_disk(tmp_path / "disk", "256k") as disk:
        log = disk / "metrics.jsonl"
        fileio.append_text(log, '{"epoch": 1}\n')
        fill(disk, leave=4096)
        with pytest.raises(DiskError, match=f"metrics.jsonl: {FULL_RE}"):
            fileio.append_text(log, json.dumps({"epoch": 2, "pad": "x" * 100_000}) + "\n")
        assert log.read_text() == '{"epoch": 1}\n'  # cut back to the last whole line


def test_read_only_file_system(tmp_path):
    with small_disk(tmp_path / "disk", "256k") as disk:
        fileio.write_text(disk / "config.yaml", "a: 1\n")
        read_only(disk)
        try:
            with pytest.raises(DiskError, match="config.yaml: cannot write: Read-only file system"):
                fileio.write_text(disk / "config.yaml", "a: 2\n")
            with pytest.raises(DiskError, match="metrics.jsonl: cannot write: Read-only file system"):
                fileio.append_text(disk / "metrics.jsonl", "{}\n")
        finally:
            read_only(disk, False)
        assert (disk / "config.yaml").read_text() == "a: 1\n" and leftovers(disk) == []


@pytest.mark.parametrize("code", [errno.EIO, errno.EACCES])
def test_io_error_and_permission_denied_while_renaming(tmp_path, monkeypatch, code):
    # Injected: root ignores permission bits, and no file system here fails on demand.
    def failing_replace(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(DiskError, match=f"weights.safetensors: cannot write: {os.strerror(code)} "
                                        f"\\({errno.errorcode[code]}\\)"):
        fileio.write_bytes(tmp_path / "weights.safetensors", b"data")
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_are_not_disk_faults(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(FileExistsError):  # a wrong path is the caller's bug: it keeps its own error
        fileio.write_text(tmp_path / "file" / "x.json", "{}")


def test_a_cache_that_cannot_be_written_is_a_warning_and_the_data_is_used(tmp_path):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 2, 1)
    with small_disk(tmp_path / "disk", "64k") as disk:  # room for the hash index, not for the arrays
        with pytest.warns(UserWarning, match="cannot write the cache file: No space left on device; "
                                             "using the data without the cache"):
            data = load_dataset(archive, cache_dir=disk, progress=False)
        assert len(data.train_labels) == 20
        assert not list(cache.arrays_dir(disk).glob("*.npz")) and leftovers(disk) == []


@pytest.mark.slow
def test_a_full_cache_disk_is_one_warning_line_from_the_cli(tmp_path):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 2, 1)
    with small_disk(tmp_path / "disk", "64k") as disk:
        proc = start_cli("data", "--data", str(archive), "--cache-dir", str(disk), "--val-size", "5")
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "(not written: see the warning)" in stdout and "train 20, test 10" in stdout
        assert re.search(f"^cifarlab data: warning: {re.escape(str(disk))}/arrays/[0-9a-f]+\\.npz: cannot write the "
                         "cache file: No space left on device; using the data without the cache$", stderr, re.M)
        assert "Traceback" not in stderr and "UserWarning" not in stderr


def test_a_read_only_cache_is_a_warning(tmp_path):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 2, 1)
    with small_disk(tmp_path / "disk", "1M") as disk:
        read_only(disk)
        try:
            with pytest.warns(UserWarning, match="Read-only file system"):
                data = load_dataset(archive, cache_dir=disk, progress=False)
        finally:
            read_only(disk, False)
        assert len(data.test_labels) == 10 and list(disk.iterdir()) == []


def _weights(tmp_path):
    cfg = compose("seed", None, [])
    path = tmp_path / "weights.safetensors"
    save_weights(path, build_model(cfg.model), cfg, synthetic.CLASSES)
    return path


def test_weights_on_a_full_disk_keep_the_last_good_file(tmp_path):
    cfg = compose("seed", None, [])
    with small_disk(tmp_path / "disk", "16M") as disk:  # the seed net's weights are 11 MB: one copy fits
        target = disk / "weights.safetensors"
        save_weights(target, build_model(cfg.model), cfg, synthetic.CLASSES)
        with pytest.raises(DiskError, match=f"weights.safetensors: {FULL_RE}"):
            save_weights(target, build_model(cfg.model), cfg, synthetic.CLASSES)
        assert load_trained(target).classes == synthetic.CLASSES and leftovers(disk) == []


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_to_a_full_disk_is_one_line_and_exit_2(tmp_path, capsys, fmt):
    if fmt == "onnx":
        require_module("onnxruntime", "export")
    weights = _weights(tmp_path)
    with small_disk(tmp_path / "disk", "1M") as disk:
        out = disk / "model.out"
        assert main(["export", str(weights), "--format", fmt, "--out", str(out)]) == 2
        assert capsys.readouterr().err == f"cifarlab export: error: {out}: {FULL}\n"
        assert list(disk.iterdir()) == []


# A small net with a 2 MB checkpoint: large beside the run's other files, quick to train.
TRAIN = ["--preset", "seed", "--set", "model.name=seedlike", "--set", "model.args={conv: 2, fc: 3, width: 8}",
         "--epochs", "2", "--max-train-images", "150", "--set", "data.val_size=50", "--set", "train.batch_size=25",
         "--no-progress"]


@pytest.mark.slow
def test_a_disk_that_fills_during_training_keeps_the_last_checkpoint_and_resume_finishes(
        tiny_imagefolder, tmp_path, capsys):
    args = [*TRAIN, "--data", str(tiny_imagefolder)]
    assert main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    size = (tmp_path / "straight" / "checkpoint.safetensors").stat().st_size
    # Room for the first checkpoint and the small files, not for the second one's temporary copy beside it.
    with small_disk(tmp_path / "disk", str(size * 3 // 2)) as disk:
        run = disk / "run"
        capsys.readouterr()
        assert main(["train", *args, "--out", str(run)]) == 2
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"cifarlab train: error: {run / 'checkpoint.safetensors'}: {FULL}; ")
        assert f"cifarlab train --resume {run}" in line
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "failed" and FULL in summary["error"]
        assert load_checkpoint(run / "checkpoint.safetensors")[1]["state"]["epochs_completed"] == 1
        assert leftovers(run) == [] and not (run / "weights.safetensors").exists()

        resize(disk, str(size * 4))  # space freed
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
        assert _same_weights(tmp_path / "straight" / "weights.safetensors", run / "weights.safetensors")
        assert [r["epoch"] for r in RunDir(run).epochs()] == [1, 2]


@pytest.mark.slow
def test_a_read_only_run_directory_is_one_line_from_the_first_write(tiny_imagefolder, tmp_path, capsys):
    with small_disk(tmp_path / "disk", "1M") as disk:
        read_only(disk)
        try:
            assert main(["train", *TRAIN, "--data", str(tiny_imagefolder), "--out", str(disk / "run")]) == 2
        finally:
            read_only(disk, False)
        assert one_line(capsys.readouterr().err) == \
            f"cifarlab train: error: {disk / 'run'}: Read-only file system"


def _same_weights(a, b) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_sweep_results_on_a_read_only_disk_name_the_file(tmp_path):
    from cifarlab.reporting.runs import write_results

    with small_disk(tmp_path / "disk", "1M") as disk:
        read_only(disk)
        try:
            with pytest.raises(DiskError, match="results.csv: cannot write: Read-only file system \\(EROFS\\)$"):
                write_results(disk, [], None, title="Sweep tiny")
        finally:
            read_only(disk, False)
        assert list(disk.iterdir()) == []


def _tensorboard_events(run) -> dict[str, list[int]]:
    """The steps each scalar tag was logged at, as TensorBoard reads them back."""
    accumulator = require_module("tensorboard.backend.event_processing.event_accumulator", "tensorboard")
    acc = accumulator.EventAccumulator(str(run))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture
def thread_tracebacks(monkeypatch):
    """Exceptions that killed a thread (each would print a traceback of its own in the CLI)."""
    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    return died


def test_tensorboard_events_on_a_full_disk_are_a_disk_error_naming_the_events_file(tmp_path, thread_tracebacks):
    from cifarlab.training.tensorboard import TensorBoardLog

    _tensorboard_events(tmp_path)  # skips without the tensorboard extra
    with small_disk(tmp_path / "disk", "256k") as disk:
        log = TensorBoardLog(disk / "run")
        log.steps([{"step": s, "loss": 1.0 / s} for s in range(1, 5)])
        log.epoch({"epoch": 1, "train_acc": 0.5}, step=4)
        fill(disk, leave=0)
        with pytest.raises(DiskError, match=f"^{re.escape(str(disk / 'run'))}/events\\.out\\.tfevents\\.[^/:]+: "
                                            f"{FULL_RE}$"):
            log.steps([{"step": s, "loss": 1.0 / s, "lr": 0.1} for s in range(5, 505)])
            log.epoch({"epoch": 2, "train_acc": 0.6}, step=504)
        assert thread_tracebacks == []
        assert _tensorboard_events(disk / "run") == {"train/loss": [1, 2, 3, 4], "accuracy/train": [4], "epoch": [4]}


@pytest.mark.slow
def test_a_disk_that_fills_while_tensorboard_writes_keeps_the_checkpoint_and_resume_finishes(
        tiny_imagefolder, tmp_path, capsys, monkeypatch, thread_tracebacks):
    from cifarlab.training.tensorboard import TensorBoardLog

    _tensorboard_events(tmp_path)  # skips without the tensorboard extra
    # Batches of 2: an epoch's events (200 scalars) outgrow the page a full disk still has for summary.json.
    args = [*TRAIN, "--data", str(tiny_imagefolder), "--max-train-images", "200", "--set", "train.batch_size=2",
            "--set", "train.tensorboard=true"]
    with small_disk(tmp_path / "disk", "8M") as disk:
        steps, ballast = TensorBoardLog.steps, []

        def fill_before_epoch_2(self, records):  # injected: the disk fills after epoch 2's metrics.jsonl line
            if records[0]["step"] > 100:
                ballast.append(fill(disk, leave=4096))
            steps(self, records)

        monkeypatch.setattr(TensorBoardLog, "steps", fill_before_epoch_2)
        run = disk / "run"
        assert main(["train", *args, "--out", str(run)]) == 2
        line = one_line(capsys.readouterr().err)
        assert re.match(f"cifarlab train: error: {re.escape(str(run))}/events\\.out\\.tfevents\\.[^/:]+: {FULL_RE}; "
                        "the last good checkpoint is kept; ", line), line
        assert f"cifarlab train --resume {run}" in line and thread_tracebacks == []
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "failed" and FULL in summary["error"]
        assert load_checkpoint(run / "checkpoint.safetensors")[1]["state"]["epochs_completed"] == 1

        ballast[0].unlink()  # space freed
        monkeypatch.setattr(TensorBoardLog, "steps", steps)
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"
        events = _tensorboard_events(run)
        assert events["train/loss"] == list(range(1, 201)) and events["accuracy/train"] == [100, 200]
        assert thread_tracebacks == []
