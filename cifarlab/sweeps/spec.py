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
from pathlib import Path
from typing import Annotated, Any

import yaml

from cifarlab import config as config_mod
from cifarlab.config import Config
from cifarlab.errors import ConfigError, ModelError
from cifarlab.schema import NOT_EMPTY, POSITIVE, UNIT, Must, build, one_of
from cifarlab.sweeps.options import SweepOptions


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
    def sweep_dir(self) -> Path:
        """The sweep's folder: ``--out``, else ``sweeps/<name>``."""
        return Path(self.options.out_dir) if self.options.out_dir is not None else Path("sweeps") / self.name

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
    return list(config_mod.shipped("sweeps"))


def resolve_sweep_file(path_or_name: str | Path) -> Path:
    """A sweep file's path, or the shipped sweep of that name."""
    path = Path(path_or_name)
    if path.is_file():
        return path.resolve()
    shipped = config_mod.shipped("sweeps").get(str(path_or_name))
    if shipped is not None:
        return shipped
    raise ConfigError(f"{path_or_name}: no such sweep file or shipped sweep (shipped: {', '.join(list_sweeps())})")


_VAL_ACC = "be val_acc (trials are never selected on the test set)"


@dataclass
class _Base:
    preset: str | None = None
    config: str | None = None  # relative to the file that gives ``base``


@dataclass(kw_only=True)
class _SweepFile:
    """A sweep file's keys (docs/sweeps.md); ``from`` is resolved before."""

    name: Annotated[str, Must(lambda v: v and "/" not in v, "be a non-empty string without '/'")] | None = None
    description: Any = None
    base: _Base = field(default_factory=_Base)
    fixed: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any]  # checked by _parse_search, as its keys depend on its kind
    scale: dict[str, Any] = field(default_factory=dict)
    repeats: Annotated[int, POSITIVE] = 1
    pruner: Annotated[str, one_of("none", "median")] = "none"
    metric: Annotated[str, Must(lambda v: v == "val_acc", _VAL_ACC)] = "val_acc"


@dataclass
class _Run:
    label: Any = None  # default: the slug of its settings
    set: dict[str, Any] = field(default_factory=dict)
    writeup_accuracy: Annotated[float, UNIT] | None = None


@dataclass
class _Grid:
    grid: Annotated[dict[str, Annotated[list[Any], NOT_EMPTY]], Must(len, "list each swept key with its values")]


@dataclass
class _Runs:
    runs: Annotated[list[_Run], NOT_EMPTY]


@dataclass
class _Sampler:
    sampler: Annotated[str, one_of("tpe", "random")]
    trials: Annotated[int, POSITIVE]
    space: Annotated[dict[str, Any], NOT_EMPTY]


_LOW_HIGH = Must(lambda v: len(v) == 2 and v[0] < v[1], "be [low, high] with low < high")


def _distribution(float: Annotated[list[float], _LOW_HIGH] | None = None,
                  int: Annotated[list[int], _LOW_HIGH] | None = None,
                  choice: Annotated[list[Any], NOT_EMPTY] | None = None, log: bool = False) -> None:
    """The keys of one ``search.space`` entry, checked only: the sampler and the plan's fingerprint keep the file's
    own values (``float: [1, 2]`` stays integers)."""


def load_sweep(path_or_name: str | Path, options: SweepOptions | None = None) -> SweepSpec:
    """Parse a sweep file (or shipped sweep name), expand its trials and validate every one."""
    knobs = options or SweepOptions()
    if knobs.epochs is not None and knobs.epochs_scale is not None:
        raise ConfigError("--epochs and --epochs-scale both set the epochs; give one")
    if knobs.epochs_scale is not None and not knobs.epochs_scale > 0:
        raise ConfigError(f"--epochs-scale must be positive, got {knobs.epochs_scale}")
    if knobs.repeats is not None and (type(knobs.repeats) is not int or knobs.repeats < 1):
        raise ConfigError(f"--repeats must be a positive integer, got {knobs.repeats!r}")
    path = resolve_sweep_file(path_or_name)
    where = str(path)
    file, folder = _read_with_parent(path, where)
    preset, config_file = file.base.preset, file.base.config
    if preset is not None and config_file is not None:
        raise ConfigError(f"{where}: key 'base' takes a preset or a config file, not both")
    if config_file is not None:
        config_file = str((folder / config_file).resolve())
    spec = SweepSpec(name=file.name or path.stem, source=where, preset=preset, config_file=config_file,
                     fixed=file.fixed, kind="", options=knobs, scale=file.scale, pruner=file.pruner,
                     repeats=file.repeats if knobs.repeats is None else knobs.repeats)
    config_mod.compose(preset, config_file)  # a broken base is reported as itself, naming its file or preset
    _check(spec, "command line " + " ".join(knobs.argv(plan_only=True)), knobs.overrides(), layered=False)
    _check(spec, f"{where}: fixed", spec.fixed, layered=False)
    _check(spec, f"{where}: scale", spec.scale, layered=False)
    _parse_search(spec, file.search, where)
    _validate(spec, where)
    return spec


