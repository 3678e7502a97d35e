"""`cifarlab evaluate RUN --corruptions`: the table, the JSON, robustness.json and the plot."""

from __future__ import annotations

import json

import pytest

import cifarlab
from cifarlab.cli import main
from cifarlab.evaluation.corruptions import CORRUPTIONS
from cifarlab.evaluation.robustness import RobustnessReport, evaluate_corruptions
from cifarlab.errors import ConfigError
from cifarlab.rundir import RunDir


def test_report_means_and_table():
    accuracy = {"contrast": {"1": 0.8, "2": 0.6}, "pixelate": {"1": 0.7, "2": 0.5}}
    ece = {"contrast": {"1": 0.1, "2": 0.2}, "pixelate": {"1": 0.3, "2": 0.4}}
    report = RobustnessReport(accuracy, ece, clean=0.9, clean_ece=0.05, num_images=100, seed=0, seconds=1.0)
    assert report.mean == pytest.approx(0.65) and report.mean_ece == pytest.approx(0.25)
    table = report.format_table()
    assert "contrast" in table and "70.00%" in table  # contrast's own mean
    assert "mean corruption accuracy 65.00%" in table and "clean accuracy 90.00%" in table
    assert set(report.to_dict()) >= {"corruptions", "mean", "clean", "ece", "clean_ece"}


def test_unknown_corruption_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown corruption 'fog'"):
        evaluate_corruptions(tmp_path, names=["fog"])


@pytest.mark.slow
def test_cli_corruptions_on_a_tiny_trained_run(tiny_imagefolder, tmp_path, capsys):
    run = tmp_path / "run"
    cifarlab.train("fast-cpu", out_dir=run, data=cifarlab.load_dataset(tiny_imagefolder), progress=False,
                   verbose=False, data__val_size=50, train__epochs=1,
                   train__tta_flip=False, train__tta_translate=0)  # one view, not six: 51 test passes follow
    data = str(tiny_imagefolder)  # the run was given loaded data, so it records no path
    clean = json.loads(RunDir(run).path.joinpath(RunDir.SUMMARY).read_text())["test_acc"]

    assert main(["evaluate", str(run), "--data", data, "--corruptions", "--max-test-images", "20",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["corruptions"]) == list(CORRUPTIONS)
    assert all(list(v) == ["1", "2", "3", "4", "5"] for v in result["corruptions"].values())
    values = [a for v in result["corruptions"].values() for a in v.values()]
    assert all(0.0 <= a <= 1.0 for a in values)
    assert result["mean"] == pytest.approx(sum(values) / len(values))
    assert result["num_images"] == 20 and 0.0 <= result["clean_ece"] <= 1.0
    assert RunDir(run).robustness() == result  # saved as printed
    assert (run / "plots" / "robustness.png").stat().st_size > 0

    # All 100 test images: the clean accuracy is the one training measured.
    assert main(["evaluate", str(run), "--data", data, "--corruptions", "--corruption", "gaussian_noise"]) == 0
    table = capsys.readouterr().out
    assert "mean corruption accuracy" in table and f"clean accuracy {clean:.2%}" in table
    assert "gaussian_noise" in table and "sev 5" in table and "contrast" not in table

    assert main(["evaluate", str(run), "--corruptions", "--split", "val"]) == 2
    assert "--corruptions corrupts the test images" in capsys.readouterr().err
