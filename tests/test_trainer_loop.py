"""The training loop's records: architecture facts, test predictions, EMA weights, validation every N epochs."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from safetensors.torch import load_file

import cifarlab
from cifarlab.config import load
from cifarlab.errors import ConfigError
from cifarlab.rundir import RunDir
from cifarlab.training.checkpoint import load_checkpoint

SMALL = dict(progress=False, verbose=False, train__batch_size=50, data__val_size=50, data__max_train_images=100)


@pytest.mark.slow
def test_ema_validation_every_n_epochs_predictions_and_arch_survive_a_resume(tiny_imagefolder, tmp_path):
    data = cifarlab.load_dataset(tiny_imagefolder)
    kw = dict(data=data, train__epochs=3, train__ema=0.5, train__val_every=2, **SMALL)
    straight = cifarlab.train("seed", out_dir=tmp_path / "straight", **kw)

    def stop_after_first_epoch(metrics):
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cifarlab.train("seed", out_dir=tmp_path / "killed", callbacks=[stop_after_first_epoch], **kw)
    resumed = cifarlab.train(resume=tmp_path / "killed", data=data, progress=False, verbose=False)

    weights = load_file(tmp_path / "straight" / RunDir.WEIGHTS)
    assert weights.keys() == load_file(tmp_path / "killed" / RunDir.WEIGHTS).keys()
    assert all(torch.equal(v, load_file(tmp_path / "killed" / RunDir.WEIGHTS)[k]) for k, v in weights.items())
    groups, _ = load_checkpoint(tmp_path / "straight" / RunDir.CHECKPOINT)
    assert all(torch.equal(v, groups["ema"][k]) for k, v in weights.items())  # the average is what is saved
    assert not all(torch.equal(v, groups["model"][k]) for k, v in weights.items())
    assert resumed.summary["test_acc"] == straight.summary["test_acc"]

    run = RunDir(tmp_path / "killed")
    assert [(e["epoch"], e["val_acc"] is not None) for e in run.epochs()] == [(1, False), (2, True), (3, True)]
    assert straight.summary["arch"] == {"conv": 5, "fc": 3, "activation": "ReLU", "normalization": "BN",
                                        "dropout": 0.2, "params": 2_753_546, "macs": 403_147_264}
    predictions = run.predictions()
    assert predictions["probs"].shape == (100, 10) and predictions["probs"].dtype == torch.float32
    assert torch.allclose(predictions["probs"].sum(1), torch.ones(100))
    assert sorted(predictions["index"].tolist()) == list(range(100))
    assert predictions["label"].tolist() == [int(data.test_labels[i]) for i in predictions["index"]]
    hits = (predictions["probs"].argmax(1) == predictions["label"]).float().mean().item()
    assert hits == pytest.approx(resumed.summary["test_acc"], abs=1e-6)


def test_validation_every_n_accepts_zero_and_refuses_negatives():
    assert load("seed").train.val_every == 1 and load("seed", train__val_every=0).train.val_every == 0
    with pytest.raises(ConfigError, match="train.val_every"):
        load("seed", train__val_every=-1)


def test_resolution_sets_the_training_image_side_per_epoch_and_evaluation_stays_full_size(tiny_imagefolder,
                                                                                           tmp_path, monkeypatch):
    from cifarlab.data.loader import DeviceLoader

    batch_sides, eval_sides, per_epoch = [], [], []
    original = DeviceLoader._transform

    def spy(self, x, idx):
        out = original(self, x, idx)
        (batch_sides if self.augment is not None else eval_sides).append(out.shape[-1])
        return out

    def end_of_epoch(_metrics):
        per_epoch.append(set(batch_sides))
        batch_sides.clear()

    monkeypatch.setattr(DeviceLoader, "_transform", spy)
    cifarlab.train("fast-cpu", out_dir=tmp_path / "run", data=cifarlab.load_dataset(tiny_imagefolder),
                   train__epochs=3, train__resolution=[16, 24], train__val_every=1, train__precision="fp32",
                   callbacks=[end_of_epoch], **SMALL)
    assert per_epoch == [{16}, {24}, {24}]
    assert set(eval_sides) == {32}  # validation and test images are never resized


def test_validation_without_test_time_views_keeps_them_for_the_test(tiny_imagefolder, tmp_path, monkeypatch):
    from cifarlab.evaluation import inference

    calls, original = [], inference.tta_logits

    def spy(model, x, *, flip=False, translate=0):
        calls.append((len(x), flip, translate))
        return original(model, x, flip=flip, translate=translate)

    monkeypatch.setattr(inference, "tta_logits", spy)
    cifarlab.train("fast-cpu", out_dir=tmp_path / "run", data=cifarlab.load_dataset(tiny_imagefolder),
                   train__epochs=1, train__val_tta=False, train__precision="fp32", **SMALL)
    assert calls == [(50, False, 0), (100, True, 1)]  # 50 validation images plain, 100 test images in six views


def test_fast_whitening_bias_trains_only_in_its_epochs(tiny_imagefolder, tmp_path):
    data, biases = cifarlab.load_dataset(tiny_imagefolder), {}

    def train(whiten_bias_epochs):
        out, biases[whiten_bias_epochs] = tmp_path / str(whiten_bias_epochs), []

        def record(_metrics):
            groups, _ = load_checkpoint(out / RunDir.CHECKPOINT)
            biases[whiten_bias_epochs].append(groups["model"]["whiten.bias"])

        cifarlab.train("fast-cpu", out_dir=out, data=data, train__epochs=3, train__precision="fp32",
                       model__args={"width": 0.25, "whiten_bias_epochs": whiten_bias_epochs},
                       callbacks=[record], **SMALL)

    train(1)
    train(None)
    frozen, trained = biases[1], biases[None]
    assert frozen[0].abs().sum() > 0 and torch.equal(frozen[0], frozen[1]) and torch.equal(frozen[1], frozen[2])
    assert not torch.equal(trained[0], trained[1]) and not torch.equal(trained[1], trained[2])


def test_fast_groups_train_only_in_their_epochs(tiny_imagefolder, tmp_path):
    weights = []

    def record(_metrics):
        groups, _ = load_checkpoint(tmp_path / RunDir.CHECKPOINT)
        weights.append([groups["model"][f"groups.{g}.0.weight"] for g in range(3)])

    cifarlab.train("fast-cpu", out_dir=tmp_path, data=cifarlab.load_dataset(tiny_imagefolder), train__epochs=3,
                   train__precision="fp32", model__args={"widths": [8, 16, 16], "group_epochs": [1, 2, None]},
                   callbacks=[record], **SMALL)
    changed = [[not torch.equal(before[g], after[g]) for g in range(3)] for before, after in pairwise(weights)]
    assert changed == [[False, True, True], [False, False, True]]  # group 1 after epoch 1, group 2 after epoch 2


def test_resolution_refuses_sides_below_eight():
    assert load("seed").train.resolution == []
    assert load("seed", train__resolution=[24, 32]).train.resolution == [24, 32]
    with pytest.raises(ConfigError, match="train.resolution"):
        load("seed", train__resolution=[4, 32])
