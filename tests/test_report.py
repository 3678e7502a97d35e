"""The HTML report: every section of a run's and a sweep's page, and pages for what is missing or broken."""

from __future__ import annotations

import base64
import io
import math
import re
import shutil
import warnings

import numpy as np
import pytest
import synthetic
import torch
from PIL import Image
from report_fixtures import make_run, make_sweep

import cifarlab
from cifarlab.cli import main
from cifarlab.data import load_dataset
from cifarlab.errors import ConfigError
from cifarlab.evaluation.calibration import expected_calibration_error
from cifarlab.evaluation.metrics import confusion_matrix, per_class_scores, wilson_interval
from cifarlab.reporting.html import report
from cifarlab.reporting.html import run as run_report
from cifarlab.rundir import RunDir


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """An ImageFolder tree whose test set has 10 images per class, as the hand-made runs assume."""
    return synthetic.make_imagefolder(tmp_path_factory.mktemp("data"), 6, 10)


@pytest.fixture(scope="module")
def done(tmp_path_factory, data):
    """A completed run and its page, drawn once for the tests that only read it."""
    run = make_run(tmp_path_factory.mktemp("done") / "run", data)
    return run, report(run.path).html


def _images(page: str) -> list[tuple[str, bytes]]:
    """Every ``<img>``'s class and decoded bytes; fails on an image that is not an inline PNG."""
    found = []
    for css, src in re.findall(r'<img class="([^"]*)" alt="[^"]*" src="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,"), src[:60]
        found.append((css, base64.b64decode(src.split(",", 1)[1])))
    assert len(found) == page.count("<img "), "an <img> without an inline PNG"
    return found


def _section(page: str, title: str) -> str:
    match = re.search(rf"<h2>{re.escape(title)}</h2>(.*?)</section>", page, re.S)
    assert match, f"no section {title!r}"
    return match.group(1)


def _no_failed_sections(page: str) -> None:
    assert "could not be drawn" not in page
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "duplicate element ids"


# --------------------------------------------------------------------------- scores


def _wilson_by_hand(correct: int, total: int) -> tuple[float, float]:
    """The expected interval from Wilson's formula (1927), not from the code under test: with z the normal
    distribution's 97.5% quantile, (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    z, p, n = 1.959963984540054, correct / total, total
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize("correct, total", [(0, 10), (10, 10), (1, 3), (74, 100), (26, 100), (9_000, 10_000)])
def test_wilson_interval_is_wilsons_formula(correct, total):
    assert wilson_interval(correct, total) == pytest.approx(_wilson_by_hand(correct, total), abs=1e-12)


def test_wilson_interval_of_84_in_100_worked_by_hand():
    # z^2/n = 3.841459/100; centre (0.84 + 0.019207) / 1.038415 = 0.827421; the half-width
    # 1.959964 * sqrt(0.1344/100 + 3.841459/40000) / 1.038415 = 0.074376 / 1.038415 = 0.071625.
    low, high = wilson_interval(84, 100)
    assert (round(low, 4), round(high, 4)) == (0.7558, 0.8990)


def test_wilson_interval_of_no_images_is_nan():
    assert all(np.isnan(wilson_interval(0, 0)))


def test_per_class_scores_from_a_hand_built_confusion_matrix():
    # Rows the true class, columns the predicted one.
    matrix = np.array([[2, 1, 0],
                       [1, 1, 0],
                       [1, 0, 0]])
    scores = per_class_scores(matrix)
    # Class 0: 2 right of 4 predicted 0 (column sum 2+1+1) and of 3 truly 0 (row sum 2+1+0):
    # precision 2/4, recall 2/3, F1 = 2 * (1/2 * 2/3) / (1/2 + 2/3) = (2/3) / (7/6) = 4/7.
    assert scores[0] == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7, "support": 3})
    # Class 1: 1 right of 2 predicted (1+1+0) and of 2 true (1+1+0): 1/2, 1/2, F1 1/2.
    assert scores[1] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert scores[2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # never predicted: 0, not NaN


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    # (true, predicted): (0,0) twice, (0,1), (1,1), (1,0), (2,0): the matrix above.
    assert confusion_matrix([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 0, 0], 3).tolist() == [[2, 1, 0], [1, 1, 0], [1, 0, 0]]


def _hand_predictions(rows: list[tuple[float, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence, predicted, label)`` rows as 10-class probabilities (the rest spread evenly) and labels."""
    probs = np.array([[(1 - conf) / 9] * 10 for conf, _, _ in rows])
    for row, (conf, predicted, _) in zip(probs, rows):
        row[predicted] = conf
    return probs, np.array([label for _, _, label in rows])


# Four images. Two at confidence 0.9, one right: bin (0.867, 0.933], accuracy 0.5, gap |0.5 - 0.9| = 0.4.
# Two at 0.5, both right: bin (0.467, 0.533], accuracy 1, gap 0.5. ECE = 2/4 * 0.4 + 2/4 * 0.5 = 0.45.
# One bin would see confidence (0.9 + 0.9 + 0.5 + 0.5) / 4 = 0.7 against accuracy 3/4: ECE 0.05.
HAND_ECE = [(0.9, 3, 3), (0.9, 3, 7), (0.5, 1, 1), (0.5, 2, 2)], 0.45


def test_ece_of_a_hand_worked_example():
    probs, labels = _hand_predictions(HAND_ECE[0])
    assert expected_calibration_error(probs, labels) == pytest.approx(HAND_ECE[1])


def test_calibration_section_shows_the_hand_worked_ece(tmp_path, data):
    probs, labels = _hand_predictions(HAND_ECE[0])
    run = make_run(tmp_path / "run", data)
    run.write_predictions(torch.arange(len(labels)), torch.from_numpy(labels), torch.from_numpy(probs).float())
    section = run_report.calibration(run_report.RunView.read(run.path))
    assert "<span class=\"big\">45.00%</span>" in section  # HAND_ECE's 0.45
    assert "Mean confidence 70.00% against accuracy 75.00%" in section


def _ece_15_bins(probs: np.ndarray, labels: np.ndarray) -> float:
    """Guo et al.'s ECE written out plainly: 15 bins (lo, hi], each weighted by its share of the images."""
    confidence, right = probs.max(1), probs.argmax(1) == labels
    total = 0.0
    for b in range(15):
        inside = (confidence > b / 15) & (confidence <= (b + 1) / 15)
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - confidence[inside].mean())
    return total


