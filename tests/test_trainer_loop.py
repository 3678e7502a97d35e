"""The training loop's records: architecture facts, test predictions, EMA weights, validation every N epochs."""

from __future__ import annotations

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
