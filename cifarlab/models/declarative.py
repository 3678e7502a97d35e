"""Networks from a YAML layer list: shapes are tracked while building, so in-channels are inferred.

Each entry of ``model: layers:`` is a bare type (``relu``) or a one-key mapping ``type: {fields}``
(``residual: [layers...]`` for a block); any entry may carry ``name:`` (inside its fields or beside
the type). Unnamed layers get ``conv1, relu1, bn1, pool1, fc1, ...`` (numbered across the whole
network); a residual block's layers are its children (``res1.conv3``). An explicit ``in:`` on a
linear layer is checked against the tracked shape. Every problem is a :class:`ModelError` naming
the layer by position, type and name, e.g. ``layer 7 (linear fc1): in-features 4096 do not match
the incoming 512x2x2=2048; in-features 2048 would fit``. docs/networks.md shows the syntax in full.

:data:`LAYERS` is the one table of layer types: each type's fields with their defaults, its
default name stem and its builder. A new layer type is one builder and one row there.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any, NamedTuple

import torch
import torch.nn as nn

from cifarlab.errors import ModelError
from cifarlab.formatting import fmt_shape

Shape = tuple[int, ...]


class Residual(nn.Sequential):
    """``x + layers(x)``: a ``Sequential``, so its children are named under the block (``res1.conv3``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


@dataclass(frozen=True)
class ShapeError:
    """A size that cannot connect, found while building leniently (see :func:`build_layers`)."""

    layer: str  # qualified module name, e.g. ``fc1`` or ``res1.conv3``
    message: str  # the one-line message, naming the layer by position, type and name

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------- field readers
Reader = Callable[[Any, str, str], Any]  # (value, where, field name) -> the value as the builders use it


def _check(ok: bool, where: str, key: str, must: str, value: Any) -> None:
    if not ok:
        raise ModelError(f"{where}: field '{key}' must be {must}, got {value!r}")


def _int(minimum: int) -> Reader:
    def read(value: Any, where: str, key: str) -> int:
        _check(type(value) is int, where, key, "an integer", value)
        _check(value >= minimum, where, key, f">= {minimum}", value)
        return value
    return read


def _pair(minimum: int) -> Reader:
    def read(value: Any, where: str, key: str) -> tuple[int, int]:
        vals = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
        _check(len(vals) == 2 and all(type(v) is int for v in vals), where, key, "an integer or [h, w]", value)
        _check(min(vals) >= minimum, where, key, f">= {minimum}", value)
        return vals
    return read


def _num(lo: float, hi: float = math.inf) -> Reader:
    def read(value: Any, where: str, key: str) -> float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), where, key, "a number", value)
        _check(lo <= value <= hi, where, key, f"in [{lo}, {hi}]" if hi < math.inf else f">= {lo}", value)  # NaN fails
        return float(value)
    return read


def _bool(value: Any, where: str, key: str) -> bool:
    _check(isinstance(value, bool), where, key, "true or false", value)
    return value


REQUIRED = object()  # the default of a field that must be given


class Field(NamedTuple):
    """One field of a layer type: its reader and default (as read; None when the builder derives it)."""

    read: Reader
    default: Any = REQUIRED


# ---------------------------------------------------------------- building


@dataclass
class Layer:
    """What a builder sees of the layer it builds: the incoming shape and how to report a mismatch."""

    shape: Shape  # incoming, without the batch dimension
    desc: str  # how messages describe the incoming shape, e.g. "512x2x2=2048"
    where: str  # "layer 7 (linear fc1)"
    pos: str  # "7", or "2.1" inside a residual block
    qualname: str  # the module's name in the network, e.g. "res1.conv3"
    build: _Build
    out_desc: str | None = None  # set by a builder that describes its output specially (flatten)
    _reported: bool = False

    def mismatch(self, message: str) -> None:
        """A size that cannot connect. Raised; when lenient, recorded (the first per layer) and the layer built.

        Every error that depends on the incoming shape goes through here, so lenient mode treats them alike.
        """
        if not self.build.lenient:
            raise ModelError(f"{self.where}: {message}")
        if not self._reported:
            self.build.errors.append(ShapeError(self.qualname, f"{self.where}: {message}"))
            self._reported = True

    def image(self) -> tuple[int, int, int]:
        """The incoming CxHxW; lenient on anything else, its first dimensions padded with 1s."""
        if len(self.shape) != 3:
            self.mismatch(f"needs an image input CxHxW, but the incoming shape is {self.desc}")
        c, h, w = (*self.shape, 1, 1)[:3]
        return c, h, w