# --------------------------------------------------------------------------- a run


def test_run_report_has_every_section_with_numbers_from_the_predictions(done):
    run, page = done
    _no_failed_sections(page)
    for title in ("Overview", "Training curves", "Test accuracy", "Per-class precision, recall and F1",
                  "Confusion matrix", "Calibration", "Most confident mistakes", "Robustness to common corruptions",
                  "Configuration and environment"):
        _section(page, title)
    p = {k: v.numpy() for k, v in run.predictions().items()}
    predicted = p["probs"].argmax(1)
    correct = int((predicted == p["label"]).sum())
    low, high = _wilson_by_hand(correct, len(p["label"]))
    assert f"{correct / len(p['label']):.2%}" in _section(page, "Test accuracy")
    assert f"{low:.2%} to {high:.2%}" in _section(page, "Test accuracy")
    assert f"{_ece_15_bins(p['probs'].astype(np.float64), p['label']):.2%}" in _section(page, "Calibration")
    truck_hits = int(((predicted == 9) & (p["label"] == 9)).sum())
    precision, recall = truck_hits / (predicted == 9).sum(), truck_hits / (p["label"] == 9).sum()
    assert re.search(rf"<td>truck</td><td[^>]*>{precision:.3f}</td><td[^>]*>{recall:.3f}</td>",
                     _section(page, "Per-class precision, recall and F1"))
    header = _section(page, "Overview")
    assert "56,789" in header and "3 conv + 2 fc" in header and "250 / 50 / 100" in header
    assert "preset: seed" in _section(page, "Configuration and environment")
    assert "Not computed" in _section(page, "Robustness to common corruptions")


