"""One way to check a mapping of user input: config sections, sweep files, model arguments and layer fields.

The target says what is allowed: a dataclass's fields or a function's keyword parameters are the keys, their
annotations the types (``int``, ``float | None``, ``list[int]``, ``dict[str, X]``, a nested dataclass), and a
:class:`Must` inside ``Annotated[...]`` what a type cannot say (``Annotated[float, POSITIVE]``). Every problem is
one line naming where and the key, e.g. ``config.yaml: key 'optim.lr' must be positive, got -0.1``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import keyword
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, TypeVar

from cifarlab.errors import CifarlabError, ConfigError, did_you_mean

T = TypeVar("T")


class Must(NamedTuple):
    """A constraint beyond the value's type: ``test(value)`` holds, else the key "must ``what``"."""

    test: Callable[[Any], bool]
    what: str  # completes "key 'x' must ...", e.g. "be positive"


POSITIVE = Must(lambda v: v > 0, "be positive")
NON_NEGATIVE = Must(lambda v: v >= 0, "not be negative")
FRACTION = Must(lambda v: 0 <= v < 1, "be in [0, 1)")  # NaN fails every comparison, so every range refuses it
UNIT = Must(lambda v: 0 <= v <= 1, "be in [0, 1]")
NOT_EMPTY = Must(lambda v: len(v) > 0, "not be empty")


def at_least(low: float) -> Must:
    """``value >= low``."""
    return Must(lambda v: v >= low, f"be at least {low}")


def one_of(*choices: str) -> Must:
    """``value`` is one of ``choices``."""
    return Must(lambda v: v in choices, "be " + (" or ".join(choices) if len(choices) < 3
                                                 else f"one of {', '.join(choices)}"))


def length(n: int, what: str) -> Must:
    """A list of ``n`` entries; ``what`` completes "must ...", e.g. "have 3 numbers"."""
    return Must(lambda v: len(v) == n, what)


class _Key(NamedTuple):
    """Where a value sits, for its error message."""

    where: str  # the file, preset, model or layer
    name: str  # e.g. "optim.lr"
    error: type[CifarlabError]
    noun: str  # key, argument or field
    nullable: bool = False  # None is allowed too (said in a type error)

    def fail(self, what: str, value: Any) -> CifarlabError:
        return self.error(f"{self.where}: {self.noun} '{self.name}' must {what}, got {value!r}")

    def type_error(self, what: str, value: Any) -> CifarlabError:
        return self.fail(f"be {what}" + (" or null" * self.nullable), value)

    def child(self, suffix: str) -> _Key:
        return self._replace(name=self.name + suffix, nullable=False)


def build(target: Callable[..., T], raw: Any, where: str, prefix: str = "", error: type[CifarlabError] = ConfigError,
          noun: str = "key") -> T:
    """Call ``target`` with the entries of the mapping ``raw``, each checked against its annotation.

    ``target`` is a dataclass (its fields are the keys) or a function or class (its keyword parameters; bind
    positional ones with :func:`functools.partial`). An unknown key, a missing required one, a wrong type or a
    broken :class:`Must` raises ``error`` naming ``where`` and the key as ``prefix + key``; ``noun`` is what the
    message calls a key.
    """
    at = prefix.rstrip(".")
    if not isinstance(raw, dict):
        raise error(f"{where}: {noun} '{at or '<root>'}' must be a mapping, got {raw!r}")
    func = target.func if isinstance(target, functools.partial) else target
    hints = typing.get_type_hints(func.__init__ if isinstance(func, type) else func, include_extras=True)
    params = inspect.signature(target).parameters
    # key -> parameter name; a key that is a Python keyword ("in") is the parameter with a trailing underscore
    names = {p.name[:-1] if p.name.endswith("_") and keyword.iskeyword(p.name[:-1]) else p.name: p.name
             for p in params.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in raw:
            if key not in names:
                raise error(f"{where}: unknown {noun} '{prefix}{key}'{did_you_mean(key, names, prefix)}; "
                            f"{noun}s{' of ' + at if at else ''}: {', '.join(names) or 'none'}")
    for key, name in names.items():
        if params[name].default is inspect.Parameter.empty and key not in raw:
            raise error(f"{where}: missing {noun} '{prefix}{key}'")
    kwargs = {}
    for key, value in raw.items():
        name = names.get(key, key)
        kwargs[name] = _coerce(hints.get(name, Any), value, _Key(where, f"{prefix}{key}", error, noun))
    return target(**kwargs)


def _coerce(tp: Any, value: Any, key: _Key) -> Any:
    """``value`` as the type ``tp``, meeting its ``Annotated`` constraints, or ``key``'s error."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        value = _coerce(args[0], value, key)
        for rule in tp.__metadata__:
            if not rule.test(value):
                raise key.fail(rule.what, value)
        return value
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key.where, f"{key.name}.", key.error, key.noun)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return None if value is None else _coerce(next(a for a in args if a is not type(None)), value,
                                                  key._replace(nullable=True))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise key.type_error("a list", value)
        return [_coerce(args[0], v, key.child(f"[{i}]")) for i, v in enumerate(value)] if args else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise key.type_error("a mapping", value)
        return {k: _coerce(args[1], v, key.child(f".{k}")) for k, v in value.items()} if args else value
    if tp is bool and isinstance(value, bool) or tp is str and isinstance(value, str):
        return value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int and number and (isinstance(value, int) or value.is_integer()):
        return int(value)
    if tp is float and number:
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "5e-4" as a string
        with contextlib.suppress(ValueError):
            return float(value)
    if tp in _NAMES:
        raise key.type_error(_NAMES[tp], value)
    raise TypeError(f"unsupported type {tp!r} for {key.name}")


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
