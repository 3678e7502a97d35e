"""RunDir: every file of a run directory, read back as written; damaged files are reported, not fatal."""

from __future__ import annotations

import pytest
import torch

from cifarlab.config import load
from cifarlab.errors import ConfigError
from cifarlab.rundir import RunDir


def test_what_is_written_is_read_back(tmp_path):
    rd = RunDir(tmp_path)
    assert not rd.exists() and rd.summary() == {} and rd.metrics() == [] and rd.predictions() is None
    cfg = load("seed", train__epochs=3)
    rd.write_config(cfg)
    rd.write_summary({"status": "running", "arch": {"conv": 5}})
    rd.append_metrics([{"type": "step", "epoch": 1, "step": 1, "loss": 2.0}, {"type": "epoch", "epoch": 1}])
    rd.append_metrics([{"type": "epoch", "epoch": 2}])
    assert rd.exists() and rd.config() == cfg and rd.summary()["arch"] == {"conv": 5}
    assert [r["epoch"] for r in rd.epochs()] == [1, 2] and [r["loss"] for r in rd.steps()] == [2.0]
    rd.truncate_metrics(1)
    assert [r["epoch"] for r in rd.epochs()] == [1]


def test_a_corrupted_metrics_line_is_skipped_with_a_warning_naming_file_and_line(tmp_path):
    rd = RunDir(tmp_path)
    (tmp_path / RunDir.METRICS).write_text(
        '{"type": "epoch", "epoch": 1}\n{"type": "ep\n[1, 2]\n{"type": "epoch", "epoch": 2}\n')
    with pytest.warns(UserWarning) as caught:
        assert [r["epoch"] for r in rd.epochs()] == [1, 2]
    assert [str(w.message).split(": ")[0] for w in caught] == [f"{tmp_path / RunDir.METRICS}:2",
                                                                f"{tmp_path / RunDir.METRICS}:3"]


def test_unreadable_summary_is_empty_and_a_bad_config_names_its_file(tmp_path):
    rd = RunDir(tmp_path)
    (tmp_path / RunDir.SUMMARY).write_text("{torn")
    assert rd.summary() == {}
    (tmp_path / RunDir.CONFIG).write_text("train: {epochs: many}\n")
    with pytest.raises(ConfigError, match=str(tmp_path / RunDir.CONFIG)):
        rd.config()


def test_predictions_round_trip_with_their_dtypes(tmp_path):
    rd = RunDir(tmp_path)
    probs = torch.rand(4, 10, dtype=torch.float64).softmax(1)
    rd.write_predictions(torch.tensor([3, 0, 7, 9]), torch.tensor([1, 2, 3, 4], dtype=torch.int32), probs)
    got = rd.predictions()
    assert got["index"].tolist() == [3, 0, 7, 9] and got["label"].dtype == torch.int64
    assert got["probs"].dtype == torch.float32 and torch.allclose(got["probs"], probs.float())