def _read_with_parent(path: Path, where: str) -> tuple[_SweepFile, Path]:
    """The file's keys over those of the sweep it names in ``from`` (one level; not its name or description), and
    the folder that the base's ``config`` path is relative to (that of the file that gave ``base``)."""
    raw = config_mod.parse_yaml(path.read_text(), where)
    if "from" not in raw:
        return build(_SweepFile, raw, where), path.parent
    name = raw.pop("from")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: key 'from' must be a sweep file or shipped sweep, got {name!r}")
    try:
        parent_path = resolve_sweep_file(path.parent / name if (path.parent / name).is_file() else name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: key 'from': {exc}") from None
    parent = config_mod.parse_yaml(parent_path.read_text(), str(parent_path))
    if "from" in parent:
        raise ConfigError(f"{where}: key 'from': {parent_path} takes its keys from another sweep in turn; "
                          "name that one")
    build(_SweepFile, parent, str(parent_path))  # a fault in the parent is reported as its own
    inherited = {key: value for key, value in parent.items() if key not in ("name", "description")}
    return build(_SweepFile, inherited | raw, where), path.parent if "base" in raw else parent_path.parent


def slug(overrides: dict[str, Any], short_floats: bool = False) -> str:
    """A label from a trial's settings: ``lr=0.001,batch_size=60`` (floats to 3 digits if ``short_floats``)."""
    def short(value: Any) -> str:
        return f"{value:.3g}" if short_floats and isinstance(value, float) else str(value)

    return ",".join(f"{k.split('.')[-1]}={short(v)}" for k, v in overrides.items()) or "base"


def _parse_search(spec: SweepSpec, search: dict[str, Any], where: str) -> None:
    kinds = [k for k in ("grid", "runs", "sampler") if k in search]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: key 'search' needs exactly one of grid, runs or sampler")
    parsed = build({"grid": _Grid, "runs": _Runs, "sampler": _Sampler}[kinds[0]], search, where, "search.")
    spec.kind = kinds[0]
    if spec.kind == "sampler":
        spec.kind, spec.budget, spec.space = parsed.sampler, parsed.trials, search["space"]
        for key, dist in spec.space.items():
            at = f"search.space.{key}"
            build(_distribution, dist, where, f"{at}.")
            given = [k for k in ("float", "int", "choice") if k in dist]
            if len(given) != 1:
                raise ConfigError(f"{where}: key '{at}' needs exactly one of float, int, choice")
            if dist.get("log") and given[0] != "choice" and dist[given[0]][0] <= 0:
                raise ConfigError(f"{where}: key '{at}.log' needs low > 0")
        if spec.repeats > 1:
            raise ConfigError(f"{where}: key 'repeats' applies to a grid or runs; a sampler draws each point once")
        return
    if spec.kind == "grid":
        configs = [(slug(c), c, None) for c in (dict(zip(parsed.grid, combo))
                                                for combo in itertools.product(*parsed.grid.values()))]
    else:
        configs = [(str(run.label or slug(run.set)), run.set, run.writeup_accuracy) for run in parsed.runs]
        labels = [label for label, _, _ in configs]
        for i, label in enumerate(labels):
            if label in labels[:i]:
                raise ConfigError(f"{where}: key 'search.runs[{i}].label': {label!r} is used twice")
    for label, overrides, accuracy in configs:
        seed = _check(spec, f"{where}: trial '{label}'", overrides).train.seed
        for r in range(spec.repeats):
            own = dict(overrides)
            if spec.repeats > 1:  # seeds counted up from the configuration's own seed
                own["train.seed"] = seed + r
            run_label = f"{label}-seed{own['train.seed']}" if spec.repeats > 1 else label
            spec.trials.append(Trial(len(spec.trials), run_label, label, own, accuracy))


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
