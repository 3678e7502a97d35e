"""Sweep files: a base config and a search space, parsed, validated and expanded into trials.

A sweep file looks like::

    name: lr-batch
    base: {preset: seed}            # or {config: path/to/config.yaml}
    fixed: {train.epochs: 5}        # applied to every trial
    search:
      grid: {optim.lr: [1e-3, 5e-4], train.batch_size: [60, 128]}
      # or runs: [{label: a, set: {optim.lr: 1e-3}, writeup_accuracy: 0.8}, ...]
      # or sampler: tpe | random, trials: 20,
      #    space: {optim.lr: {float: [1e-4, 1e-2], log: true}, train.batch_size: {choice: [60, 128]}}
    repeats: 1                      # seeds per configuration
    pruner: none                    # or median

Every trial's overrides are composed into a full config before anything trains,
so a bad key or value fails the sweep at once, naming the file and the key.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cifarlab import config as config_mod
from cifarlab.config import Config
from cifarlab.errors import ConfigError

_TOP_KEYS = {"name", "description", "base", "fixed", "search", "repeats", "pruner", "metric"}


@dataclass
class Trial:
    """One run of a sweep: a configuration (``group``) and, with repeats, one of its seeds."""

    index: int
    label: str
    group: str
    overrides: dict[str, Any]
    writeup_accuracy: float | None = None


@dataclass
class SweepSpec:
    """A parsed sweep file."""

    name: str
    path: str
    preset: str | None
    config_file: str | None
    fixed: dict[str, Any]
    kind: str  # grid | runs | tpe | random
    trials: list[Trial] = field(default_factory=list)  # grid and runs: the full list
    space: dict[str, dict[str, Any]] = field(default_factory=dict)  # samplers
    budget: int = 0  # samplers: number of trials
    repeats: int = 1
    pruner: str = "none"

    def compose(self, overrides: dict[str, Any]) -> Config:
        """The full config of a trial: base, then ``fixed``, then the trial's own overrides."""
        return config_mod.compose(self.preset, self.config_file, {**self.fixed, **overrides})


