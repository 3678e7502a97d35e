"""Preemption: SIGTERM and Ctrl-C stop at a safe point, keep a resumable checkpoint and exit 143 / 130."""

from __future__ import annotations

import os
import re
import signal

import optuna
import pytest
import torch
import yaml
from faults import leftovers, one_line, start_cli, wait_for
from optuna.trial import TrialState
from safetensors.torch import load_file

import cifarlab
from cifarlab.cli import main
from cifarlab.preemption import Interrupted, deferred_signals, sigterm_raises
from cifarlab.rundir import RunDir
from cifarlab.training.checkpoint import load_checkpoint


def _handlers():
    return signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)


def test_a_signal_inside_the_deferred_block_is_only_recorded():
    before = _handlers()
    with pytest.raises(Interrupted) as caught:
        with deferred_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.signum == signal.SIGTERM  # still running: the block decides where to stop
            raise Interrupted(stop.signum)
    assert caught.value.exit_status == 143 and str(caught.value) == "stopped by SIGTERM"
    assert _handlers() == before


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler, even where the test runner started with SIGINT ignored (a background job)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_request_never_acted_on_is_delivered_when_the_block_ends(python_ctrl_c):
    with pytest.raises(Interrupted) as caught, sigterm_raises():
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt), deferred_signals():  # Python's own Ctrl-C handler, afterwards
        os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_twice_stops_at_once_but_sigterm_twice_waits():
    with pytest.raises(KeyboardInterrupt) as caught, deferred_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)
    assert not isinstance(caught.value, Interrupted)  # not at a safe point: no checkpoint may be written
    with pytest.raises(Interrupted), sigterm_raises():
        with deferred_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.signum == signal.SIGTERM


# A small net, 25 steps an epoch (250 images, 50 more held out): the signal, sent once epoch 1 is logged, lands in
# epoch 2 or 3.
TRAIN = ["--preset", "seed", "--set", "model.name=seedlike", "--set", "model.args={conv: 2, fc: 1, width: 8}",
         "--epochs", "3", "--max-train-images", "300", "--set", "data.val_size=50", "--set", "train.batch_size=10",
         "--no-progress"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_mid_epoch_checkpoints_marks_the_run_interrupted_and_resume_finishes(
        tiny_imagefolder, tmp_path, sig):
    args = [*TRAIN, "--data", str(tiny_imagefolder)]
    assert main(["train", *args, "--out", str(tmp_path / "straight")]) == 0
    run = tmp_path / "run"
    proc = start_cli("train", *args, "--out", str(run))
    wait_for(lambda: bool(RunDir(run).epochs()), proc)  # epoch 1 is logged: epoch 2 (30 steps) is under way
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig
    assert re.fullmatch(f"cifarlab train: stopped by {signal.Signals(sig).name} at epoch [23], step [0-9]+ of 25; "
                        f"checkpoint saved in {re.escape(str(run))}", one_line(stderr))
    assert f"interrupted: resume with `cifarlab train --resume {run}`" in stdout
    assert RunDir(run).summary()["status"] == "interrupted"
    assert leftovers(run) == [] and not (run / RunDir.WEIGHTS).exists()
    state = load_checkpoint(run / RunDir.CHECKPOINT)[1]["state"]
    assert state["epoch_steps"] > 0 and state["step"] == 25 * state["epochs_completed"] + state["epoch_steps"]

    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert RunDir(run).summary()["status"] == "completed"
    assert _same_weights(tmp_path / "straight" / RunDir.WEIGHTS, run / RunDir.WEIGHTS)
    assert [r["epoch"] for r in RunDir(run).epochs()] == [1, 2, 3]


SMALL_NET = {"model__name": "seedlike", "model__args": {"conv": 2, "fc": 1, "width": 8}, "train__epochs": 2,
             "train__batch_size": 25, "data__val_size": 50, "data__max_train_images": 150}  # 6 steps an epoch


@pytest.mark.slow
def test_sigterm_at_a_step_checkpoints_that_step_and_resume_is_bit_exact(tiny_imagefolder, tmp_path, monkeypatch):
    data = cifarlab.load_dataset(tiny_imagefolder)
    kw = dict(data=data, progress=False, verbose=False)
    cifarlab.train("seed", out_dir=tmp_path / "straight", **kw, **SMALL_NET)
    steps, loss = {"n": 0}, torch.nn.functional.cross_entropy

    def sigterm_during_step_8(*args, **kwargs):
        if args[0].requires_grad:  # a training step, not an evaluation
            steps["n"] += 1
            if steps["n"] == 8:  # epoch 2's second step, in its forward pass
                os.kill(os.getpid(), signal.SIGTERM)
        return loss(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", sigterm_during_step_8)
    run = tmp_path / "run"
    with pytest.raises(Interrupted, match=f"^stopped by SIGTERM at epoch 2, step 2 of 6; checkpoint saved in {run}$"):
        cifarlab.train("seed", out_dir=run, **kw, **SMALL_NET)
    monkeypatch.undo()
    assert steps["n"] == 8  # the step under way finished; no other began
    state = load_checkpoint(run / RunDir.CHECKPOINT)[1]["state"]
    assert (state["epochs_completed"], state["step"], state["epoch_steps"]) == (1, 8, 2)
    assert RunDir(run).summary()["status"] == "interrupted" and leftovers(run) == []

    resumed = cifarlab.train(resume=run, **kw)
    assert resumed.summary["status"] == "completed"
    assert _same_weights(tmp_path / "straight" / RunDir.WEIGHTS, run / RunDir.WEIGHTS)
    untimed = [{k: v for k, v in r.items() if "seconds" not in k and k != "images_per_s"}
               for r in RunDir(run).metrics()]
    assert untimed == [{k: v for k, v in r.items() if "seconds" not in k and k != "images_per_s"}
                       for r in RunDir(tmp_path / "straight").metrics()]


TINY = {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.batch_size": 10,
        "data.val_size": 50, "train.epochs": 3}


def _tiny_sweep(tmp_path, data, *options: str):
    """A two-trial sweep file on TINY: its output folder and the ``cifarlab sweep`` command that runs it."""
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"name": "tiny", "base": {"preset": "seed"}, "fixed": TINY,
                                    "search": {"grid": {"optim.lr": [0.003, 0.0003]}}}))
    out = tmp_path / "sweep"
    return out, ["sweep", str(spec), "--data", str(data), "--out", str(out), *options]