def test_report_is_self_contained(done):
    page = done[1]
    images = _images(page)
    assert len(images) >= 5 and all(Image.open(io.BytesIO(png)).format == "PNG" for _, png in images)
    # Nothing to fetch: no URL in any src or href, no external stylesheet or script.
    assert not re.search(r'(src|href)="(?!data:|#)[a-z]+:', page)
    assert "<link rel=\"stylesheet\"" not in page and "<script src" not in page


def test_gallery_shows_the_most_confident_mistakes_as_the_test_images_themselves(done, data):
    run, page = done
    p = {k: v.numpy() for k, v in run.predictions().items()}
    wrong = np.flatnonzero(p["probs"].argmax(1) != p["label"])
    expected = wrong[np.argsort(-p["probs"].max(1)[wrong], kind="stable")][:run_report.GALLERY_SIZE]
    gallery = _section(page, "Most confident mistakes")
    shown = [int(i) for i in re.findall(r'alt="test image (\d+)"', gallery)]
    assert shown == p["index"][expected].tolist()
    test_images = load_dataset(data, progress=False).test_images
    thumbs = [png for css, png in _images(gallery) if css == "thumb"]
    assert len(thumbs) == len(shown)
    for index, png in zip(shown, thumbs):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), test_images[index])
    first = expected[0]
    assert f"predicted <b>{synthetic.CLASSES[p['probs'][first].argmax()]}</b>" in gallery


def test_gallery_without_the_dataset_lists_the_mistakes_and_says_why(tmp_path, data):
    moved = shutil.copytree(data, tmp_path / "data")
    run = make_run(tmp_path / "run", moved)
    shutil.rmtree(moved)
    gallery = run_report.mistakes(run_report.RunView.read(run.path))
    assert "No thumbnails" in gallery and "cannot be loaded" in gallery
    assert gallery.count("<tr>") == run_report.GALLERY_SIZE + 1  # the mistakes, as a table


def test_robustness_is_shown_when_it_was_computed(tmp_path, data):
    run = make_run(tmp_path / "run", data)
    result = {"corruptions": {"gaussian_noise": {str(s): 0.8 - 0.1 * s for s in range(1, 6)},
                              "contrast": {str(s): 0.7 - 0.05 * s for s in range(1, 6)}},
              "mean": 0.4875, "clean": 0.74}
    run.write_robustness(result)
    section = run_report.robustness(run_report.RunView.read(run.path))
    assert "48.75%" in section and "74.00%" in section and "gaussian_noise" in section
    assert "severity 5" in section and len(_images(section)) == 1


def test_a_running_run_gets_a_page_that_says_what_is_missing(tmp_path, data):
    run = make_run(tmp_path / "run", data, status="running")
    page = report(run.path).html
    _no_failed_sections(page)
    assert "Status &#x27;running&#x27;" in _section(page, "Overview")
    assert "No test accuracy yet" in _section(page, "Test accuracy")
    for title in ("Per-class precision, recall and F1", "Confusion matrix", "Calibration", "Most confident mistakes"):
        assert "No test predictions" in _section(page, title) and "status: running" in _section(page, title)
    assert len(_images(_section(page, "Training curves"))) == 2


def test_a_run_that_died_before_its_first_epoch(tmp_path, data):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(cifarlab.load_config("seed", data__path=str(data)))
    page = report(run.path).html
    _no_failed_sections(page)
    assert "No summary.json" in _section(page, "Overview")
    assert "No training records" in _section(page, "Training curves")


def test_image_counts_that_were_not_recorded_show_as_dashes(tmp_path, data):
    run = make_run(tmp_path / "run", data)
    summary = run.summary()
    del summary["test_images"]
    run.write_summary(summary)
    (run.path / RunDir.CONFIG).write_text("model: [unclosed\n")  # unreadable: the validation size is unknown
    overview = _section(report(run.path).html, "Overview")
    assert "could not be drawn" not in overview
    assert "250 / - / -" in overview


