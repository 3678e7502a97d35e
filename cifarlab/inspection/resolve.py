"""What can be inspected: a module, a registered name, a config, a layer list, a YAML file or a trained run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.nn as nn
import yaml

from cifarlab.config import Config, ModelConfig, compose, list_presets, load, parse_yaml
from cifarlab.errors import ModelError
from cifarlab.models import create_model, list_models
from cifarlab.models.declarative import ShapeError, build_layers
from cifarlab.models.weights import load_trained


def _from_layers(layers: Any, input_shape: tuple[int, ...], where: str | None,
                 name: str) -> tuple[nn.Module, str, list[ShapeError]]:
    # Lenient: sizes that cannot connect become findings, so the table still shows
    # every layer up to the bad one; malformed entries still raise.
    try:
        model, errors, _ = build_layers(layers, input_shape, lenient=True)
    except ModelError as exc:
        raise ModelError(f"{where}: {exc}" if where else str(exc)) from None
    return model, name, errors


def _from_model_config(model_cfg, input_shape: tuple[int, ...], where: str | None,
                       display_name: str | None = None) -> tuple[nn.Module, str, list[ShapeError]]:
    if model_cfg.layers is not None:
        return _from_layers(model_cfg.layers, input_shape, where, display_name or "layers")
    return create_model(model_cfg.name, **model_cfg.args), model_cfg.name, []


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        parse_yaml(text, str(path))  # raises the config module's one-line message with the line number
        raise


def _from_mapping(data: dict, input_shape: tuple[int, ...], where: str | None, default_name: str,
                  load_config: Callable[[], Any]) -> tuple[nn.Module, str, list[ShapeError]]:
    """A config mapping with a ``model:`` section (validated by ``load_config``), or a bare ``{layers: [...]}``."""
    if "model" not in data:
        if "layers" not in data:
            raise ModelError(f"{where or 'config'}: expected a layer list or a config with a 'model:' section")
        return _from_layers(data["layers"], input_shape, where, str(data.get("name") or default_name))
    section = data["model"] if isinstance(data["model"], dict) else {}
    # With an inline layer list, `model.name` is only a display name (the preset's default is "seed").
    display = str(section.get("name") or default_name) if section.get("layers") is not None else None
    return _from_model_config(load_config().model, input_shape, where, display)


def resolve_model(source: Any, input_shape: tuple[int, ...]) -> tuple[nn.Module, str, list[ShapeError]]:
    """(model, display name, sizes that cannot connect) for anything :func:`inspect_model` accepts."""
    if isinstance(source, nn.Module):
        return source, type(source).__name__, []
    if isinstance(source, list):
        return _from_layers(source, input_shape, None, "layers")
    if isinstance(source, Config):
        source = source.model
    if isinstance(source, ModelConfig):
        return _from_model_config(source, input_shape, None)
    if isinstance(source, dict):
        return _from_mapping(source, input_shape, None, "layers", lambda: load(source))
    path = Path(str(source))
    if path.suffix in (".yaml", ".yml"):
        data = _read_yaml(path)
        if isinstance(data, list):
            return _from_layers(data, input_shape, str(path), path.name)
        if not isinstance(data, dict):
            raise ModelError(f"{path}: expected a layer list or a config with a 'model:' section")
        return _from_mapping(data, input_shape, str(path), path.name, lambda: compose(config_file=path))
    if path.suffix == ".safetensors" or path.is_dir():
        return load_trained(path).model, str(source), []
    name = str(source)
    if name not in list_models() and name in list_presets():  # e.g. seed-best: the preset's network
        return _from_model_config(compose(name).model, input_shape, f"preset {name}")
    return create_model(name), name, []
