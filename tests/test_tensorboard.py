"""TensorBoard event files, read back with TensorBoard's own reader."""

from __future__ import annotations

import builtins

import pytest
from skips import require_module

from cifarlab.errors import ConfigError
from cifarlab.training.tensorboard import TensorBoardLog, flat_hparams

event_accumulator = require_module("tensorboard.backend.event_processing.event_accumulator", "tensorboard")


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


@pytest.mark.slow
def test_training_with_tensorboard_writes_readable_events_and_resumes_without_duplicates(tiny_imagefolder, tmp_path):
    import cifarlab

    data = cifarlab.load_dataset(tiny_imagefolder, progress=False)
    kw = dict(data=data, progress=False, verbose=False, data__val_size=50, data__max_train_images=200,
              train__batch_size=50, train__epochs=2, train__tensorboard=True)
    result = cifarlab.train("fast-cpu", out_dir=tmp_path / "straight", **kw)
    scalars = read_scalars(result.run_dir)
    assert len(scalars["train/loss"]) == len(scalars["train/lr"]) == 8  # 2 epochs x 200 images / batch 50
    assert [s for s, _ in scalars["accuracy/train"]] == [4, 8]  # at the step each epoch ended on
    assert scalars["accuracy/val"][-1][0] == 8  # validated at least after the last epoch
    assert scalars["train/lr"][-1][1] < scalars["train/lr"][0][1]  # fast-cpu's rate decays to zero
    assert scalars["hparam/test_acc"][0][1] == pytest.approx(result.summary["test_acc"])

    def stop_after_first_epoch(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cifarlab.train("fast-cpu", out_dir=tmp_path / "resumed", callbacks=[stop_after_first_epoch], **kw)
    cifarlab.train(resume=tmp_path / "resumed", data=data, progress=False, verbose=False)
    resumed = read_scalars(tmp_path / "resumed")
    assert [s for s, _ in resumed["train/loss"]] == list(range(1, 9))
    assert [s for s, _ in resumed["accuracy/train"]] == [4, 8]


def test_tensorboard_option_without_the_package_stops_before_any_work(tmp_path, monkeypatch, capsys):
    import cifarlab.training.trainer as trainer
    from cifarlab.cli import main

    def missing():
        raise ConfigError("train.tensorboard: true needs the tensorboard extra: pip install 'cifarlab[tensorboard]'")

    monkeypatch.setattr(trainer, "require_tensorboard", missing)
    assert main(["train", "--preset", "seed", "--data", str(tmp_path / "nowhere"), "--set", "train.tensorboard=true",
                 "--out", str(tmp_path / "run")]) == 2
    assert "needs the tensorboard extra" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
