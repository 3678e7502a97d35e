"""The study's queue: every slot queued once, failed ones re-queued, duplicates and dead workers found."""

from __future__ import annotations

import socket
import subprocess

import pytest
import yaml
from optuna.trial import TrialState

from cifarlab.sweeps import load_sweep
from cifarlab.sweeps.runner import _Objective
from cifarlab.sweeps.study import DuplicateTrial, claim, fail_dead_trials, next_step, open_study, top_up

# Optuna warns when trials are taken with ask() (as here) from a storage with heartbeats (as sweeps use).
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")

SPEC = {"name": "q", "base": {"preset": "seed"}, "fixed": {"data.val_size": 50},
        "search": {"grid": {"optim.lr": [0.1, 0.01, 0.001]}}}


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    spec = load_sweep(path)
    return spec, open_study(spec, f"sqlite:///{tmp_path / 'study.db'}")


def _slots(study, state=TrialState.WAITING):
    return sorted(t.user_attrs["slot"] for t in study.get_trials(states=(state,)))


def test_every_planned_slot_is_queued_once(grid):
    spec, study = grid
    top_up(study, spec)
    top_up(study, spec)  # a second worker starting: nothing more
    assert _slots(study) == [0, 1, 2]
    assert next_step(study, spec) == "run"


def test_a_failed_trial_goes_back_to_the_queue_and_a_finished_one_does_not(grid):
    spec, study = grid
    top_up(study, spec)
    first, second = study.ask(), study.ask()
    study.tell(first, state=TrialState.FAIL)  # e.g. Ctrl-C
    study.tell(second, 0.5)
    top_up(study, spec)
    assert _slots(study) == [0, 2]


def test_of_two_trials_for_one_slot_only_the_older_runs(grid):
    spec, study = grid
    study.enqueue_trial({}, user_attrs={"slot": 1})
    study.enqueue_trial({}, user_attrs={"slot": 1})  # two workers topped up at the same moment
    older, newer = study.ask(), study.ask()
    with pytest.raises(DuplicateTrial):
        claim(study, newer, spec)
    assert claim(study, older, spec) == 1
    with pytest.raises(DuplicateTrial):
        claim(study, study.ask(), spec)  # a trial with no planned slot: every one is taken


def test_a_sampler_stops_drawing_at_its_budget(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "search": {"sampler": "random", "trials": 2,
                                                        "space": {"optim.lr": {"float": [1e-4, 1e-2]}}}}))
    spec = load_sweep(path)
    study = open_study(spec, f"sqlite:///{tmp_path / 'study.db'}")
    first, second, third = study.ask(), study.ask(), study.ask()
    assert (claim(study, first, spec), claim(study, second, spec)) == (0, 1)
    with pytest.raises(DuplicateTrial):
        claim(study, third, spec)
    study.tell(third, state=TrialState.FAIL)
    assert next_step(study, spec) == "wait"  # two are running; neither is known to be dead


def test_the_trial_of_a_dead_worker_is_failed_and_queued_again(grid, monkeypatch):
    spec, study = grid
    top_up(study, spec)
    dead = subprocess.Popen(["true"])
    dead.wait()
    trial = study.ask()  # its worker on this machine is gone: known at once
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", dead.pid)
    elsewhere = study.ask()  # on another machine: only its heartbeat can tell
    elsewhere.set_user_attr("host", "another-machine")
    elsewhere.set_user_attr("pid", dead.pid)
    fail_dead_trials(study)
    states = {t.number: t.state for t in study.get_trials()}
    assert (states[trial.number], states[elsewhere.number]) == (TrialState.FAIL, TrialState.RUNNING)
    top_up(study, spec)
    assert _slots(study) == [0, 2]
    monkeypatch.setattr("cifarlab.sweeps.study.GRACE_SECONDS", 0)
    silent = study.ask()  # taken from the queue by a worker that died before saying who it was
    fail_dead_trials(study)
    assert {t.number: t.state for t in study.get_trials()}[silent.number] == TrialState.FAIL


def test_two_trials_that_finish_together_each_print_their_own_place(grid, tmp_path, capsys):
    # The race CI met with --workers 2: both trials were complete before either worker's callback ran,
    # and both printed [2/3]. Each line must give its trial's place in the order of completion.
    spec, study = grid
    top_up(study, spec)
    first, second = study.ask(), study.ask()
    for trial in (first, second):
        trial.set_user_attr("label", f"t{trial.number}")
        trial.set_user_attr("run_dir", str(tmp_path / f"t{trial.number}"))  # no run there: no at-chance check
    study.tell(first, 0.5)
    study.tell(second, 0.6)
    objective = _Objective(spec, tmp_path, study, lock=None)
    frozen = {t.number: t for t in study.get_trials()}
    objective.announce(study, frozen[second.number])  # the later one's worker happens to print first
    objective.announce(study, frozen[first.number])
    assert [line.split(" val acc")[0] for line in capsys.readouterr().out.splitlines()] == \
        ["[2/3] t1:", "[1/3] t0:"]
