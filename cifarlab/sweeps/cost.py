"""What a sweep costs before it runs (``cifarlab sweep NAME --dry-run``).

Each trial's training compute is ``6 x MACs x images x epochs``: a MAC is two FLOPs and a backward pass costs about
twice the forward, so training is three forward passes' worth. Its time here comes from a short probe: a few real
training steps (and evaluation batches) of each distinct network at the trial's batch size, precision and device,
timed on this machine, then scaled to the trial's images and epochs. Image counts assume CIFAR-10's 50,000 training
and 10,000 test images (the probe reads no data: random tensors cost the same).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cifarlab.config import Config
from cifarlab.errors import ConfigError, ModelError
from cifarlab.sweeps.spec import SweepSpec

if TYPE_CHECKING:
    import torch

TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000
PROBE_SECONDS = 0.5  # timed passes per network, after the warm-up passes
PROBE_STEPS = 10
SLOW_PASS = 0.5  # seconds: a pass this slow is timed on an eighth of its batch, once


@dataclass
class TrialCost:
    """One trial's compute and, once probed, its estimated time here."""

    label: str
    macs: int  # multiply-accumulates of one image's forward pass
    train_images: int
    epochs: int
    eval_views: int  # image-views evaluated: validation (each validated epoch) and the test set
    seconds: float | None = None

    @property
    def flops(self) -> float:
        """Training compute: 6 x MACs x images x epochs."""
        return 6.0 * self.macs * self.train_images * self.epochs


def _counts(cfg: Config) -> tuple[int, int, int]:
    """Training images, epochs and evaluated image-views of a trial's config."""
    train = TRAIN_IMAGES - cfg.data.val_size
    if cfg.data.max_train_images is not None:
        train = min(train, cfg.data.max_train_images)
    epochs = cfg.train.epochs
    validated = sum(map(cfg.train.validates, range(1, epochs + 1)))
    tta = cfg.train.views()
    test = min(TEST_IMAGES, cfg.data.max_test_images or TEST_IMAGES)
    val_views = tta if cfg.train.val_tta else 1
    return train, epochs, cfg.data.val_size * validated * val_views + test * tta


def _probe_key(cfg: Config) -> str:
    """What a step's time depends on: the network, the batch, the precision and the memory layout."""
    return json.dumps([cfg.model.name, cfg.model.args, cfg.train.batch_size, cfg.train.eval_batch_size,
                       cfg.train.precision, cfg.train.channels_last, cfg.train.device], sort_keys=True, default=str)


def _per_image(step, batch: int, seconds: float) -> float:
    """Seconds per image of ``step(n)``, a pass over ``n`` images: the median of at least three passes at ``batch``
    (more until ``seconds`` have passed) after two warm-up passes (the first builds kernels and buffers); a median,
    as another process may take a core. When one pass takes longer than :data:`SLOW_PASS` (a full-width network on
    a CPU), a pass over an eighth of the batch is timed once after its warm-up instead: a large network's time per
    image hardly depends on the batch, and the probe stays short."""
    t0 = time.perf_counter()
    step(batch)
    if time.perf_counter() - t0 > SLOW_PASS and batch >= 8:
        small = batch // 8
        step(small)
        t0 = time.perf_counter()
        step(small)
        return (time.perf_counter() - t0) / small
    step(batch)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (len(times) < PROBE_STEPS and time.perf_counter() - start < seconds):
        t0 = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / batch


def probe(cfg: Config, model: torch.nn.Module) -> tuple[float, float]:
    """Measured seconds per training image and per evaluated image-view of ``cfg``'s network, ``model``, here.

    The probe trains ``model``: pass a fresh one.
    """
    import torch

    from cifarlab.devices import autocast, resolve_device, resolve_precision, synchronize
    from cifarlab.models.registry import INPUT_SHAPE
    from cifarlab.training.optim import build_optimizer

    device = resolve_device(cfg.train.device)
    dtype = resolve_precision(cfg.train.precision, device)
    layout = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(device).to(memory_format=layout)
    optimizer = build_optimizer(model, cfg.optim)

    def images(n: int) -> torch.Tensor:
        return torch.randn(n, *INPUT_SHAPE, device=device).contiguous(memory_format=layout)

    def train_step(n: int) -> None:
        x, y = images(n), torch.randint(0, 10, (n,), device=device)
        with autocast(device, dtype):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)

    @torch.no_grad()
    def eval_step(n: int) -> None:
        with autocast(device, dtype):
            model(images(n))
        synchronize(device)

    model.train()
    per_train = _per_image(train_step, cfg.train.batch_size, PROBE_SECONDS)
    model.eval()
    # Evaluation's share of a trial is small: a batch of up to 250 measures it well enough.
    per_eval = _per_image(eval_step, min(cfg.train.eval_batch_size, 250), PROBE_SECONDS / 2)
    return per_train, per_eval


