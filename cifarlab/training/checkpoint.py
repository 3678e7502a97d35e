"""Weights and checkpoints as safetensors: tensors plus JSON metadata, never pickles.

``weights.safetensors`` holds a trained model's state and, in its metadata, the
resolved config and class names, so a bare weights file is enough to rebuild,
evaluate, predict with or export the model. ``checkpoint.safetensors`` also holds
the optimizer state, the EMA weights and the random-number-generator states, so
``--resume`` continues bit-for-bit. Each file is one atomic write: a kill during
saving leaves the previous file intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from cifarlab.config import Config, from_dict
from cifarlab.errors import ModelError, first_line
from cifarlab.fileio import atomic_path

WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "cifarlab-1"


@dataclass
class Trained:
    """A model restored for inference, with what is needed to feed it."""

    model: nn.Module
    config: Config
    classes: list[str]
    path: Path

    @property
    def mean(self) -> list[float]:
        """Per-channel mean the inputs (scaled to 0..1) are normalised with."""
        return self.config.data.mean

    @property
    def std(self) -> list[float]:
        """Per-channel standard deviation the inputs are normalised with."""
        return self.config.data.std


def _state_tensors(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share storage, so each one is saved as its own copy.
    return {f"{prefix}{k}": v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"cifarlab": json.dumps(meta)})


def save_weights(path: str | Path, model: nn.Module, config: Config, classes: list[str], **extra: Any) -> None:
    """Write the model's state and the metadata to rebuild it; ``extra`` goes into the metadata."""
    meta = {"format": FORMAT, "kind": "weights", "config": config.to_dict(), "classes": list(classes), **extra}
    _save(Path(path), _state_tensors(_unwrap(model).state_dict(), ""), meta)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # torch.compile wraps the module


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("cifarlab")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from None
    if raw is None:
        raise ModelError(f"{path}: safetensors file has no cifarlab metadata (not written by cifarlab)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"{path}: corrupt cifarlab metadata") from None
    return tensors, meta


def resolve_weights(path: str | Path) -> Path:
    """The weights file for ``path``: a run directory or a ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        for name in (WEIGHTS_FILE, CHECKPOINT_FILE):
            if (path / name).is_file():
                return path / name
        raise ModelError(f"{path}: run directory has no {WEIGHTS_FILE} or {CHECKPOINT_FILE}")
    if not path.exists():
        raise ModelError(f"{path}: no such run directory or weights file")
    return path


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> Trained:
    """Rebuild a trained model in eval mode from a run directory or weights file."""
    from cifarlab.models import build_model

    file = resolve_weights(path)
    tensors, meta = _read(file)
    config = from_dict(meta["config"], where=str(file))
    model = build_model(config.model)
    state = tensors
    if meta.get("kind") == "checkpoint":  # a run killed before its final weights: use its last epoch
        groups = _group(tensors)
        state = groups.get("ema") or groups["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{file}: weights do not fit model {config.model.name!r}: {first_line(exc)}") from None
    model.to(device).eval()
    return Trained(model=model, config=config, classes=list(meta["classes"]), path=file)


def save_checkpoint(path: str | Path, tensors: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]) -> None:
    """Write groups of named tensors (``{"model": state, "optim": ...}``) and JSON metadata."""
    flat: dict[str, torch.Tensor] = {}
    for group, state in tensors.items():
        flat.update(_state_tensors(state, f"{group}."))
    _save(Path(path), flat, {"format": FORMAT, "kind": "checkpoint", **meta})


def load_checkpoint(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Inverse of :func:`save_checkpoint`: tensor groups and metadata."""
    flat, meta = _read(Path(path))
    return _group(flat), meta


def _group(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        group, _, name = key.partition(".")
        groups.setdefault(group, {})[name] = value
    return groups


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                           meta: dict[str, Any]) -> None:
    """Restore an optimizer saved with :func:`optimizer_to_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
