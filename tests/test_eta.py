"""Training's time estimates, the advice for slow CPU recipes, and no bars outside a terminal."""

from __future__ import annotations

import io
import os
import re
import signal
import types

import pytest
import torch
from tqdm.auto import tqdm

import cifarlab
from cifarlab.preemption import Interrupted
from cifarlab.rundir import RunDir
from cifarlab.terminal import interactive
from cifarlab.training.eta import EtaClock

# ../shared/writeup/README.md, "Results as reported": "Best accuracy: 84%" (its table's row 15).
WRITEUP_BEST = 0.84

# 150 training images in batches of 25: six steps an epoch, on a network of 2,090 parameters.
SMALL_NET = dict(model__name="seedlike", model__args={"conv": 2, "fc": 1, "width": 8}, train__batch_size=25,
                 data__val_size=50, data__max_train_images=150)


def _feed(clock: EtaClock, batch_size: int, seconds_per_batch: float, batches: int) -> list[str]:
    lines = []
    for b in range(1, batches + 1):
        line = clock.batch(b, b * batch_size, b * seconds_per_batch + 5.0)  # batch 1 also pays 5 s of warm-up
        if line:
            lines.append(line)
    return lines


def test_seed_on_a_cpu_learns_it_takes_hours_and_the_faster_preset_within_seconds():
    clock = EtaClock(20, 45_000, preset="seed", on_cpu=True)
    lines = _feed(clock, 60, 0.8, 10)  # 75 images/s, the seed CNN on two cores
    assert len(lines) == 1
    # Batches 2-3 measured (2 batches, 1.6 s): 20 x 45,000 / 75 s = 3 h 20 min, warm-up excluded.
    assert "expected training time: about 3 h 20 min" in lines[0] and "batches 2-3" in lines[0]
    # The advice quotes the write-up's best test accuracy: its own figure, not one of ours.
    assert "fast-cpu" in lines[0] and f"{WRITEUP_BEST:.0%} test accuracy" in lines[0]


@pytest.mark.parametrize("preset, on_cpu", [("fast-cpu", True), ("seed", False)])
def test_no_advice_for_fast_presets_or_off_the_cpu(preset, on_cpu):
    lines = _feed(EtaClock(20, 45_000, preset=preset, on_cpu=on_cpu), 60, 0.8, 10)
    assert len(lines) == 1 and "3 h 20 min" in lines[0] and "fast-cpu reaches" not in lines[0]


def test_a_short_seed_run_gets_no_advice():
    lines = _feed(EtaClock(1, 2_000, preset="seed", on_cpu=True), 60, 0.8, 10)
    assert len(lines) == 1 and "about 27 s" in lines[0] and "long wait" not in lines[0]


def test_the_first_epoch_corrects_the_estimate():
    clock = EtaClock(3, 45_000, preset="fast-cpu", on_cpu=True)
    assert len(_feed(clock, 256, 0.3, 10)) == 1
    corrected = clock.epoch(1, 40.0)
    assert re.search(r"about 2 min 00 s in all, 1 min 20 s to go, done around \d\d:\d\d", corrected)
    assert clock.epoch(2, 40.0) is None


def test_an_epoch_too_short_to_measure_still_gets_an_estimate():
    clock = EtaClock(5, 50, preset="seed", on_cpu=True)
    assert clock.batch(1, 50, 0.1) is None  # one batch per epoch: nothing measured after warm-up
    assert clock.epoch(1, 2.0) == "expected training time: about 10 s (2.0 s for the first epoch)"


def test_the_first_epoch_corrects_the_estimate_by_each_epochs_pixels():
    clock = EtaClock(3, 45_000, preset="fast-cpu", on_cpu=True, sides=[16, 32, 32])
    assert len(_feed(clock, 256, 0.3, 10)) == 1
    # 40 s at 16x16, then two epochs with 4x the pixels per image: 40 + 160 + 160 s.
    assert re.search(r"about 6 min 00 s in all, 5 min 20 s to go, done around \d\d:\d\d", clock.epoch(1, 40.0))
    short = EtaClock(2, 50, preset="seed", on_cpu=True, sides=[24, 32])
    assert short.epoch(1, 9.0) == "expected training time: about 25 s (9.0 s for the first epoch)"  # 9 + 16 s


@pytest.fixture
def step_clock(monkeypatch):
    """The trainer's clock, one second on per training step and still otherwise; SIGTERM at step ``sigterm_at``."""
    clock = {"now": 0.0, "steps": 0, "sigterm_at": None}
    loss = torch.nn.functional.cross_entropy

    def step(*args, **kwargs):
        if args[0].requires_grad:  # a training step, not an evaluation
            clock["now"] += 1.0
            clock["steps"] += 1
            if clock["steps"] == clock["sigterm_at"]:
                os.kill(os.getpid(), signal.SIGTERM)
        return loss(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", step)
    monkeypatch.setattr("cifarlab.training.trainer.time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    return clock


def test_a_resumed_epoch_rates_only_the_batches_it_ran(tiny_imagefolder, tmp_path, step_clock, monkeypatch, capsys):
    rates = []

    class Bar(tqdm):
        def set_postfix(self, *args, **kwargs):
            rates.append(kwargs["img_s"])
            super().set_postfix(*args, **kwargs)

    monkeypatch.setattr("cifarlab.training.trainer.tqdm", Bar)
    data, run = cifarlab.load_dataset(tiny_imagefolder), tmp_path / "run"
    step_clock["sigterm_at"] = 8  # epoch 2's second step
    with pytest.raises(Interrupted):
        cifarlab.train("seed", out_dir=run, data=data, progress=False, train__epochs=2, **SMALL_NET)
    rates.clear()
    capsys.readouterr()
    cifarlab.train(resume=run, data=data, progress=False)
    assert rates == ["25"]  # its last 4 batches of 25 images in 4 s, not all 6 in those 4 s
    assert "at 25 images/s, measured over batches 2-3;" in capsys.readouterr().out
    assert RunDir(run).epochs()[-1]["images_per_s"] == 25  # the whole epoch over both sessions' seconds


def test_training_scales_the_correction_by_train_resolution(tiny_imagefolder, tmp_path, step_clock, capsys):
    cifarlab.train("seed", out_dir=tmp_path / "run", data=cifarlab.load_dataset(tiny_imagefolder), progress=False,
                   train__epochs=3, train__resolution=[16, 32], **SMALL_NET)
    # Epoch 1: 6 steps of 16x16 images in 6 s; epochs 2 and 3 at 32x32, 4x the pixels, 24 s each.
    assert "about 54 s in all, 48 s to go" in capsys.readouterr().out


def test_bars_only_in_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    monkeypatch.setattr("sys.stderr", Terminal())
    assert interactive() and not interactive(False)
    monkeypatch.setattr("sys.stdout", io.StringIO())  # piped or redirected
    assert not interactive()


@pytest.mark.slow
def test_piped_training_prints_the_estimate_and_no_carriage_returns(tiny_imagefolder, tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "cifarlab", "train", "--preset", "fast-cpu", "--data", str(tiny_imagefolder),
         "--epochs", "2", "--max-train-images", "200", "--set", "data.val_size=50", "--set", "train.batch_size=25",
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600)  # stdout and stderr are pipes, not a terminal
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("expected training time: about ") for line in lines) == 1
    assert sum(line.startswith("after the first epoch (") for line in lines) == 1
    estimate = next(i for i, line in enumerate(lines) if line.startswith("expected"))
    first_epoch_row = next(i for i, line in enumerate(lines) if line.split()[:1] == ["1"])
    assert estimate < first_epoch_row  # told before the first epoch ends