def test_a_completed_run_without_predictions_keeps_its_test_accuracy(tmp_path, data):
    view = run_report.RunView.read(make_run(tmp_path / "run", data, predictions=False).path)
    assert f"{view.summary['test_acc']:.2%}" in run_report.test_accuracy(view)
    for section in (run_report.per_class, run_report.confusion, run_report.calibration, run_report.mistakes):
        assert "did not save them" in section(view)


def test_unreadable_predictions_are_named_in_the_sections_that_need_them(tmp_path, data):
    run = make_run(tmp_path / "run", data)
    (run.path / RunDir.PREDICTIONS).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    view = run_report.RunView.read(run.path)
    for section in (run_report.per_class, run_report.calibration, run_report.mistakes):
        assert "Test predictions unreadable (predictions.safetensors: " in section(view)
    assert f"{view.summary['test_acc']:.2%}" in run_report.test_accuracy(view)


def test_a_corrupted_metrics_line_is_skipped_with_a_warning_naming_it(tmp_path, data, capsys):
    run = make_run(tmp_path / "run", data, predictions=False)  # fewer pictures to draw: a quicker test
    lines = (run.path / RunDir.METRICS).read_text().splitlines()
    lines[3] = '{"type": "step", "ep'
    (run.path / RunDir.METRICS).write_text("\n".join(lines) + "\n")
    assert main(["report", str(run.path)]) == 0
    err = capsys.readouterr().err
    assert f"{run.path / RunDir.METRICS}:4" in err and err.count("warning") == 1
    page = (run.path / RunDir.REPORT).read_text()
    _no_failed_sections(page)
    assert len(_images(_section(page, "Training curves"))) == 2


def test_a_failing_section_leaves_the_others_standing(tmp_path, data, monkeypatch):
    def broken(view):
        raise RuntimeError("boom")

    monkeypatch.setattr(run_report, "SECTIONS", [("Overview", run_report.header), ("Calibration", broken)])
    with pytest.warns(UserWarning, match="'Calibration' could not be drawn: RuntimeError: boom"):
        page = report(make_run(tmp_path / "run", data).path).html
    assert "could not be drawn: RuntimeError: boom" in _section(page, "Calibration")
    assert "3 conv + 2 fc" in _section(page, "Overview")


# --------------------------------------------------------------------------- sweeps and folders


def test_sweep_report_table_plots_repeats_and_best_test_accuracy_once(tmp_path, data):
    root = make_sweep(tmp_path / "sweep", data)
    page = report(root).html
    _no_failed_sections(page)
    assert "<h1>Sweep sweep</h1>" in page
    table = _section(page, "Runs")
    headers = re.findall(r"<th>([^<]*)</th>", table)
    assert "val acc" in headers and "test acc" not in headers  # a sweep selects on validation only
    assert table.count("<tr>") == 5 and 'class="sortable"' in table and 'id="runs-table"' in table
    best = cifarlab.reporting.runs.best_row(cifarlab.collect_runs(root))
    assert f"{best['test acc']:.2%}" in _section(page, "Overview")  # the best trial's, reported once
    assert "±" in _section(page, "Repeats: mean ± std over seeds")
    assert len(_images(_section(page, "Validation accuracy against each swept setting"))) == 1
    assert len(_images(_section(page, "Learning curves of the best trials"))) == 1
    comparison = _section(page, "Beside the write-up (test accuracy)")
    assert "not for selection" in comparison and "71.00%" in comparison


