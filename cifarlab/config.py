"""Typed run configuration: presets, config files and ``--set`` overrides, validated.

A run is described by one :class:`Config` tree of dataclasses. It is built by
composing, in order: a preset shipped in ``cifarlab/presets/*.yaml``, the user's
YAML file, then ``key.path=value`` overrides. Every key is checked against the
dataclass fields and every value against the field's type, so a typo or a wrong
type is an error that names the key, not a silent default.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml

from cifarlab.errors import ConfigError, did_you_mean
from cifarlab.schema import FRACTION, NON_NEGATIVE, POSITIVE, Must, at_least, build, length, one_of

THREE = length(3, "have 3 numbers")  # one per colour channel
SIDES = Must(lambda sides: all(side >= 8 for side in sides), "list image sides of at least 8")


@dataclass
class AugmentConfig:
    """Batch-wise augmentations applied on the training device."""

    crop_padding: Annotated[int, NON_NEGATIVE] = 0  # random crop after padding by this many pixels (reflect); 0 = off
    flip: bool = False  # random horizontal flip
    flip_alternate: bool = False  # with flip: mirror each image in every other epoch from a random start (airbench)
    cutout: Annotated[int, NON_NEGATIVE] = 0  # side of a random square set to zero; 0 = off


@dataclass
class DataConfig:
    """Where the images come from and how they are split and normalised."""

    path: str | None = None  # official archive/folder, ImageFolder tree/archive, or None = download
    val_size: Annotated[int, NON_NEGATIVE] = 5000  # class-stratified validation images held out of the training set
    max_train_images: Annotated[int, at_least(10)] | None = None  # class-stratified subsample of the training split
    # class-stratified subsample of the test set (quick CPU comparisons)
    max_test_images: Annotated[int, at_least(10)] | None = None
    mean: Annotated[list[float], THREE] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: Annotated[list[Annotated[float, POSITIVE]], THREE] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    """A registered model by name (with factory arguments), or an inline layer list."""

    name: str = "seed"
    args: dict[str, Any] = field(default_factory=dict)
    layers: list[Any] | None = None  # declarative definition; overrides ``name`` when set


@dataclass
class OptimConfig:
    """Optimizer and its hyperparameters.

    ``muon`` trains conv filter banks with Muon (``muon_lr``, ``muon_momentum``)
    and every other parameter with SGD: biases and norms at ``lr``, linear
    layers at ``head_lr``, both with ``momentum``/``nesterov`` and a
    ``weight_decay`` decoupled from their rates (the fraction of the weights
    the decay term removes per step at full rate, in either group).
    """

    name: Annotated[str, one_of("adam", "adamw", "sgd", "muon")] = "adam"
    lr: Annotated[float, POSITIVE] = 5e-4
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    momentum: Annotated[float, FRACTION] = 0.9  # sgd, muon
    nesterov: bool = False  # sgd, muon
    betas: Annotated[list[float], length(2, "have 2 numbers")] = field(default_factory=lambda: [0.9, 0.999])  # adam(w)
    muon_lr: Annotated[float, POSITIVE] = 0.1  # muon: step length of the filters' orthogonalised updates
    muon_momentum: Annotated[float, FRACTION] = 0.6  # muon
    head_lr: Annotated[float, POSITIVE] | None = None  # muon: SGD rate of linear layers (default: lr)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, evaluated per step as a multiplier of ``optim.lr``."""

    name: Annotated[str, one_of("constant", "step", "cosine", "onecycle")] = "constant"
    warmup_epochs: Annotated[float, NON_NEGATIVE] = 0.0  # linear warm-up from 0 (constant, step, cosine)
    step_epochs: Annotated[int, POSITIVE] = 10  # step: multiply by gamma every this many epochs
    gamma: Annotated[float, NON_NEGATIVE] = 0.1
    peak: Annotated[float, FRACTION] = 0.25  # onecycle: fraction of training at which the peak is reached
    final: Annotated[float, NON_NEGATIVE] = 0.0  # cosine/onecycle: multiplier reached at the last step


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: Annotated[int, POSITIVE] = 20
    batch_size: Annotated[int, POSITIVE] = 60
    label_smoothing: Annotated[float, FRACTION] = 0.0
    grad_clip: Annotated[float, NON_NEGATIVE] = 0.0  # max global grad norm; 0 = off
    ema: Annotated[float, FRACTION] = 0.0  # decay of an exponential moving average of weights; 0 = off
    tta_flip: bool = False  # evaluate on the mean of the image and its mirror
    # also on the image shifted this many pixels up-left and down-right; 0 = off
    tta_translate: Annotated[int, NON_NEGATIVE] = 0
    # Side of the training images per epoch, the last repeating ([24, 32]: epoch 1 at 24x24, the rest at 32x32);
    # [] = as stored. Early epochs at a lower resolution cost less (progressive resizing); evaluation stays full size.
    resolution: Annotated[list[int], SIDES] = field(default_factory=list)
    # validate after every N-th epoch and always after the last; 0 = only after the last
    val_every: Annotated[int, NON_NEGATIVE] = 1
    val_tta: bool = True  # validate with the test-time views; false = the plain images (cheaper; test keeps them)
    test_every_epoch: bool = False  # also log test accuracy per epoch (benchmarks; never used for selection)
    eval_batch_size: Annotated[int, POSITIVE] = 1000
    log_every: Annotated[int, POSITIVE] = 100  # the seed's "running loss every 100 mini-batches"
    device: Annotated[str, one_of("auto", "cpu", "cuda")] = "auto"
    # bf16: autocast (CUDA or CPU); auto: bf16 where the device computes it natively
    precision: Annotated[str, one_of("fp32", "bf16", "auto")] = "fp32"
    channels_last: bool = False
    compile: bool = False  # torch.compile the model (CUDA or CPU; the first steps pay for compiling)
    # TensorBoard event files in the run directory (loss, lr, accuracies, hparams); needs the tensorboard extra.
    tensorboard: bool = False
    seed: int = 0

    def validates(self, epoch: int) -> bool:
        """Whether ``epoch`` (from 1) ends with a validation pass: every ``val_every``-th one and the last."""
        return epoch == self.epochs or (self.val_every > 0 and epoch % self.val_every == 0)

    def views(self) -> int:
        """Forward passes per image of the test-time views (``evaluation.inference.tta_logits``)."""
        return (2 if self.tta_flip else 1) * (3 if self.tta_translate else 1)


