"""Trained weights as safetensors: tensors plus JSON metadata, never pickles.

``weights.safetensors`` holds a trained model's state and, in its metadata, the resolved config and class
names, so a bare weights file is enough to rebuild, evaluate, predict with or export the model. Every file is
one atomic write: a kill or a full disk during saving leaves the previous file intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from cifarlab.config import Config, from_dict
from cifarlab.errors import ModelError, first_line
from cifarlab.fileio import write_bytes
from cifarlab.models import build_model
from cifarlab.rundir import RunDir

FORMAT = "cifarlab-1"


@dataclass
class Trained:
    """A model restored for inference, with what is needed to feed it."""

    model: nn.Module
    config: Config
    classes: list[str]
    path: Path


def state_tensors(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """CPU copies of ``state`` with ``prefix`` on each name: safetensors refuses tensors that share storage."""
    return {f"{prefix}{k}": v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` with ``meta`` (JSON, under the ``cifarlab`` key) to ``path`` atomically."""
    # Serialized in memory: safetensors' own file writer reports a full disk as a SafetensorError.
    write_bytes(path, save(tensors, metadata={"cifarlab": json.dumps({"format": FORMAT, **meta})}))


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Inverse of :func:`write_tensors`; a :class:`ModelError` naming the file if it is not one of ours."""
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


def group_tensors(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"model.w": t}`` -> ``{"model": {"w": t}}``: a checkpoint's tensors (or other values) by group."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        group, _, name = key.partition(".")
        groups.setdefault(group, {})[name] = value
    return groups


def save_weights(path: str | Path, model: nn.Module, config: Config, classes: list[str], **extra: Any) -> None:
    """Write the model's state and the metadata to rebuild it; ``extra`` goes into the metadata."""
    model = getattr(model, "_orig_mod", model)  # torch.compile wraps the module
    meta = {"kind": "weights", "config": config.to_dict(), "classes": list(classes), **extra}
    write_tensors(Path(path), state_tensors(model.state_dict()), meta)


def resolve_weights(path: str | Path) -> Path:
    """The weights file for ``path``: a run directory or a ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        for name in (RunDir.WEIGHTS, RunDir.CHECKPOINT):
            if (path / name).is_file():
                return path / name
        raise ModelError(f"{path}: run directory has no {RunDir.WEIGHTS} or {RunDir.CHECKPOINT}")
    if not path.exists():
        raise ModelError(f"{path}: no such run directory or weights file")
    return path


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> Trained:
    """Rebuild a trained model in eval mode from a run directory or weights file."""
    file = resolve_weights(path)
    tensors, meta = read_tensors(file)
    config = from_dict(meta["config"], where=str(file))
    model = build_model(config.model)
    if meta.get("kind") == "checkpoint":  # a run killed before its final weights: use its last epoch
        groups = group_tensors(tensors)
        tensors = groups.get("ema") or groups["model"]
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ModelError(f"{file}: weights do not fit model {config.model.name!r}: {first_line(exc)}") from None
    model.to(device).eval()
    return Trained(model=model, config=config, classes=list(meta["classes"]), path=file)
