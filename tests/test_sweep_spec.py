"""Sweep files: parsing, expansion, the shipped seed-table, --dry-run, and bad input (nothing trains here)."""

from __future__ import annotations

import json

import pytest
import yaml

from cifarlab.cli import main
from cifarlab.errors import ConfigError
from cifarlab.sweeps import SweepOptions, load_sweep
from cifarlab.sweeps.study import open_study

GRID = {
    "name": "tiny",
    "base": {"preset": "seed"},
    "fixed": {"train.epochs": 1, "data.val_size": 50},
    "search": {"grid": {"optim.lr": [0.01, 0.001], "train.batch_size": [25, 50]}},
}


def _write(tmp_path, spec: dict, name: str = "sweep.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def test_grid_expands_to_every_combination_and_repeats_count_seeds_up(tmp_path):
    spec = load_sweep(_write(tmp_path, {**GRID, "repeats": 2}))
    assert len(spec.trials) == 8
    assert [t.overrides["train.seed"] for t in spec.trials[:2]] == [0, 1]
    assert spec.trials[0].group == spec.trials[1].group == "lr=0.01,batch_size=25"
    assert spec.trials[1].label == "lr=0.01,batch_size=25-seed1"


def test_dry_run_prints_every_trial_with_its_settings_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(_write(tmp_path, GRID)), "--dry-run", "--no-probe", "--out", str(out),
                 "--max-train-images", "100"]) == 0
    listed = yaml.safe_load(capsys.readouterr().out)
    assert listed["trials"] == 4 and len(listed["runs"]) == 4
    assert listed["runs"][3]["set"] == {"train.epochs": 1, "data.val_size": 50, "optim.lr": 0.001,
                                        "train.batch_size": 50, "data.max_train_images": 100}
    assert main(["sweep", "seed-table", "--dry-run", "--no-probe", "--json", "--out", str(out)]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 15
    assert not out.exists()


def test_sampler_space_is_validated_at_both_ends(tmp_path, capsys):
    spec = {**GRID, "search": {"sampler": "tpe", "trials": 3,
                               "space": {"optim.lr": {"float": [1e-4, 1e-2], "log": True},
                                         "optim.name": {"choice": ["adam", "sgd"]}}}}
    assert load_sweep(_write(tmp_path, spec)).budget == 3
    assert main(["sweep", str(_write(tmp_path, spec)), "--dry-run", "--no-probe"]) == 0
    assert "space" in yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("change, message", [
    ({"fixed": {"optim.lrr": 1}}, "unknown key 'optim.lrr' (did you mean 'optim.lr'?)"),
    ({"search": {"grid": {}}}, "key 'search.grid' must list each swept key with its values, got {}"),
    ({"search": {"grid": {"optim.lr": []}}}, "key 'search.grid.optim.lr' must not be empty, got []"),
    ({"search": {"grid": {"optim.lr": [1]}, "trials": 3}}, "unknown key 'search.trials'; keys of search: grid"),
    ({"search": {"grid": {"optim.lr": [1]}, "runs": []}}, "key 'search' needs exactly one of grid, runs or sampler"),
    ({"search": None}, "key 'search' must be a mapping, got None"),
    ({"search": {"grid": {"train.batch_size": ["big"]}}}, "key 'train.batch_size' must be an integer, got 'big'"),
    ({"search": {"runs": [{"label": "a", "set": {"optim.name": "rmsprop"}}]}},
     "trial 'a': key 'optim.name' must be one of"),
    ({"search": {"runs": [{"set": {}, "colour": 1}]}},
     "unknown key 'search.runs[0].colour'; keys of search.runs[0]: label, set, writeup_accuracy"),
    ({"search": {"runs": [{"label": "a"}, {"label": "a"}]}}, "key 'search.runs[1].label': 'a' is used twice"),
    ({"search": {"runs": [{"writeup_accuracy": 95}]}}, "key 'search.runs[0].writeup_accuracy' must be in [0, 1]"),
    ({"search": {"sampler": "tpe", "trials": 3, "space": {"optim.lr": {"float": [-1, 1]}}}},
     "key 'search.space.optim.lr': key 'optim.lr' must be positive"),
    ({"search": {"sampler": "grid", "trials": 3, "space": {"optim.lr": {"float": [1, 2]}}}},
     "key 'search.sampler' must be tpe or random"),
    ({"search": {"sampler": "tpe", "trials": 3, "space": {"optim.lr": {"flaot": [1, 2]}}}},
     "unknown key 'search.space.optim.lr.flaot' (did you mean 'search.space.optim.lr.float'?); "
     "keys of search.space.optim.lr: float, int, choice, log"),
    ({"search": {"sampler": "tpe", "trials": 3, "space": {"optim.lr": {"float": [2, 1]}}}},
     "key 'search.space.optim.lr.float' must be [low, high] with low < high, got [2.0, 1.0]"),
    ({"search": {"sampler": "tpe", "trials": 3, "space": {"optim.lr": {"float": [0, 1], "log": True}}}},
     "key 'search.space.optim.lr.log' needs low > 0"),
    ({"search": {"sampler": "tpe", "trials": 3}}, "missing key 'search.space'"),
    ({"search": {"sampler": "tpe", "trials": 0, "space": {"optim.lr": {"float": [1, 2]}}}},
     "key 'search.trials' must be positive, got 0"),
    ({"fixed": {"optim.lr": 0.1}}, "key 'optim.lr' is both in 'fixed' and searched"),
    ({"repeats": 0}, "key 'repeats' must be positive, got 0"),
    ({"metric": "test_acc"}, "key 'metric' must be val_acc"),
    ({"base": {"preset": "seed", "config": "x.yaml"}}, "key 'base' takes a preset or a config file, not both"),
    ({"colour": "red"}, "unknown key 'colour'; keys: name, description, base, fixed, search, scale, repeats, pruner"),
    ({"fixd": {}}, "unknown key 'fixd' (did you mean 'fixed'?)"),
    ({"fixed": {"data.val_size": 0}}, "data.val_size must be > 0"),
])
def test_bad_sweep_files_fail_in_one_line_before_anything_runs(tmp_path, capsys, change, message):
    path = _write(tmp_path, {**GRID, **change})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(path) in err and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--epochs", "2", "--epochs-scale", "0.5"], "--epochs and --epochs-scale both set the epochs"),
    (["--max-train-images", "5"], "command line --max-train-images 5: key 'data.max_train_images' must be at least"),
    (["--storage", "nosuchdb://x"], "--storage nosuchdb://x: cannot open"),
    (["--storage", "postgresql://me:secret@localhost/db"], "--storage postgresql://me:***@localhost/db: cannot open"),
    (["--storage", "sqlite://"], "an in-memory database cannot be shared"),
    (["--workers", "0"], "--workers must be at least 1"),
])
def test_bad_options_fail_in_one_line_before_anything_runs(tmp_path, capsys, args, message):
    assert main(["sweep", str(_write(tmp_path, GRID)), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "secret" not in err
    assert not (tmp_path / "out").exists()


def test_a_study_started_with_other_settings_is_not_continued(tmp_path):
    path, url = _write(tmp_path, GRID), f"sqlite:///{tmp_path / 'study.db'}"
    open_study(load_sweep(path), url)
    open_study(load_sweep(path), url)  # the same sweep again: fine
    with pytest.raises(ConfigError, match="was started with other settings .trial 0 'lr=0.01,batch_size=25' "
                                          "differs.*--out DIR"):
        open_study(load_sweep(path, SweepOptions(epochs=3)), url)


def test_flags_keywords_and_worker_argv_all_come_from_the_options_table(tmp_path):
    import argparse
    import dataclasses
    import inspect

    import cifarlab
    from cifarlab.sweeps.options import add_arguments, from_args

    names = [f.name for f in dataclasses.fields(SweepOptions)]
    # The options docs/sweeps.md's table documents for `cifarlab sweep` (less --dry-run, --no-probe and --json, which
    # only the command line has) with the defaults it states, written here rather than read from SweepOptions.
    documented = {"data": None, "max_train_images": None, "max_test_images": None, "epochs": None,
                  "epochs_scale": None, "val_size": None, "repeats": None, "out_dir": None, "storage": None,
                  "workers": 1, "devices": None, "artifacts": None, "storage_patience": 300, "verbose": False}
    keywords = list(inspect.signature(cifarlab.sweep).parameters.values())[1:]
    assert {p.name: p.default for p in keywords} == documented
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in keywords)
    assert [p.name for p in keywords] == names and SweepOptions(**documented) == SweepOptions()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_args(parser.parse_args([])) == SweepOptions()  # the same defaults
    options = SweepOptions(data=str(tmp_path), max_train_images=100, epochs_scale=0.5, out_dir=str(tmp_path / "o"),
                           storage="postgresql://u:secret@h/db", workers=2, artifacts=str(tmp_path / "nfs"),
                           storage_patience=5.0, verbose=True)
    argv = options.argv()
    assert argv[argv.index("--out") + 1] == str(tmp_path / "o")  # the flag `cifarlab train` has too
    assert "secret" not in " ".join(argv)  # the storage URL travels in the environment, never on a command line
    assert from_args(parser.parse_args(argv)) == dataclasses.replace(options, storage=None, workers=1)
    assert options.argv(plan_only=True) == ["--data", str(tmp_path), "--max-train-images", "100",
                                            "--epochs-scale", "0.5"]


def test_settings_at_their_defaults_leave_the_plan_unchanged(tmp_path):
    # What a config key added in a later version looks like to a study started before it: present, at its default.
    at_defaults = {**GRID, "fixed": {**GRID["fixed"], "train.resolution": [], "train.grad_clip": 0.0}}
    plan = load_sweep(_write(tmp_path, GRID)).plan()
    assert load_sweep(_write(tmp_path, at_defaults, "defaults.yaml")).plan() == plan
    changed = {**GRID, "fixed": {**GRID["fixed"], "train.resolution": [24, 32]}}
    assert load_sweep(_write(tmp_path, changed, "changed.yaml")).plan() != plan


def test_the_laptop_table_is_seed_table_plus_one_rule_applied_to_every_row():
    full, laptop = load_sweep("seed-table"), load_sweep("seed-table-laptop")
    assert laptop.name == "seed-table-laptop" and laptop.repeats == 2 and len(laptop.trials) == 30
    for row in full.trials:
        mine = [t for t in laptop.trials if t.group == row.label]
        assert [t.overrides.get("train.seed") for t in mine] == [0, 1]
        assert mine[0].writeup_accuracy == row.writeup_accuracy
        big, small = full.compose(row.overrides), laptop.compose(mine[0].overrides)
        # the row's own settings are untouched...
        for key in ("epochs", "batch_size"):
            assert getattr(small.train, key) == getattr(big.train, key)
        assert (small.optim.name, small.optim.lr, small.optim.weight_decay) == \
            (big.optim.name, big.optim.lr, big.optim.weight_decay)
        assert {k: v for k, v in small.model.args.items() if k != "divisor"} == big.model.args
        # ...and the rule is the same for every row
        assert small.model.args["divisor"] == 8
        assert (small.data.max_train_images, small.data.val_size) == (2500, 1000)
        assert small.data.max_test_images is None  # the whole test set


def test_from_takes_the_other_files_keys_and_scale_comes_after_each_trials_own(tmp_path):
    parent = _write(tmp_path, {**GRID, "search": {"runs": [
        {"label": "a", "set": {"model.name": "seedlike", "model.args": {"conv": 3, "fc": 1}}}]}}, "parent.yaml")
    child = _write(tmp_path, {"from": parent.name, "scale": {"model.args.divisor": 4, "train.epochs": 3}},
                   "child.yaml")
    spec = load_sweep(child)
    assert spec.name == "child" and spec.fixed == GRID["fixed"]  # its own name: another study
    cfg = spec.compose(spec.trials[0].overrides)
    assert cfg.model.args == {"conv": 3, "fc": 1, "divisor": 4} and cfg.train.epochs == 3  # over fixed's 1
    assert spec.trials[0].overrides == {"model.name": "seedlike", "model.args": {"conv": 3, "fc": 1}}  # not mutated
    # the command line still has the last word
    assert load_sweep(child, SweepOptions(epochs=5)).compose(spec.trials[0].overrides).train.epochs == 5


@pytest.mark.parametrize("child, message", [
    ({"from": "nowhere"}, "key 'from': nowhere: no such sweep file or shipped sweep"),
    ({"from": "seed-table", "scale": {"model.args.divisor": 0}},
     "model 'seedlike': argument 'divisor' must be positive, got 0"),
    ({"from": "seed-table", "scale": {"optim.lrr": 1}}, "scale: unknown key 'optim.lrr'"),
])
def test_a_bad_from_or_scale_is_one_line_naming_the_file(tmp_path, capsys, child, message):
    path = _write(tmp_path, child, "child.yaml")
    assert main(["sweep", str(path), "--dry-run", "--no-probe"]) == 2
    err = capsys.readouterr().err.strip()
    assert "error: " in err and str(path) in err and message in err and len(err.splitlines()) == 1


def test_a_fault_in_the_file_named_by_from_names_that_file(tmp_path):
    parent = _write(tmp_path, {**GRID, "repeats": 0}, "parent.yaml")
    with pytest.raises(ConfigError) as info:
        load_sweep(_write(tmp_path, {"from": "parent.yaml"}, "child.yaml"))
    assert str(info.value) == f"{parent.resolve()}: key 'repeats' must be positive, got 0"


def test_from_a_file_that_itself_takes_from_is_refused(tmp_path):
    _write(tmp_path, {"from": "seed-table"}, "middle.yaml")
    with pytest.raises(ConfigError, match="middle.yaml takes its keys from another sweep in turn"):
        load_sweep(_write(tmp_path, {"from": "middle.yaml"}, "child.yaml"))


def test_dry_run_prints_each_trials_training_compute_and_a_measured_time(tmp_path, capsys):
    spec = {**GRID, "fixed": {"train.epochs": 2, "data.val_size": 1000, "data.max_train_images": 500,
                              "model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}}}
    assert main(["sweep", str(_write(tmp_path, spec)), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed)["trials"] == 4  # the costs are YAML comments: the output is still the plan
    # conv1 3->8 at 32x32: 3*9*8*1024 = 221,184 MACs; conv2 8->16, stride 2, 16x16: 8*9*16*256 = 294,912;
    # fc 16*4 -> 10: 640. Training: 6 x 516,736 MACs x 500 images x 2 epochs = 3.10 GFLOP.
    lines = [line for line in printed.splitlines() if line.startswith("# lr=")]
    assert len(lines) == 4 and all(" 0.5 " in line and " 500 " in line and "3.1 GFLOP" in line for line in lines)
    total = next(line for line in printed.splitlines() if line.startswith("# whole sweep:"))
    assert "12.4 GFLOP" in total and "here with 1 worker(s)" in total
    assert main(["sweep", str(_write(tmp_path, spec)), "--dry-run", "--no-probe", "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)["cost"]
    assert cost["train_flops"] == pytest.approx(4 * 6 * 516_736 * 500 * 2) and cost["seconds"] is None
    # 1,000 validation images after each of the 2 epochs, then all 10,000 test images, one view each
    assert [t["eval_views"] for t in cost["trials"]] == [12_000] * 4