@pytest.mark.slow
def test_sigterm_during_a_sweep_trial_marks_it_for_retry_and_the_rerun_resumes_it(tiny_imagefolder, tmp_path):
    out, command = _tiny_sweep(tmp_path, tiny_imagefolder)
    first = start_cli(*command)
    checkpoint = out / "trials" / "0000-lr=0.003" / RunDir.CHECKPOINT
    wait_for(checkpoint.exists, first)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 143
    assert one_line(stderr).startswith("cifarlab sweep: stopped by SIGTERM at epoch ")
    assert RunDir(checkpoint.parent).summary()["status"] == "interrupted"
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}").trials
    assert [(t.user_attrs.get("slot"), t.state) for t in trials] == \
        [(0, TrialState.FAIL), (1, TrialState.WAITING)]  # the stopped trial is to be retried
    resumed_after = load_checkpoint(checkpoint)[1]["state"]["epochs_completed"]

    again = start_cli(*command, "--verbose")
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert f"resuming after epoch {resumed_after}" in stdout
    done = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}").trials
    assert sorted(t.user_attrs["slot"] for t in done if t.state == TrialState.COMPLETE) == [0, 1]
    for trial in (out / "trials").iterdir():
        assert [r["epoch"] for r in RunDir(trial).epochs()] == [1, 2, 3]


@pytest.mark.slow
def test_sigterm_to_a_sweep_coordinator_alone_reaches_its_workers(tiny_imagefolder, tmp_path):
    out, command = _tiny_sweep(tmp_path, tiny_imagefolder, "--workers", "2")
    first = start_cli(*command)
    wait_for(lambda: any(out.glob("trials/*/checkpoint.safetensors")), first)
    first.send_signal(signal.SIGTERM)  # `kill PID`: the workers get nothing from outside
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 143 and "Traceback" not in stderr
    # One line each from the coordinator and both workers, stopped by the SIGTERM it passed on at once
    # (not by the SIGINT it sends to workers still running 10 s later).
    assert stderr.count("stopped by SIGTERM") == 3 and "SIGINT" not in stderr, stderr
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}").trials
    assert TrialState.RUNNING not in {t.state for t in trials}

    again = start_cli(*command)
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    done = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}").trials
    assert sorted(t.user_attrs["slot"] for t in done if t.state == TrialState.COMPLETE) == [0, 1]


def _same_weights(a, b) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