def sweep_costs(spec: SweepSpec, *, measure: bool = True) -> list[TrialCost]:
    """Every planned trial's compute (samplers: the base config's, once per trial of the budget) and, with
    ``measure``, its time here from a probe of each distinct network, run with a worker's share of the cores."""
    import torch

    from cifarlab.inspection.arch import describe_arch
    from cifarlab.models import build_model
    from cifarlab.sweeps.runner import worker_threads

    planned = [(t.label, spec.compose(t.overrides)) for t in spec.trials] or \
        [(f"trial {i} (base settings)", spec.compose({})) for i in range(spec.budget)]
    macs: dict[str, int] = {}
    rates: dict[str, tuple[float, float]] = {}
    costs = []
    threads = torch.get_num_threads()
    if measure:
        torch.set_num_threads(worker_threads(spec.options.workers))  # the probe times what a worker will have
    try:
        for label, cfg in planned:
            key = _probe_key(cfg)
            if key not in macs:
                try:
                    model = build_model(cfg.model)
                except ModelError as exc:  # model arguments are checked when the network is built: here
                    raise ConfigError(f"{spec.source}: trial '{label}': {exc}") from None
                macs[key] = describe_arch(model)["macs"]
                if measure:
                    rates[key] = probe(cfg, model)
            train, epochs, views = _counts(cfg)
            seconds = None
            if measure:
                per_train, per_eval = rates[key]
                seconds = train * epochs * per_train + views * per_eval
            costs.append(TrialCost(label, macs[key], train, epochs, views, seconds))
    finally:
        torch.set_num_threads(threads)
    return costs


def total_seconds(costs: list[TrialCost], workers: int) -> float | None:
    """The sweep's wall time with ``workers`` workers sharing the trials (None when not measured)."""
    if any(c.seconds is None for c in costs):
        return None
    return max(sum(c.seconds for c in costs) / workers, max((c.seconds for c in costs), default=0.0))


def _flops(value: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} FLOP"


def describe_costs(costs: list[TrialCost], workers: int, machine: str) -> dict[str, Any]:
    """The costs as data (``--dry-run --json``)."""
    total = total_seconds(costs, workers)
    return {"trials": [{"label": c.label, "macs_per_image": c.macs, "train_images": c.train_images,
                        "epochs": c.epochs, "eval_views": c.eval_views, "train_flops": c.flops,
                        "seconds": c.seconds} for c in costs],
            "train_flops": sum(c.flops for c in costs), "seconds": total, "workers": workers, "machine": machine}


def format_costs(costs: list[TrialCost], workers: int, machine: str) -> str:
    """The costs as YAML comment lines, so that the dry run's output stays the plan's YAML."""
    from cifarlab.formatting import duration
    from cifarlab.reporting.tables import format_rows

    rows = [{"trial": c.label, "MMAC/image": f"{c.macs / 1e6:.1f}", "train images": f"{c.train_images:,}",
             "epochs": c.epochs, "training compute": _flops(c.flops),
             "time here": "-" if c.seconds is None else duration(c.seconds)} for c in costs]
    total = total_seconds(costs, workers)
    lines = ["training compute: 6 x MACs x images x epochs (CIFAR-10's 50,000 / 10,000 images assumed)",
             *format_rows(rows, list(rows[0]), "table").splitlines(),
             f"whole sweep: {_flops(sum(c.flops for c in costs))} of training"
             + ("" if total is None else f", about {duration(total)} here with {workers} worker(s)"),
             f"(time from a probe of each network on {machine}; evaluation included)" if total is not None
             else "(no probe: --no-probe)"]
    return "\n".join("# " + line for line in lines)
