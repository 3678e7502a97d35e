"""Sweep files (their format: docs/sweeps.md): a base config and a search space, parsed, validated and
expanded into trials.

A trial's config is composed in layers: the base, then ``fixed``, then the trial's own settings, then ``scale``
(settings every trial gets over its own, e.g. a laptop-scale rule), then the command line's options
(:class:`SweepOptions`), which have the last word. A file may take every key it does not set ``from`` another
sweep file (a laptop-scale form of a table is the table's file plus its ``scale``, not a second copy of its rows).
Every trial is composed and validated before anything trains, so a bad key or value fails the sweep at once,
naming the file and key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cifarlab import config as config_mod
from cifarlab.config import Config
from cifarlab.errors import ConfigError, ModelError
from cifarlab.sweeps.options import SweepOptions

_TOP_KEYS = ("name", "description", "from", "base", "fixed", "search", "scale", "repeats", "pruner", "metric")
_SAMPLERS = ("tpe", "random")


@dataclass
class Trial:
    """One planned run: a configuration (``group``) and, with repeats, one of its seeds."""

    index: int
    label: str
    group: str
    overrides: dict[str, Any]  # the trial's own settings (and its seed when repeated)
    writeup_accuracy: float | None = None


@dataclass
class SweepSpec:
    """A parsed, validated sweep file with the command line's options folded in."""

    name: str
    source: str  # the sweep file's path (shipped sweeps: inside the package)
    preset: str | None
    config_file: str | None
    fixed: dict[str, Any]
    kind: str  # grid | runs | tpe | random
    scale: dict[str, Any] = field(default_factory=dict)  # set on every trial over its own settings
    options: SweepOptions = field(default_factory=SweepOptions)
    trials: list[Trial] = field(default_factory=list)  # grid and runs: the full plan
    space: dict[str, dict[str, Any]] = field(default_factory=dict)  # samplers
    budget: int = 0  # samplers: number of trials
    repeats: int = 1
    pruner: str = "none"

    @property
    def artifacts_dir(self) -> Path | None:
        """With ``--artifacts DIR``, where the trials go: the sweep's own folder in DIR (its name is its study's),
        so that sweeps sharing DIR never take each other's trials for their own; None without it."""
        return Path(self.options.artifacts) / self.name if self.options.artifacts else None

    def resolve(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Every key a trial sets over its base config: ``fixed``, the trial's own, ``scale``, the options, scaled
        epochs."""
        layered: dict[str, Any] = {}
        for layer in (self.fixed, overrides, self.scale, self.options.overrides()):  # later layers' keys come later
            layered = {key: value for key, value in layered.items() if key not in layer} | layer
        if self.options.epochs_scale is not None:
            epochs = config_mod.compose(self.preset, self.config_file, layered).train.epochs
            layered["train.epochs"] = max(1, round(epochs * self.options.epochs_scale))
        return layered

    def compose(self, overrides: dict[str, Any]) -> Config:
        """The full config of a trial with these own settings."""
        return config_mod.compose(self.preset, self.config_file, self.resolve(overrides))

    def plan(self) -> list[str]:
        """One fingerprint per planned trial (samplers: of the base and space), to detect a changed sweep."""
        def digest(obj: Any) -> str:
            return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]

        # Only what differs from the defaults: a config key added in a later version, at its default, leaves
        # a study started before it resumable.
        defaults = Config().to_dict()

        def config_of(overrides: dict[str, Any]) -> dict[str, Any]:
            cfg = self.compose(overrides).to_dict()
            cfg["data"].pop("path")  # workers on several machines see one dataset at different paths
            return _changed(cfg, defaults)

        if self.trials:
            return [digest([t.label, config_of(t.overrides)]) for t in self.trials]
        return [digest([self.kind, self.space, self.pruner, config_of({})])]


def _changed(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The entries of the nested mapping ``values`` that differ from ``defaults``."""
    out = {}
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            value = _changed(value, default)
            if value:
                out[key] = value
        elif key not in defaults or value != default:
            out[key] = value
    return out


def list_sweeps() -> list[str]:
    """Names of the sweeps shipped with the package."""
    root = resources.files("cifarlab") / "sweeps"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def resolve_sweep_file(path_or_name: str | Path) -> Path:
    """A sweep file's path, or the shipped sweep of that name."""
    path = Path(path_or_name)
    if path.is_file():
        return path.resolve()
    shipped = resources.files("cifarlab") / "sweeps" / f"{path_or_name}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    raise ConfigError(f"{path_or_name}: no such sweep file or shipped sweep (shipped: {', '.join(list_sweeps())})")


def load_sweep(path_or_name: str | Path, options: SweepOptions | None = None) -> SweepSpec:
    """Parse a sweep file (or shipped sweep name), expand its trials and validate every one."""
    knobs = options or SweepOptions()
    if knobs.epochs is not None and knobs.epochs_scale is not None:
        raise ConfigError("--epochs and --epochs-scale both set the epochs; give one")
    if knobs.epochs_scale is not None and not knobs.epochs_scale > 0:
        raise ConfigError(f"--epochs-scale must be positive, got {knobs.epochs_scale}")
    path = resolve_sweep_file(path_or_name)
    where = str(path)
    raw, folder = _read_with_parent(path, where)
    preset, config_file = _base(raw.get("base", {}), where, folder)
    repeats = raw.get("repeats", 1) if knobs.repeats is None else knobs.repeats
    if not _is_int(repeats) or repeats < 1:
        source = "--repeats" if knobs.repeats is not None else f"{where}: key 'repeats'"
        raise ConfigError(f"{source} must be a positive integer, got {repeats!r}")
    pruner = raw.get("pruner", "none")
    _must(pruner in ("none", "median"), where, "pruner", "none or median", pruner)
    metric = raw.get("metric", "val_acc")
    _must(metric == "val_acc", where, "metric", "val_acc (trials are never selected on the test set)", metric)
    name = raw.get("name", path.stem)
    _must(isinstance(name, str) and name and "/" not in name, where, "name", "a non-empty string without '/'", name)
    spec = SweepSpec(name=name, source=where, preset=preset, config_file=config_file,
                     fixed=_mapping(raw.get("fixed", {}), where, "fixed"), kind="", options=knobs,
                     scale=_mapping(raw.get("scale", {}), where, "scale"), repeats=repeats, pruner=pruner)
    config_mod.compose(preset, config_file)  # a broken base is reported as itself, naming its file or preset
    _check(spec, "command line " + " ".join(knobs.argv(plan_only=True)), knobs.overrides(), layered=False)
    _check(spec, f"{where}: fixed", spec.fixed, layered=False)
    _check(spec, f"{where}: scale", spec.scale, layered=False)
    _parse_search(spec, _mapping(raw.get("search"), where, "search"), where)
    _validate(spec, where)
    return spec


def _read_with_parent(path: Path, where: str) -> tuple[dict[str, Any], Path]:
    """The file's keys over those of the sweep it names in ``from`` (one level; not its name or description), and
    the folder that the base's ``config`` path is relative to (that of the file that gave ``base``)."""
    hint = f"(sweep keys: {', '.join(_TOP_KEYS)})"
    raw = config_mod.parse_yaml(path.read_text(), where)
    _known(raw, _TOP_KEYS, where, "", hint)
    if "from" not in raw:
        return raw, path.parent
    name = raw.pop("from")
    _must(isinstance(name, str) and name, where, "from", "a sweep file or shipped sweep", name)
    try:
        parent_path = resolve_sweep_file(path.parent / name if (path.parent / name).is_file() else name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: key 'from': {exc}") from None
    parent = config_mod.parse_yaml(parent_path.read_text(), str(parent_path))
    _known(parent, _TOP_KEYS, str(parent_path), "", hint)
    if "from" in parent:
        raise ConfigError(f"{where}: key 'from': {parent_path} takes its keys from another sweep in turn; "
                          "name that one")
    inherited = {key: value for key, value in parent.items() if key not in ("name", "description")}
    return inherited | raw, path.parent if "base" in raw else parent_path.parent


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _must(ok: Any, where: str, key: str, what: str, value: Any) -> None:
    """A ConfigError naming the file and key unless ``ok``."""
    if not ok:
        raise ConfigError(f"{where}: key '{key}' must be {what}, got {value!r}")


def _mapping(value: Any, where: str, key: str) -> dict[str, Any]:
    _must(isinstance(value, dict), where, key, "a mapping", value)
    return value


def _known(mapping: dict[str, Any], allowed: tuple[str, ...], where: str, prefix: str, hint: str) -> None:
    """A ConfigError naming the first key of ``mapping`` that is not ``allowed``."""
    unknown = next((key for key in mapping if key not in allowed), None)
    if unknown is not None:
        raise ConfigError(f"{where}: unknown key '{prefix}{unknown}' {hint}")


def _base(base: Any, where: str, folder: Path) -> tuple[str | None, str | None]:
    _known(_mapping(base, where, "base"), ("preset", "config"), where, "base.", "(use preset or config)")
    if "preset" in base and "config" in base:
        raise ConfigError(f"{where}: key 'base' takes a preset or a config file, not both")
    preset, config_file = base.get("preset"), base.get("config")
    _must(preset is None or isinstance(preset, str), where, "base.preset", "a preset name", preset)
    if config_file is not None:
        _must(isinstance(config_file, str), where, "base.config", "a file path", config_file)
        config_file = str((folder / config_file).resolve())
    return preset, config_file


def slug(overrides: dict[str, Any], short_floats: bool = False) -> str:
    """A label from a trial's settings: ``lr=0.001,batch_size=60`` (floats to 3 digits if ``short_floats``)."""
    def short(value: Any) -> str:
        return f"{value:.3g}" if short_floats and isinstance(value, float) else str(value)

    return ",".join(f"{k.split('.')[-1]}={short(v)}" for k, v in overrides.items()) or "base"


def _parse_search(spec: SweepSpec, search: dict[str, Any], where: str) -> None:
    kinds = [k for k in ("grid", "runs", "sampler") if k in search]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: key 'search' needs exactly one of grid, runs or sampler")
    allowed = ("sampler", "trials", "space") if kinds[0] == "sampler" else kinds
    _known(search, allowed, where, "search.", f"beside search.{kinds[0]}")
    if kinds[0] == "sampler":
        spec.kind = search["sampler"]
        _must(spec.kind in _SAMPLERS, where, "search.sampler", "tpe or random", spec.kind)
        spec.space = _parse_space(_mapping(search.get("space"), where, "search.space"), where)
        spec.budget = search.get("trials")
        _must(_is_int(spec.budget) and spec.budget >= 1, where, "search.trials", "a positive integer", spec.budget)
        if spec.repeats > 1:
            raise ConfigError(f"{where}: key 'repeats' applies to a grid or runs; a sampler draws each point once")
        return
    spec.kind = kinds[0]
    configs = _expand_grid(search["grid"], where) if spec.kind == "grid" else _expand_runs(search["runs"], where)
    for label, overrides, accuracy in configs:
        seed = _check(spec, f"{where}: trial '{label}'", overrides).train.seed
        for r in range(spec.repeats):
            own = dict(overrides)
            if spec.repeats > 1:  # seeds counted up from the configuration's own seed
                own["train.seed"] = seed + r
            run_label = f"{label}-seed{own['train.seed']}" if spec.repeats > 1 else label
            spec.trials.append(Trial(len(spec.trials), run_label, label, own, accuracy))


def _expand_grid(grid: Any, where: str) -> list[tuple[str, dict[str, Any], None]]:
    grid = _mapping(grid, where, "search.grid")
    if not grid:
        raise ConfigError(f"{where}: key 'search.grid' is empty: give each swept key a list of values")
    for key, values in grid.items():
        _must(isinstance(values, list) and values, where, f"search.grid.{key}", "a non-empty list of values", values)
    combos = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    return [(slug(c), c, None) for c in combos]


def _expand_runs(runs: Any, where: str) -> list[tuple[str, dict[str, Any], float | None]]:
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{where}: key 'search.runs' must be a non-empty list of runs")
    out, labels = [], set()
    for i, run in enumerate(runs):
        run = _mapping(run, where, f"search.runs[{i}]")
        _known(run, ("label", "set", "writeup_accuracy"), where, f"search.runs[{i}].",
               "(use label, set, writeup_accuracy)")
        overrides = _mapping(run.get("set", {}), where, f"search.runs[{i}].set")
        label = str(run.get("label") or slug(overrides))
        if label in labels:
            raise ConfigError(f"{where}: key 'search.runs[{i}].label': {label!r} is used twice")
        labels.add(label)
        accuracy = run.get("writeup_accuracy")
        _must(accuracy is None or isinstance(accuracy, (int, float)) and 0 <= accuracy <= 1, where,
              f"search.runs[{i}].writeup_accuracy", "a fraction in [0, 1] or null", accuracy)
        out.append((label, overrides, accuracy))
    return out


def _parse_space(space: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    if not space:
        raise ConfigError(f"{where}: key 'search.space' is empty")
    for key, dist in space.items():
        at = f"search.space.{key}"
        dist = _mapping(dist, where, at)
        kinds = [k for k in ("float", "int", "choice") if k in dist]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: key '{at}' needs exactly one of float, int, choice")
        kind, values = kinds[0], dist[kinds[0]]
        _known(dist, (kind, "log"), where, f"{at}.", f"(use {kind} and log)")
        if kind == "choice":
            _must(isinstance(values, list) and values, where, f"{at}.choice", "a non-empty list", values)
            continue
        number = _is_int if kind == "int" else (lambda v: _is_int(v) or isinstance(v, float))
        _must(isinstance(values, list) and len(values) == 2 and all(number(v) for v in values)
              and values[0] < values[1], where, f"{at}.{kind}", f"[low, high] {kind}s with low < high", values)
        if not isinstance(dist.get("log", False), bool) or (dist.get("log") and values[0] <= 0):
            raise ConfigError(f"{where}: key '{at}.log' must be true or false, and true needs low > 0")
    return space


def _validate(spec: SweepSpec, where: str) -> None:
    """Compose every trial (or every end of a sampler's ranges): any error names the trial or key."""
    searched = set(spec.space) | {k for t in spec.trials for k in t.overrides if k != "train.seed"}
    for key in spec.fixed:
        if key in searched:
            raise ConfigError(f"{where}: key '{key}' is both in 'fixed' and searched; keep one")
    if spec.trials:
        points = [(t.overrides, f"{where}: trial '{t.label}'") for t in spec.trials]
    else:
        points = [({key: value}, f"{where}: key 'search.space.{key}'")
                  for key, dist in spec.space.items() for value in dist.get("choice") or dist.get("float")
                  or dist.get("int")]
    for overrides, source in points:
        if _check(spec, source, overrides).data.val_size == 0:
            raise ConfigError(f"{source}: trials are ranked on validation accuracy, so data.val_size must be > 0")


def _check(spec: SweepSpec, source: str, overrides: dict[str, Any], layered: bool = True) -> Config:
    """A trial's config (``layered``: over ``fixed`` and the options); a ConfigError names ``source``, not the base."""
    try:
        return spec.compose(overrides) if layered else config_mod.compose(spec.preset, spec.config_file, overrides)
    except (ConfigError, ModelError) as exc:
        # compose names the base ("preset seed: key ..."), but the key at fault is in the sweep's own layer
        base = spec.config_file or f"preset {spec.preset or 'seed'}"
        message = str(exc).removeprefix(f"{base}: ")
        raise ConfigError(f"{source}: {message}") from None


def describe(spec: SweepSpec) -> dict[str, Any]:
    """The expanded sweep: every trial with every key it sets (``--dry-run``)."""
    head: dict[str, Any] = {"sweep": spec.name, "file": spec.source, "kind": spec.kind,
                            "base": spec.preset or spec.config_file or "seed", "pruner": spec.pruner}
    if spec.scale:
        head["scale"] = spec.scale
    if spec.artifacts_dir is not None:  # outside the sweep's folder: `cifarlab report SWEEP_DIR` finds them by this
        head["artifacts"] = str(spec.artifacts_dir.resolve())
    if spec.space:
        return {**head, "trials": spec.budget, "space": spec.space, "every trial sets": spec.resolve({})}
    runs = []
    for t in spec.trials:
        run = {"trial": t.index, "label": t.label, "set": spec.resolve(t.overrides)}
        if t.writeup_accuracy is not None:
            run["writeup_accuracy"] = t.writeup_accuracy
        runs.append(run)
    return {**head, "trials": len(runs), "repeats": spec.repeats, "runs": runs}


def dump(spec: SweepSpec) -> str:
    """:func:`describe` as YAML."""
    class NoAliases(yaml.SafeDumper):  # repeats share their settings' objects: spell each one out, no &id001
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(describe(spec), Dumper=NoAliases, sort_keys=False, allow_unicode=True)
