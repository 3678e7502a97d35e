"""TensorBoard event files, read back with TensorBoard's own reader."""

from __future__ import annotations

import builtins

import pytest

from cifarlab.errors import ConfigError
from cifarlab.training.tensorboard import TensorBoardLog, flat_hparams

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the tensorboard extra is not installed (pip install 'cifarlab[tensorboard]')")


def read_scalars(path) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(path))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_steps_epochs_and_hparams_round_trip(tmp_path):
    log = TensorBoardLog(tmp_path)
    log.steps([{"step": s, "loss": 2.0 / s, "lr": 0.1 * s} for s in range(1, 7)])
    log.epoch({"epoch": 1, "train_acc": 0.5, "val_acc": 0.4, "train_loss": 1.2, "val_loss": 1.4,
               "test_acc": None, "images_per_s": 900.0}, step=6)
    log.finish({"train": {"epochs": 1, "seed": 0}, "data": {"mean": [0.5, 0.5, 0.5], "path": None}},
               {"test_acc": 0.42, "val_acc": 0.4, "best_val_acc": 0.4, "wall_seconds": None})
    scalars = read_scalars(tmp_path)
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert scalars["train/loss"][1][1] == pytest.approx(1.0)
    assert scalars["train/lr"][5][1] == pytest.approx(0.6)
    assert scalars["accuracy/val"] == [(6, pytest.approx(0.4))]
    assert "accuracy/test" not in scalars  # not measured, not logged
    assert scalars["hparam/test_acc"][0][1] == pytest.approx(0.42)
    assert "hparam/wall_seconds" not in scalars


def test_flat_hparams_are_values_tensorboard_accepts():
    flat = flat_hparams({"optim": {"lr": 0.1, "name": "sgd"}, "data": {"mean": [0.5], "path": None},
                         "train": {"compile": False}})
    assert flat == {"optim.lr": 0.1, "optim.name": "sgd", "data.mean": "[0.5]", "data.path": "None",
                    "train.compile": False}


def test_missing_tensorboard_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ConfigError, match=r"train.tensorboard: true needs the tensorboard extra"):
        TensorBoardLog(tmp_path)