def list_sweeps() -> list[str]:
    """Names of the sweeps shipped with the package."""
    root = resources.files("cifarlab") / "sweeps"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def resolve(path_or_name: str) -> Path:
    """A sweep file path, or the shipped sweep of that name."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = resources.files("cifarlab") / "sweeps" / f"{path_or_name}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise ConfigError(f"{path_or_name}: no such sweep file or shipped sweep (shipped: {', '.join(list_sweeps())})")


def _mapping(value: Any, where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: key '{key}' must be a mapping, got {value!r}")
    return value


def _slug(overrides: dict[str, Any]) -> str:
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in overrides.items()) or "base"


def load_sweep(path_or_name: str, extra: dict[str, Any] | None = None, *, epochs_scale: float | None = None,
               repeats: int | None = None) -> SweepSpec:
    """Parse and validate a sweep file.

    ``extra`` overrides are added to ``fixed`` (the CLI's knobs), ``epochs_scale``
    multiplies every trial's epochs (at least 1), ``repeats`` replaces the file's.
    """
    path = resolve(path_or_name)
    where = str(path)
    raw = config_mod.parse_yaml(path.read_text(), where)
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (sweep keys: {', '.join(sorted(_TOP_KEYS))})")
    base = _mapping(raw.get("base", {}), where, "base")
    config_file = base.get("config")
    if config_file is not None:
        config_file = str((path.parent / config_file).resolve())
    repeats = raw.get("repeats", 1) if repeats is None else repeats
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ConfigError(f"{where}: key 'repeats' must be a positive integer, got {repeats!r}")
    pruner = raw.get("pruner", "none")
    if pruner not in ("none", "median"):
        raise ConfigError(f"{where}: key 'pruner' must be none or median, got {pruner!r}")
    if raw.get("metric", "val_acc") != "val_acc":
        raise ConfigError(f"{where}: key 'metric' must be val_acc (selection never uses the test set)")
    spec = SweepSpec(name=str(raw.get("name") or path.stem), path=where, preset=base.get("preset"),
                     config_file=config_file, fixed={**_mapping(raw.get("fixed", {}), where, "fixed"), **(extra or {})},
                     kind="", repeats=repeats, pruner=pruner)
    search = _mapping(raw.get("search"), where, "search")
    if "grid" in search:
        spec.kind = "grid"
        configs = _expand_grid(_mapping(search["grid"], where, "search.grid"), where)
    elif "runs" in search:
        spec.kind = "runs"
        configs = _expand_runs(search["runs"], where)
    elif "sampler" in search:
        spec.kind = search["sampler"]
        if spec.kind not in ("tpe", "random"):
            raise ConfigError(f"{where}: key 'search.sampler' must be tpe or random, got {spec.kind!r}")
        spec.space = _parse_space(_mapping(search.get("space"), where, "search.space"), where)
        spec.budget = search.get("trials", 0)
        if not isinstance(spec.budget, int) or spec.budget < 1:
            raise ConfigError(f"{where}: key 'search.trials' must be a positive integer, got {spec.budget!r}")
        configs = []
    else:
        raise ConfigError(f"{where}: key 'search' needs one of grid, runs or sampler")
    for label, overrides, acc in configs:
        for r in range(spec.repeats):
            run_overrides = dict(overrides)
            if spec.repeats > 1:
                run_overrides["train.seed"] = run_overrides.get("train.seed", 0) + r
            run_label = label if spec.repeats == 1 else f"{label}-s{r}"
            spec.trials.append(Trial(len(spec.trials), run_label, label, run_overrides, acc))
    if epochs_scale is not None:
        _scale_epochs(spec, epochs_scale)
    _validate(spec)
    return spec


def _scale_epochs(spec: SweepSpec, scale: float) -> None:
    if scale <= 0:
        raise ConfigError(f"--epochs-scale must be positive, got {scale}")
    if not spec.trials:
        spec.fixed["train.epochs"] = max(1, round(spec.compose({}).train.epochs * scale))
    for trial in spec.trials:
        trial.overrides["train.epochs"] = max(1, round(spec.compose(trial.overrides).train.epochs * scale))


def _expand_grid(grid: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any], None]]:
    if not grid:
        raise ConfigError(f"{where}: key 'search.grid' is empty")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: key 'search.grid.{key}' must be a non-empty list, got {values!r}")
    keys = list(grid)
    return [(_slug(dict(zip(keys, combo))), dict(zip(keys, combo)), None)
            for combo in itertools.product(*grid.values())]


def _expand_runs(runs: Any, where: str) -> list[tuple[str, dict[str, Any], float | None]]:
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{where}: key 'search.runs' must be a non-empty list")
    out, labels = [], set()
    for i, run in enumerate(runs):
        run = _mapping(run, where, f"search.runs[{i}]")
        bad = sorted(set(run) - {"label", "set", "writeup_accuracy"})
        if bad:
            raise ConfigError(f"{where}: unknown key 'search.runs[{i}].{bad[0]}' (use label, set, writeup_accuracy)")
        overrides = _mapping(run.get("set", {}), where, f"search.runs[{i}].set")
        label = str(run.get("label") or _slug(overrides))
        if label in labels:
            raise ConfigError(f"{where}: duplicate run label {label!r} in search.runs[{i}]")
        labels.add(label)
        acc = run.get("writeup_accuracy")
        if acc is not None and not isinstance(acc, (int, float)):
            raise ConfigError(f"{where}: key 'search.runs[{i}].writeup_accuracy' must be a number or null")
        out.append((label, overrides, acc))
    return out


def _parse_space(space: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    if not space:
        raise ConfigError(f"{where}: key 'search.space' is empty")
    for key, dist in space.items():
        dist = _mapping(dist, where, f"search.space.{key}")
        kinds = [k for k in ("float", "int", "choice") if k in dist]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: key 'search.space.{key}' needs exactly one of float, int, choice")
        values = dist[kinds[0]]
        if not isinstance(values, list) or not values or (kinds[0] != "choice" and len(values) != 2):
            raise ConfigError(f"{where}: key 'search.space.{key}.{kinds[0]}' must be "
                              + ("a non-empty list" if kinds[0] == "choice" else "[low, high]"))
    return space


def sample_point(spec: SweepSpec, which: str) -> dict[str, Any]:
    """The low (``which="low"``) or high end of every range: used to validate a sampler's space."""
    point = {}
    for key, dist in spec.space.items():
        if "choice" in dist:
            point[key] = dist["choice"][0 if which == "low" else -1]
        else:
            point[key] = dist.get("float", dist.get("int"))[0 if which == "low" else 1]
    return point


def _validate(spec: SweepSpec) -> None:
    points = [t.overrides for t in spec.trials] or [sample_point(spec, "low"), sample_point(spec, "high")]
    for overrides in points:
        try:
            cfg = spec.compose(overrides)
        except ConfigError as exc:
            raise ConfigError(f"{spec.path}: {str(exc).split(': ', 1)[-1]} (in trial {_slug(overrides)})") from None
        if cfg.data.val_size == 0:
            raise ConfigError(f"{spec.path}: trials are ranked on validation accuracy; data.val_size must be > 0")


def dump_trials(spec: SweepSpec) -> str:
    """The expanded trials as YAML, for ``--dry-run``."""
    rows = [{"trial": t.index, "label": t.label, "overrides": t.overrides,
             **({"writeup_accuracy": t.writeup_accuracy} if t.writeup_accuracy is not None else {})}
            for t in spec.trials]
    head = {"sweep": spec.name, "kind": spec.kind, "base": spec.preset or spec.config_file, "fixed": spec.fixed}
    if spec.space:
        head.update(space=spec.space, trials=spec.budget)
    return yaml.safe_dump({**head, "runs": rows}, sort_keys=False)
