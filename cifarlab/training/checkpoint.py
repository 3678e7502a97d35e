"""The checkpoint: what ``--resume`` needs to continue a run bit-for-bit.

``checkpoint.safetensors`` holds the model, the optimizer state, the EMA
weights and the random-number-generator states as tensors, and the config,
class names and :class:`TrainState` as JSON metadata (safetensors, never
pickles). It is one atomic write: a kill or a full disk during saving leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cifarlab.config import Config
from cifarlab.models.weights import group_tensors, read_tensors, state_tensors, write_tensors

if TYPE_CHECKING:
    from cifarlab.training.setup import Setup


@dataclass
class TrainState:
    """Where a run stands; saved in every checkpoint beside the tensors."""

    epochs_completed: int = 0
    step: int = 0  # optimizer steps taken
    train_seconds: float = 0.0  # training steps only: no evaluation, no compiling
    compile_seconds: float = 0.0  # torch.compile's warm-up (the first step of each session)
    eval_seconds: float = 0.0
    first_epoch_seconds: float | None = None
    best_val_acc: float | None = None
    best_epoch: int | None = None
    # Saved mid-epoch (a signal, at a step boundary): how far the unfinished epoch got.
    epoch_steps: int = 0
    epoch_losses: list[float] = dataclasses.field(default_factory=list)
    epoch_correct: int = 0
    epoch_seconds: float = 0.0


def save_checkpoint(path: Path, run: Setup, state: TrainState, cfg: Config, classes: list[str]) -> None:
    """Write model, optimizer, EMA and RNG states and ``state`` to ``path``."""
    rng = {"torch": torch.get_rng_state(), "data": run.generator.get_state()}
    if run.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(run.device)
    optim_tensors, optim_meta = _optimizer_to_tensors(run.optimizer)
    groups = {"model": run.model.state_dict(), "optim": optim_tensors, "rng": rng}
    if run.ema is not None:
        groups["ema"] = run.ema.module.state_dict()
    flat = {k: v for group, tensors in groups.items() for k, v in state_tensors(tensors, f"{group}.").items()}
    write_tensors(path, flat, {"kind": "checkpoint", "config": cfg.to_dict(), "classes": classes,
                               "optimizer": optim_meta, "state": dataclasses.asdict(state)})


def load_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """A checkpoint's tensor groups (``model``, ``optim``, ``rng``, ``ema``) and metadata."""
    flat, meta = read_tensors(Path(path))
    return group_tensors(flat), meta


def restore_checkpoint(path: Path, run: Setup) -> TrainState:
    """Load the checkpoint at ``path`` into ``run``; the state it was saved with."""
    groups, meta = load_checkpoint(path)
    run.model.load_state_dict(groups["model"])
    _optimizer_from_tensors(run.optimizer, groups.get("optim", {}), meta["optimizer"])
    if run.ema is not None:
        run.ema.module.load_state_dict(groups["ema"])
    torch.set_rng_state(groups["rng"]["torch"])
    run.generator.set_state(groups["rng"]["data"].to(run.generator.get_state().device))
    if run.device.type == "cuda" and "cuda" in groups["rng"]:
        torch.cuda.set_rng_state(groups["rng"]["cuda"], run.device)
    return TrainState(**meta["state"])


def _optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON-able metadata."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                            meta: dict[str, Any]) -> None:
    state = group_tensors(tensors | meta["scalars"])  # "3.exp_avg" -> {"3": {"exp_avg": ...}}
    optimizer.load_state_dict({"state": {int(i): s for i, s in state.items()}, "param_groups": meta["param_groups"]})
