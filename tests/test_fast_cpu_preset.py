"""fast-cpu validates only after its last epoch: the same trained weights as validating after every epoch."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import cifarlab
from cifarlab.config import load
from cifarlab.rundir import RunDir


def test_fast_cpu_validates_once():
    assert load("fast-cpu").train.val_every == 0


@pytest.mark.slow
def test_validating_once_trains_the_same_weights_as_validating_every_epoch(tiny_imagefolder, tmp_path):
    data = cifarlab.load_dataset(tiny_imagefolder)
    kw = dict(data=data, progress=False, verbose=False, train__epochs=3, train__batch_size=50, data__val_size=50,
              data__max_train_images=100, train__precision="fp32")
    every = cifarlab.train("fast-cpu", out_dir=tmp_path / "every", train__val_every=1, **kw)
    once = cifarlab.train("fast-cpu", out_dir=tmp_path / "once", **kw)
    assert [e["val_acc"] is not None for e in RunDir(once.run_dir).epochs()] == [False, False, True]
    assert [e["val_acc"] is not None for e in RunDir(every.run_dir).epochs()] == [True, True, True]
    a, b = load_file(every.run_dir / RunDir.WEIGHTS), load_file(once.run_dir / RunDir.WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert once.summary["test_acc"] == every.summary["test_acc"]