@dataclass
class Config:
    """Everything that defines a run; written to ``config.yaml`` in its run directory."""

    preset: str = "seed"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The resolved config as YAML, keys in declaration order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------- presets


def shipped(folder: str) -> dict[str, Path]:
    """The YAML files shipped in the package's ``folder`` (``presets``, ``sweeps``), by name, in name order."""
    found = (resources.files("cifarlab") / folder).iterdir()
    return dict(sorted((p.name[:-5], Path(str(p))) for p in found if p.name.endswith(".yaml")))


def list_presets() -> list[str]:
    """Names of the presets shipped with the package."""
    return list(shipped("presets"))


def preset_dict(name: str) -> dict[str, Any]:
    """The raw mapping of the shipped preset ``name``."""
    path = shipped("presets").get(name)
    if path is None:
        raise ConfigError(f"unknown preset {name!r}{did_you_mean(name, list_presets())}; "
                          f"known presets: {', '.join(list_presets())}")
    return parse_yaml(path.read_text(), f"preset {name}")


def parse_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}:{at} invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a user's YAML config file into a raw mapping (not yet validated)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    return parse_yaml(text, str(path))


# ---------------------------------------------------------------- composition


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``update`` merged in; nested mappings merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "args":
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"optim.lr=1e-3"`` into ``("optim.lr", 0.001)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. optim.lr=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(mapping: dict[str, Any], key: str, value: Any) -> None:
    """Set ``mapping["a"]["b"] = value`` for ``key="a.b"``, creating levels as needed."""
    parts = key.split(".")
    node = mapping
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def compose(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: typing.Iterable[str | tuple[str, Any]] | dict[str, Any] = (),
) -> Config:
    """Build a validated :class:`Config` from a preset, a YAML file and overrides.

    The preset is ``preset`` if given, else the file's own ``preset:`` key, else ``seed``.
    ``overrides`` are ``"key.path=value"`` strings (values read as YAML), ``("key.path", value)``
    pairs or a ``{"key.path": value}`` mapping, applied in order.
    """
    file_dict = read_config_file(config_file) if config_file is not None else {}
    name = preset or file_dict.get("preset") or "seed"
    if not isinstance(name, str):
        raise ConfigError(f"{config_file}: key 'preset' must be a preset name, got {name!r}")
    raw = deep_merge(preset_dict(name), file_dict)
    raw["preset"] = name
    items = overrides.items() if isinstance(overrides, dict) else (
        o if isinstance(o, tuple) else parse_override(o) for o in overrides)
    for key, value in items:
        set_dotted(raw, key, copy.deepcopy(value))  # a later "model.args.x" must not write into the caller's dict
    where = str(config_file) if config_file is not None else f"preset {name}"
    return from_dict(raw, where=where)


def from_dict(raw: dict[str, Any], where: str = "config") -> Config:
    """Validate a raw nested mapping into a :class:`Config`; errors name ``where`` and the key."""
    cfg = build(Config, raw, where)
    if cfg.data.augment.flip_alternate and not cfg.data.augment.flip:
        raise ConfigError(f"{where}: key 'data.augment.flip_alternate' needs data.augment.flip: true")
    return cfg


def load(source: Config | dict[str, Any] | str | Path | None = None, **overrides: Any) -> Config:
    """Accept what a notebook user has at hand: a Config, a dict, a preset name or a YAML path.

    Keyword overrides use ``__`` for dots: ``load("seed", train__epochs=1)``.
    """
    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    if isinstance(source, Config):
        raw = source.to_dict()
    elif isinstance(source, dict):
        raw = deep_merge(preset_dict(source.get("preset", "seed")), source)
    elif isinstance(source, Path) or str(source).endswith((".yaml", ".yml")):
        return compose(config_file=source, overrides=dotted)
    else:  # a preset name; None: the seed
        return compose(None if source is None else str(source), overrides=dotted)
    for key, value in dotted.items():
        set_dotted(raw, key, value)
    return from_dict(raw)
