"""Expected calibration error and reliability bins on hand-built predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cifarlab.evaluation.calibration import expected_calibration_error, reliability_bins


def _predictions(groups: list[tuple[float, int, int]], classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels from ``(confidence, images, correct)`` groups.

    Every image predicts class 0 with probability ``confidence`` (the rest spread
    evenly); the first ``correct`` images of a group are labelled 0, the others 1.
    """
    probs, labels = [], []
    for confidence, images, correct in groups:
        row = np.full(classes, (1 - confidence) / (classes - 1))
        row[0] = confidence
        probs += [row] * images
        labels += [0] * correct + [1] * (images - correct)
    return np.array(probs), np.array(labels)


def test_perfectly_calibrated_predictions_have_zero_ece():
    # Each group is right exactly as often as it is confident.
    probs, labels = _predictions([(0.3, 20, 6), (0.55, 20, 11), (0.8, 20, 16), (0.95, 20, 19)])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_miscalibrated_predictions_give_the_hand_computed_ece():
    # 10 images at 0.95 with 5 right: gap 0.45; 30 at 0.65 with 27 right (0.9): gap 0.25.
    # ECE = 10/40 * 0.45 + 30/40 * 0.25 = 0.1125 + 0.1875 = 0.3
    probs, labels = _predictions([(0.95, 10, 5), (0.65, 30, 27)])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.3)


def test_reliability_bins_place_each_group_in_its_bin():
    probs, labels = _predictions([(0.95, 10, 5), (0.65, 30, 27)])
    table = reliability_bins(probs, labels, bins=10)
    assert len(table["confidence"]) == len(table["accuracy"]) == len(table["count"]) == 10
    assert len(table["edges"]) == 11 and table["edges"][0] == 0.0 and table["edges"][-1] == 1.0
    assert sum(table["count"]) == 40
    assert table["count"][9] == 10 and table["count"][6] == 30  # (0.9, 1.0] and (0.6, 0.7]
    assert table["confidence"][9] == pytest.approx(0.95) and table["accuracy"][9] == pytest.approx(0.5)
    assert table["confidence"][6] == pytest.approx(0.65) and table["accuracy"][6] == pytest.approx(0.9)
    assert all(type(v) is float for v in table["confidence"] + table["accuracy"])
    assert all(type(v) is int for v in table["count"])


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10) * 0.3, size=500).astype(np.float32)
    labels = rng.integers(0, 10, 500)
    from_numpy = reliability_bins(probs, labels)
    from_torch = reliability_bins(torch.from_numpy(probs), torch.from_numpy(labels))
    assert from_numpy["count"] == from_torch["count"]
    for key in ("confidence", "accuracy"):
        assert from_numpy[key] == pytest.approx(from_torch[key])
    assert from_numpy["ece"] == pytest.approx(from_torch["ece"])
    assert isinstance(expected_calibration_error(torch.from_numpy(probs), torch.from_numpy(labels)), float)
    assert 0.0 < from_numpy["ece"] < 1.0


def test_a_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    probs, labels = _predictions([(0.5, 4, 2)], classes=2)
    assert reliability_bins(probs, labels, bins=2)["count"] == [4, 0]


def test_no_images_gives_nan_and_bad_shapes_are_rejected():
    assert math.isnan(expected_calibration_error(np.zeros((0, 10)), np.zeros(0)))
    with pytest.raises(ValueError, match="labels"):
        expected_calibration_error(np.full((3, 10), 0.1), np.zeros(4))
    with pytest.raises(ValueError, match="bins"):
        reliability_bins(np.full((3, 10), 0.1), np.zeros(3), bins=0)


def test_every_evaluation_report_carries_its_ece():
    from cifarlab.evaluation.metrics import report_from_logits

    torch.manual_seed(0)
    logits, labels = torch.randn(200, 10) * 3, torch.randint(0, 10, (200,))
    report = report_from_logits(logits, labels, [f"c{i}" for i in range(10)], "test")
    expected = expected_calibration_error(logits.softmax(1), labels)
    assert report.ece == pytest.approx(expected) and expected > 0.3  # random labels, confident logits
    assert report.to_dict()["ece"] == report.ece
    assert f"ECE {expected:.2%}" in report.format_table()
