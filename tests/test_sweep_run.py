"""Sweeps end to end on a tiny synthetic dataset: a grid, repeats, a sampler, and the Python API."""

from __future__ import annotations

import csv
import json

import pytest
import synthetic
import torch
import yaml

import cifarlab
from cifarlab.cli import main
from cifarlab.config import list_presets
from cifarlab.rundir import RunDir

# A network of 2,090 parameters that separates the synthetic classes in an epoch or two.
TINY = {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.epochs": 2,
        "train.batch_size": 25, "data.val_size": 50}
GRID = {"name": "tiny", "base": {"preset": "seed"}, "fixed": TINY,
        "search": {"grid": {"optim.lr": [0.003, 0.0003], "optim.name": ["adam", "sgd"]}}}
SHIPPED_PRESETS = list_presets()


@pytest.fixture(autouse=True)
def one_thread():
    """Networks this small train faster on one thread than on several contending for a busy CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _table(printed: str) -> list[str]:
    """The lines of the printed table: from its header to the first blank line."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("label "))
    return lines[start:lines.index("", start)]


def _write(tmp_path, spec: dict):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_a_4_trial_grid_finishes_with_one_row_per_trial(tiny_imagefolder, tmp_path, capsys):
    out, path = tmp_path / "grid", _write(tmp_path, GRID)
    assert main(["sweep", str(path), "--data", str(tiny_imagefolder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sum(line.startswith("[") and "/4] " in line for line in printed.splitlines()) == 4  # one per trial
    table = _table(printed)
    assert len(table) == 2 + 4 and "test acc" not in table[0]  # test accuracy: once, for the best trial only
    assert printed.count("test accuracy") == 1
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["label"] for r in rows} == {"lr=0.003,name=adam", "lr=0.003,name=sgd",
                                                              "lr=0.0003,name=adam", "lr=0.0003,name=sgd"}
    assert [float(r["val acc"]) for r in rows] == sorted((float(r["val acc"]) for r in rows), reverse=True)
    assert {r["arch"] for r in rows} == {"2-1"} and synthetic.statuses(rows) == {"completed"}
    best = json.loads((out / "best.json").read_text())
    assert best["val acc"] == float(rows[0]["val acc"])
    assert "| label |" in (out / "results.md").read_text()
    for plot in ("trials.png", "parameters.png", "best_curves.png"):
        assert (out / "plots" / plot).stat().st_size > 10_000
    # the same command again finds every trial done: nothing trains, the table is printed again
    assert main(["sweep", str(path), "--data", str(tiny_imagefolder), "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert "/4] " not in again and _table(again) == table
    assert len(list((out / "trials").iterdir())) == 4


@pytest.mark.slow
def test_repeats_report_mean_and_spread(tiny_imagefolder, tmp_path, capsys):
    spec = {**GRID, "search": {"runs": [{"label": "fast", "set": {"optim.lr": 0.003}},
                                        {"label": "slow", "set": {"optim.lr": 0.0003}, "writeup_accuracy": 0.5}]}}
    out = tmp_path / "rep"
    assert main(["sweep", str(_write(tmp_path, spec)), "--data", str(tiny_imagefolder), "--out", str(out),
                 "--repeats", "2"]) == 0
    printed = capsys.readouterr().out
    assert "± " in printed and "mean ± standard deviation over seeds" in printed
    assert "writeup acc" in printed and "50.00%" in printed
    assert "0,1" in printed  # both seeds of each configuration
    with open(out / "results.csv") as f:
        assert sorted(r["label"] for r in csv.DictReader(f)) == ["fast-seed0", "fast-seed1", "slow-seed0",
                                                                  "slow-seed1"]
    assert "± " in (out / "results.md").read_text()


@pytest.mark.slow
def test_a_random_search_from_python(tiny_imagefolder, tmp_path):
    spec = {**GRID, "search": {"sampler": "random", "trials": 3,
                               "space": {"optim.lr": {"float": [1e-4, 1e-2], "log": True}}}, "pruner": "median"}
    result = cifarlab.sweep(_write(tmp_path, spec), data=tiny_imagefolder, out_dir=tmp_path / "rand")
    assert len(result.rows) == 3 and len({r["lr"] for r in result.rows}) == 3
    assert result.best["val acc"] == max(r["val acc"] for r in result.rows)
    assert "its test accuracy" in result.best_summary()
    assert len(result.table("csv").splitlines()) == 4


@pytest.mark.slow
def test_report_and_runs_of_the_sweep_folder_find_trials_kept_in_artifacts(tiny_imagefolder, tmp_path, capsys):
    spec = {**GRID, "search": {"runs": [{"label": "a", "set": {"optim.lr": 0.003}},
                                        {"label": "b", "set": {"optim.lr": 0.0003}}]}}
    out, shared = tmp_path / "sweep", tmp_path / "nfs"
    assert main(["sweep", str(_write(tmp_path, spec)), "--data", str(tiny_imagefolder), "--out", str(out),
                 "--artifacts", str(shared), "--epochs", "1"]) == 0
    assert not (out / "trials").exists() and [p.name for p in shared.iterdir()] == ["tiny"]  # the sweep's name
    assert len(list((shared / "tiny").iterdir())) == 2
    assert main(["report", str(out)]) == 0  # redrawn from the folder, not from the sweep's own rows
    assert "2 trials (2 completed)" in (out / "report.html").read_text()
    capsys.readouterr()
    assert main(["runs", str(out), "--format", "json"]) == 0
    assert sorted(r["label"] for r in json.loads(capsys.readouterr().out)) == ["a", "b"]


def test_an_outage_hidden_by_another_error_is_raised_as_the_outage():
    from cifarlab.sweeps.study import StorageOutage, unmasked_outages

    def optuna_masking_it():  # Optuna's _run_trial: its finally block fails while the outage propagates
        try:
            raise StorageOutage("--storage db: unreachable for 3 s")
        finally:
            raise UnboundLocalError("cannot access local variable 'updated_state'")

    with pytest.raises(StorageOutage, match="unreachable for 3 s"):
        with unmasked_outages():
            optuna_masking_it()
    with pytest.raises(UnboundLocalError):  # any other error passes through unchanged
        with unmasked_outages():
            raise UnboundLocalError("a bug of its own")


@pytest.mark.slow
@pytest.mark.parametrize("preset", SHIPPED_PRESETS)
def test_every_shipped_preset_sweeps_trains_evaluates_and_reports(preset, tiny_imagefolder, tmp_path, capsys):
    # fast-cpu validates only after its last epoch (val_every 0): epochs without a val acc must not reach Optuna
    spec = {"name": f"on-{preset}", "base": {"preset": preset},
            "fixed": {"train.epochs": 2, "train.batch_size": 20, "data.val_size": 20, "data.max_train_images": 40,
                      "data.max_test_images": 20, "train.eval_batch_size": 20},
            "search": {"grid": {"train.seed": [0, 1]}}}
    out = tmp_path / "out"
    assert main(["sweep", str(_write(tmp_path, spec)), "--data", str(tiny_imagefolder), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err and "failed" not in printed.out
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # 40 images and 2 epochs may leave a big network at chance, which the table says; it still completes
    assert len(rows) == 2 and all(r["status"].startswith("completed") for r in rows)
    assert all(0 <= float(r["val acc"]) <= 1 for r in rows)
    # a trial is an ordinary run: `evaluate` scores it again as its own final test pass did, `report` draws it
    run = sorted((out / "trials").iterdir())[0]
    assert main(["evaluate", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["num_images"] == 20 and evaluated["accuracy"] == RunDir(run).summary()["test_acc"]
    saved = RunDir(run).predictions()  # the trainer's final test pass: the loss is -log p(true class), averaged
    true_class = saved["probs"].double().gather(1, saved["label"][:, None])
    assert evaluated["loss"] == pytest.approx(float(-true_class.log().mean()), rel=1e-4)
    page = tmp_path / "run.html"
    assert main(["report", str(run), "--out", str(page)]) == 0 and "Per-class precision" in page.read_text()


@pytest.mark.slow
def test_a_trial_that_raises_fails_alone_in_one_line_and_is_not_retried(tiny_imagefolder, tmp_path, capsys,
                                                                        monkeypatch):
    real = cifarlab.train

    def train(cfg=None, **kwargs):  # a bug that only the sgd trials hit
        if cfg is not None and cfg.optim.name == "sgd":
            raise RuntimeError("boom in the optimizer\nsecond line of the message")
        return real(cfg, **kwargs)

    monkeypatch.setattr(cifarlab, "train", train)
    out, path = tmp_path / "grid", _write(tmp_path, GRID)
    assert main(["sweep", str(path), "--data", str(tiny_imagefolder), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err + printed.out
    failures = [line for line in printed.out.splitlines() if "failed: RuntimeError: boom in the optimizer in" in line]
    assert len(failures) == 2 and "second line" not in printed.out
    with open(out / "results.csv") as f:
        status = {r["label"]: r["status"] for r in csv.DictReader(f)}
    assert status == {"lr=0.003,name=adam": "completed", "lr=0.0003,name=adam": "completed",
                      "lr=0.003,name=sgd": "failed", "lr=0.0003,name=sgd": "failed"}
    assert json.loads((out / "best.json").read_text())["label"].endswith("name=adam")
    assert "## Failed trials" in (out / "results.md").read_text()
    # every trial ended once: the same command again trains nothing and retries no failed trial
    assert main(["sweep", str(path), "--data", str(tiny_imagefolder), "--out", str(out)]) == 0
    assert "/4] " not in capsys.readouterr().out
