"""Optimizers and learning-rate schedules built from the config."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cifarlab.config import OptimConfig, ScheduleConfig
from cifarlab.models import create_model
from cifarlab.training.muon import Muon, orthogonalize
from cifarlab.training.optim import build_optimizer, lr_multiplier


def _curve(cfg: ScheduleConfig, total: int = 100, per_epoch: int = 10) -> list[float]:
    return [lr_multiplier(step, total, per_epoch, cfg) for step in range(total)]


def test_constant_with_warmup_ramps_then_holds():
    curve = _curve(ScheduleConfig(name="constant", warmup_epochs=1))
    assert curve[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert set(curve[10:]) == {1.0}


def test_step_multiplies_by_gamma_every_step_epochs():
    curve = _curve(ScheduleConfig(name="step", step_epochs=3, gamma=0.5))
    assert curve[29] == 1.0 and curve[30] == 0.5 and curve[59] == 0.5 and curve[60] == 0.25


def test_cosine_falls_from_one_to_final():
    curve = _curve(ScheduleConfig(name="cosine", final=0.1))
    assert curve[0] == 1.0 and curve[50] == pytest.approx(0.55, abs=0.02) and curve[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(curve, curve[1:]))


def test_onecycle_rises_to_the_peak_then_falls_linearly():
    curve = _curve(ScheduleConfig(name="onecycle", peak=0.2, final=0.0))
    assert curve[0] == 0.0 and curve[20] == 1.0 and curve.index(max(curve)) == 20
    assert curve[60] == pytest.approx(0.5) and curve[-1] == pytest.approx(1 / 80)
    linear_decay = _curve(ScheduleConfig(name="onecycle", peak=0.0))
    assert linear_decay[0] == 1.0 and linear_decay[50] == pytest.approx(0.5)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("sgd", torch.optim.SGD), ("muon", Muon)])
def test_each_optimizer_is_built_with_its_settings(name, cls):
    model = create_model("fast", width=0.25)
    cfg = OptimConfig(name=name, lr=0.01, weight_decay=1e-3, momentum=0.8, nesterov=True)
    opt = build_optimizer(model, cfg)
    assert type(opt) is cls
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in opt.param_groups for p in g["params"]} == trainable
    assert all(g["initial_lr"] == g["lr"] for g in opt.param_groups)
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["nesterov"]
        assert opt.param_groups[0]["weight_decay"] == 1e-3


def test_muon_groups_filters_biases_and_the_head():
    model = create_model("fast", width=0.25)
    opt = build_optimizer(model, OptimConfig(name="muon", lr=2.0, head_lr=30.0, muon_lr=0.1, muon_momentum=0.6,
                                             momentum=0.85, nesterov=True, weight_decay=1e-3))
    filters, others, head = opt.param_groups
    assert filters["muon"] and filters["lr"] == 0.1 and filters["momentum"] == 0.6
    assert all(p.ndim == 4 for p in filters["params"]) and filters["weight_decay"] == 0.0
    assert not others["muon"] and others["lr"] == 2.0 and all(p.ndim == 1 for p in others["params"])
    assert head["params"] == [model.head.weight] and head["lr"] == 30.0 and head["weight_decay"] == 1e-3


def test_orthogonalize_flattens_the_spectrum():
    torch.manual_seed(0)
    for shape in [(16, 144), (144, 16)]:
        g = torch.randn(*shape) @ torch.diag(torch.logspace(-2, 1, shape[1]))  # singular values over 3 decades
        s = torch.linalg.svdvals(orthogonalize(g))
        assert s.shape[0] == min(shape)
        assert s.max() < 1.3 and torch.median(s) > 0.6


@pytest.mark.slow
def test_muon_keeps_filter_norms_and_learns():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, bias=True)
    opt = Muon([dict(params=[conv.weight], lr=0.05, muon=True), dict(params=[conv.bias], lr=0.05, weight_decay=1e-3)])
    teacher = torch.randn(8, 3, 3, 3)
    teacher *= 8 ** 0.5 / teacher.norm()  # a filter bank Muon can reach: norm sqrt(out)
    x = torch.randn(32, 3, 8, 8)
    target = F.conv2d(x, teacher, torch.randn(8))
    bias_before = conv.bias.detach().clone()
    losses = []
    for _ in range(60):
        loss = F.mse_loss(conv(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert conv.weight.norm().item() == pytest.approx(8 ** 0.5, rel=0.1)
    assert losses[-1] < 0.2 * losses[0]
    assert not torch.equal(conv.bias, bias_before)


@pytest.mark.parametrize("lr", [0.01, 3.0])
def test_muon_sgd_weight_decay_is_decoupled_from_the_rate(lr):
    w = nn.Parameter(torch.ones(4))
    opt = Muon([dict(params=[w], lr=lr, momentum=0.0, weight_decay=0.1)])
    opt.param_groups[0]["lr"] = lr / 2  # the schedule at half rate halves the decay too
    (0 * w).sum().backward()
    opt.step()
    assert torch.allclose(w, torch.full((4,), 0.95))