Builder = Callable[[dict[str, Any], Layer], tuple[nn.Module, Shape]]  # (checked fields, layer) -> (module, out shape)


def _out_size(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return max((size + 2 * p - d * (k - 1) - 1) // s + 1, 1)


def _conv(f: dict[str, Any], x: Layer) -> tuple[nn.Module, Shape]:
    c, h, w = x.image()
    out, groups, (kh, kw), (ph, pw), (dh, dw) = f["out"], f["groups"], f["kernel"], f["padding"], f["dilation"]
    message = f"groups {groups} must divide in-channels {c} and out-channels {out}"
    if out % groups:
        raise ModelError(f"{x.where}: {message}")
    if c % groups:
        x.mismatch(message)
        c += -c % groups  # the nearest in-channels the groups allow: the layer builds, the trace stops there
    if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
        x.mismatch(f"kernel {kh}x{kw} is larger than the incoming {h}x{w} (padding {ph}x{pw})")
    (sh, sw) = f["stride"]
    module = nn.Conv2d(c, out, (kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups,
                       bias=f["bias"])
    return module, (out, _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw))


def _pool(cls: type[nn.Module]) -> Builder:
    def build(f: dict[str, Any], x: Layer) -> tuple[nn.Module, Shape]:
        c, h, w = x.image()
        (kh, kw), (ph, pw) = f["kernel"], f["padding"]
        sh, sw = f["stride"] or f["kernel"]
        if ph * 2 > kh or pw * 2 > kw:
            raise ModelError(f"{x.where}: padding {ph}x{pw} must be at most half the kernel {kh}x{kw}")
        if kh > h + 2 * ph or kw > w + 2 * pw:
            x.mismatch(f"kernel {kh}x{kw} is larger than the incoming {h}x{w}")
        module = cls((kh, kw), stride=(sh, sw), padding=(ph, pw))
        return module, (c, _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw))
    return build


def _adaptive_pool(cls: type[nn.Module]) -> Builder:
    return lambda f, x: (cls(f["size"]), (x.image()[0], *f["size"]))


def _same_shape(cls: type[nn.Module]) -> Builder:
    """A layer that keeps its input's shape (activations, dropout); its fields are ``cls``'s arguments, in order."""
    return lambda f, x: (cls(*f.values()), x.shape)


def _batchnorm(f: dict[str, Any], x: Layer) -> tuple[nn.Module, Shape]:
    if len(x.shape) not in (1, 3):
        x.mismatch(f"needs CxHxW or features input, got {x.desc}")
    cls = nn.BatchNorm2d if len(x.shape) == 3 else nn.BatchNorm1d
    return cls(x.shape[0], eps=f["eps"], momentum=f["momentum"]), x.shape


def _flatten(f: dict[str, Any], x: Layer) -> tuple[nn.Module, Shape]:
    n = math.prod(x.shape)
    if len(x.shape) > 1:
        x.out_desc = f"{fmt_shape(x.shape)}={n}"  # later messages show where the features came from
    return nn.Flatten(), (n,)


def _linear(f: dict[str, Any], x: Layer) -> tuple[nn.Module, Shape]:
    n = math.prod(x.shape)
    if len(x.shape) != 1:
        x.mismatch(f"the incoming shape {fmt_shape(x.shape)} is not flat; add '- flatten' before it "
                   f"(then in-features {n} would fit)")
    cin = f["in"] if f["in"] is not None else n
    if cin != n:
        x.mismatch(f"in-features {cin} do not match the incoming {x.desc}; in-features {n} would fit")
    return nn.Linear(cin, f["out"], bias=f["bias"]), (f["out"],)


def _residual(f: dict[str, Any], x: Layer) -> tuple[nn.Module, Shape]:
    body, shape = x.build.layers(f["layers"], x.shape, x.desc, parent=x)
    if shape != x.shape:
        x.mismatch(f"the residual body changes the shape from {fmt_shape(x.shape)} to {fmt_shape(shape)}; "
                   "it must keep it")
    return Residual(body), x.shape


class LayerType(NamedTuple):
    """One row of :data:`LAYERS`: fields (in the order messages list them), default name stem, builder."""

    fields: dict[str, Field]
    stem: str
    build: Builder


_POOL = {"kernel": Field(_pair(1), (2, 2)), "stride": Field(_pair(1), None), "padding": Field(_pair(0), (0, 0))}
_ADAPTIVE = {"size": Field(_pair(1), (1, 1))}
_BIAS = Field(_bool, True)

LAYERS: dict[str, LayerType] = {
    "conv": LayerType({"out": Field(_int(1)), "kernel": Field(_pair(1)), "stride": Field(_pair(1), (1, 1)),
                       "padding": Field(_pair(0), (0, 0)), "groups": Field(_int(1), 1), "bias": _BIAS,
                       "dilation": Field(_pair(1), (1, 1))}, "conv", _conv),
    "relu": LayerType({}, "relu", _same_shape(nn.ReLU)),
    "gelu": LayerType({}, "gelu", _same_shape(nn.GELU)),
    "silu": LayerType({}, "silu", _same_shape(nn.SiLU)),
    "sigmoid": LayerType({}, "sigmoid", _same_shape(nn.Sigmoid)),
    "tanh": LayerType({}, "tanh", _same_shape(nn.Tanh)),
    "identity": LayerType({}, "identity", _same_shape(nn.Identity)),
    "leakyrelu": LayerType({"slope": Field(_num(0.0), 0.01)}, "leakyrelu", _same_shape(nn.LeakyReLU)),
    "batchnorm": LayerType({"eps": Field(_num(0.0), 1e-5), "momentum": Field(_num(0.0, 1.0), 0.1)}, "bn", _batchnorm),
    "maxpool": LayerType(_POOL, "pool", _pool(nn.MaxPool2d)),
    "avgpool": LayerType(_POOL, "pool", _pool(nn.AvgPool2d)),
    "adaptiveavgpool": LayerType(_ADAPTIVE, "pool", _adaptive_pool(nn.AdaptiveAvgPool2d)),
    "adaptivemaxpool": LayerType(_ADAPTIVE, "pool", _adaptive_pool(nn.AdaptiveMaxPool2d)),
    "dropout": LayerType({"p": Field(_num(0.0, 1.0), 0.5)}, "dropout", _same_shape(nn.Dropout)),
    "flatten": LayerType({}, "flatten", _flatten),
    "linear": LayerType({"out": Field(_int(1)), "in": Field(_int(1), None), "bias": _BIAS}, "fc", _linear),
    # The body is checked when the block builds it.
    "residual": LayerType({"layers": Field(lambda value, where, key: value)}, "res", _residual),
}


def _parse_entry(entry: Any, pos: str) -> tuple[str, dict[str, Any], str | None]:
    """Split one list entry into (type, fields, explicit name)."""
    if isinstance(entry, str):
        kind, fields, name = entry, None, None
    elif isinstance(entry, dict):
        rest = dict(entry)
        name = rest.pop("name", None)
        if len(rest) != 1:
            raise ModelError(f"layer {pos}: expected one layer type per entry, got keys {sorted(map(str, entry))}")
        [(kind, fields)] = rest.items()
    else:
        raise ModelError(f"layer {pos}: expected a layer type or a mapping, got {entry!r}")
    kind = str(kind).strip().lower()
    if kind == "residual":  # its value is the body's layer list
        fields = {"layers": fields}
    fields = {} if fields is None else fields
    if not isinstance(fields, dict):
        raise ModelError(f"layer {pos} ({kind}): fields must be a mapping, got {fields!r}")
    fields = dict(fields)
    name = fields.pop("name", name)
    if kind not in LAYERS:
        close = difflib.get_close_matches(kind, LAYERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelError(f"layer {pos}: unknown layer type {kind!r}{hint}; known: {', '.join(LAYERS)}")
    if name is not None and not isinstance(name, str):
        raise ModelError(f"layer {pos} ({kind}): name must be a string, got {name!r}")
    return kind, fields, name


def _read_fields(spec: LayerType, given: dict[str, Any], where: str) -> dict[str, Any]:
    """Every field of ``spec``, checked: the given value, else the default."""
    for key in given:
        if key not in spec.fields:
            raise ModelError(f"{where}: unknown field {key!r} (fields: {', '.join(spec.fields) or 'none'})")
    for key, fld in spec.fields.items():
        if fld.default is REQUIRED and key not in given:
            raise ModelError(f"{where}: missing field {key!r}")
    return {key: fld.read(given[key], where, key) if key in given else fld.default
            for key, fld in spec.fields.items()}


@dataclass
class _Build:
    """One whole build: layer names taken so far and, when lenient, the sizes that could not connect."""

    lenient: bool
    counters: Counter[str] = field(default_factory=Counter)
    used: set[str] = field(default_factory=set)
    errors: list[ShapeError] = field(default_factory=list)

    def layers(self, layers: Any, shape: Shape, desc: str,
               parent: Layer | None = None) -> tuple[OrderedDict[str, nn.Module], Shape]:
        """Build ``layers`` on ``shape``; inside ``parent`` (a residual block) positions and names nest under it."""
        if not isinstance(layers, list) or not layers:
            where = parent.where if parent else "layers"
            raise ModelError(f"{where}: expected a non-empty list of layers, got {layers!r}")
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        for i, entry in enumerate(layers, start=1):
            pos = f"{parent.pos}.{i}" if parent else str(i)
            kind, given, name = _parse_entry(entry, pos)
            spec = LAYERS[kind]
            if name is None:  # the stem's next number that no layer has taken
                self.counters[spec.stem] = next(n for n in count(self.counters[spec.stem] + 1)
                                                if f"{spec.stem}{n}" not in self.used)
                name = f"{spec.stem}{self.counters[spec.stem]}"
            where = f"layer {pos} ({kind} {name})"
            if name in self.used or not name or "." in name:
                raise ModelError(f"{where}: the name {name!r} is already used or not a valid name")
            self.used.add(name)
            layer = Layer(shape, desc, where, pos, f"{parent.qualname}.{name}" if parent else name, self)
            modules[name], shape = spec.build(_read_fields(spec, given, where), layer)
            desc = layer.out_desc or fmt_shape(shape)
        return modules, shape


def build_layers(layers: Any, input_shape: Shape = (3, 32, 32),
                 lenient: bool = False) -> tuple[nn.Sequential, list[ShapeError], Shape]:
    """Build ``layers``; return (model, shape errors, output shape without batch).

    With ``lenient`` every size that cannot connect to the incoming shape (explicit ``in:``, a kernel larger
    than the input, groups that do not divide the in-channels, an image layer on features, a residual changing
    the shape) is recorded instead of raised and the layer is still built, so an inspection can trace the
    network up to the failing layer. Malformed entries always raise.
    """
    shape = tuple(int(s) for s in input_shape)
    build = _Build(lenient)
    modules, out = build.layers(layers, shape, fmt_shape(shape))
    return nn.Sequential(modules), build.errors, out


def build_from_layers(layers: Any, input_shape: Shape = (3, 32, 32)) -> nn.Sequential:
    """Build an ``nn.Sequential`` from a YAML layer list, inferring in-channels and in-features."""
    return build_layers(layers, input_shape)[0]
