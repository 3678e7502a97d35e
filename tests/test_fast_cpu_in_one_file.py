"""examples/fast_cpu_in_one_file.py: the fast-cpu preset written out, training the trainer's weights bit for bit."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import cifarlab
import synthetic
from cifarlab.config import load
from cifarlab.rundir import RunDir

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "fast_cpu_in_one_file.py"


def example() -> dict:
    """The script's globals, without running it."""
    return runpy.run_path(str(SCRIPT), run_name="fast_cpu_in_one_file")


def test_table_is_the_presets():
    """The script's table says what the preset says; what it hard-codes is what the preset sets."""
    hyp, cfg = example()["HYP"], load("fast-cpu")
    assert hyp["net"] == cfg.model.args and cfg.model.name == "fast"
    opt = {k: getattr(cfg.optim, k) for k in hyp["opt"] if k != "label_smoothing"}
    assert hyp["opt"] == {**opt, "label_smoothing": cfg.train.label_smoothing} and cfg.optim.name == "muon"
    assert (hyp["data"]["mean"], hyp["data"]["std"], hyp["data"]["val_size"]) == \
        (cfg.data.mean, cfg.data.std, cfg.data.val_size)
    aug = cfg.data.augment
    assert (hyp["crop_padding"], aug.flip, aug.flip_alternate, aug.cutout) == (aug.crop_padding, True, True, 0)
    train = cfg.train
    assert (hyp["epochs"], hyp["batch_size"], hyp["eval_batch_size"], hyp["tta_translate"], hyp["precision"]) == \
        (train.epochs, train.batch_size, train.eval_batch_size, train.tta_translate, train.precision)
    assert (train.tta_flip, train.val_every, train.val_tta, train.channels_last) == (True, 0, False, True)
    assert (train.ema, train.grad_clip, train.resolution, train.compile) == (0, 0, [], False)
    assert (cfg.schedule.name, cfg.schedule.peak, cfg.schedule.final) == ("onecycle", 0.0, 0.0)


@pytest.mark.slow
def test_trains_the_trainers_weights(tmp_path, capsys):
    """Three epochs (past the whitening bias's and group 1's last, both flip parities) on separable synthetic
    data: it learns, and its weights and test accuracy are exactly ``cifarlab.train``'s on the same seed."""
    archive = synthetic.make_official_archive(tmp_path / "cifar-10-python.tar.gz", 60, 20)
    model, test_acc = example()["main"](
        ["--data", str(archive), "--epochs", "3", "--val-size", "100", "--max-train-images", "512", "--seed", "3"])
    lines = capsys.readouterr().out.splitlines()
    losses = [float(line.split()[1]) for line in lines[1:4]]
    assert losses[2] < losses[0] - 0.3, lines
    assert test_acc > 0.3, lines  # chance is 0.1

    run = cifarlab.train("fast-cpu", data=cifarlab.load_dataset(archive), out_dir=tmp_path / "run", progress=False,
                         verbose=False, train__epochs=3, data__val_size=100, data__max_train_images=512,
                         train__seed=3)
    theirs, ours = load_file(run.run_dir / RunDir.WEIGHTS), model.state_dict()
    assert theirs.keys() == ours.keys()
    assert [k for k in theirs if not torch.equal(theirs[k], ours[k])] == []
    assert test_acc == run.summary["test_acc"]