def test_a_sweep_with_artifacts_elsewhere_reports_its_own_trials_there(tmp_path, data):
    shared = tmp_path / "nfs"
    make_sweep(tmp_path / "made", data)
    shutil.move(tmp_path / "made" / "trials", shared)  # where `cifarlab sweep --artifacts` puts them
    make_run(shared / "0000-other", data, sweep={"sweep": "another", "label": "other"})
    root = tmp_path / "sweep"
    root.mkdir()
    (root / "plan.yaml").write_text(f"sweep: tiny\nartifacts: {shared}\n")
    assert main(["report", str(root)]) == 0
    table = _section((root / RunDir.REPORT).read_text(), "Runs")
    assert table.count("<tr>") == 5 and "other" not in table  # the header and this sweep's four trials
    assert [r["label"] for r in cifarlab.collect_runs(root)] == ["lr=0.001,seed=0", "lr=0.001,seed=1",
                                                                  "lr=0.01,seed=0", "lr=0.01,seed=1"]


def test_a_folder_of_runs_shows_test_accuracy_and_links_each_run_report(tmp_path, data):
    for seed in (0, 1):
        make_run(tmp_path / "runs" / f"r{seed}", data, seed=seed)
    (tmp_path / "runs" / "r1" / RunDir.REPORT).write_text("<!DOCTYPE html>")  # as train leaves it
    page = report(tmp_path / "runs").html
    _no_failed_sections(page)
    assert "<h1>Runs in runs</h1>" in page
    table = _section(page, "Runs")
    assert "<th>test acc</th>" in table and '<a href="r1/report.html">report</a>' in table
    assert "Beside the write-up" not in page


def test_a_folder_without_runs_still_gets_a_page(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "page.html")]) == 0
    page = (tmp_path / "page.html").read_text()
    assert "No run directories" in page and page.startswith("<!DOCTYPE html>")


def test_report_of_a_missing_path_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip().endswith("no such run directory, sweep or folder of runs")
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="a file; give the run directory"):
        report(tmp_path / "weights.safetensors")


def test_python_api_renders_inline_in_a_notebook(tmp_path, data):
    run = make_run(tmp_path / "run", data, predictions=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean run draws without a single warning
        rep = cifarlab.report(run.path)
    inline = rep._repr_html_()
    assert "<html" not in inline and 'class="cl-report"' in inline and inline in rep.html
    assert rep.save() == run.path / RunDir.REPORT and (run.path / RunDir.REPORT).read_text() == rep.html


# --------------------------------------------------------------------------- written by train and sweep

# A network of 2,090 parameters that separates the synthetic classes in an epoch or two.
TINY = {"model.name": "seedlike", "model.args": {"conv": 2, "fc": 1, "width": 8}, "train.epochs": 1,
        "train.batch_size": 25, "data.val_size": 50}


@pytest.mark.slow
def test_train_and_sweep_leave_a_report_and_a_broken_report_never_fails_them(tiny_imagefolder, tmp_path,
                                                                               monkeypatch):
    import yaml

    spec = {"name": "two", "base": {"preset": "seed"}, "fixed": TINY,
            "search": {"runs": [{"label": "a", "set": {"optim.lr": 0.003}}, {"label": "b", "set": {"optim.lr": 3e-4}}]}}
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(spec))
    result = cifarlab.sweep(tmp_path / "two.yaml", data=str(tiny_imagefolder), out_dir=str(tmp_path / "sweep"))
    page = (result.sweep_dir / RunDir.REPORT).read_text()
    _no_failed_sections(page)
    assert _section(page, "Runs").count('">report</a>') == 2
    for trial in (result.sweep_dir / "trials").iterdir():
        trial_page = (trial / RunDir.REPORT).read_text()
        _no_failed_sections(trial_page)
        assert 'class="thumb"' in trial_page  # predictions saved and the test images found

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("cifarlab.reporting.html.report", broken)
    with pytest.warns(UserWarning, match="report.html not written: RuntimeError: boom"):
        run = cifarlab.train("seed", out_dir=tmp_path / "run", data__path=str(tiny_imagefolder), progress=False,
                             verbose=False, **{k.replace(".", "__"): v for k, v in TINY.items()})
    assert run.summary["status"] == "completed" and not (run.run_dir / RunDir.REPORT).exists()
