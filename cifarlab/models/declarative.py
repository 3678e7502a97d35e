"""Networks from a YAML layer list: shapes are tracked while building, so in-channels are inferred.

Each entry of ``model: layers:`` is a bare type (``relu``) or a one-key mapping ``type: {fields}``
(``residual: [layers...]`` for a block); any entry may carry ``name:`` (inside its fields or beside
the type). Unnamed layers get ``conv1, relu1, bn1, pool1, fc1, ...`` (numbered across the whole
network); a residual block's layers are its children (``res1.conv3``). An explicit ``in:`` on a
linear layer is checked against the tracked shape. Every problem is a :class:`ModelError` naming
the layer by position, type and name, e.g. ``layer 7 (linear fc1): in-features 4096 do not match
the incoming 512x2x2=2048; in-features 2048 would fit``. docs/networks.md shows the syntax in full.

:data:`LAYERS` is the one table of layer types: each type's default name stem and its builder, whose
keyword parameters are the type's fields, with their defaults and annotated checks (:mod:`cifarlab.schema`).
A new layer type is one builder and one row there.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Annotated, Any, NamedTuple

import torch
import torch.nn as nn

from cifarlab.errors import ModelError, did_you_mean
from cifarlab.formatting import fmt_shape
from cifarlab.models.registry import INPUT_SHAPE
from cifarlab.schema import NON_NEGATIVE, POSITIVE, UNIT, Must, build

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


# ---------------------------------------------------------------- field types


def _hw(value: Any) -> tuple:
    """An integer or [h, w] as (h, w)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _pair(rule: Must) -> Any:
    """The annotation of an integer-or-[h, w] field whose sides meet ``rule``; builders read it with :func:`_hw`."""
    sides = Must(lambda v: len(_hw(v)) == 2 and all(type(s) is int for s in _hw(v)), "be an integer or [h, w]")
    return Annotated[Any, sides, Must(lambda v: all(rule.test(s) for s in _hw(v)), rule.what)]


Count = Annotated[int, POSITIVE]
Pair = _pair(POSITIVE)
Padding = _pair(NON_NEGATIVE)


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


# (layer, /, **checked fields) -> (module, out shape); its keyword parameters are the layer type's fields
Builder = Callable[..., tuple[nn.Module, Shape]]


def _out_size(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return max((size + 2 * p - d * (k - 1) - 1) // s + 1, 1)


def _conv(x: Layer, /, out: Count, kernel: Pair, stride: Pair = 1, padding: Padding = 0, groups: Count = 1,
          bias: bool = True, dilation: Pair = 1) -> tuple[nn.Module, Shape]:
    c, h, w = x.image()
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_hw, (kernel, stride, padding, dilation))
    message = f"groups {groups} must divide in-channels {c} and out-channels {out}"
    if out % groups:
        raise ModelError(f"{x.where}: {message}")
    if c % groups:
        x.mismatch(message)
        c += -c % groups  # the nearest in-channels the groups allow: the layer builds, the trace stops there
    if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
        x.mismatch(f"kernel {kh}x{kw} is larger than the incoming {h}x{w} (padding {ph}x{pw})")
    module = nn.Conv2d(c, out, (kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups,
                       bias=bias)
    return module, (out, _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw))


def _pool(cls: type[nn.Module]) -> Builder:
    def build(x: Layer, /, kernel: Pair = 2, stride: Pair = None, padding: Padding = 0) -> tuple[nn.Module, Shape]:
        c, h, w = x.image()
        (kh, kw), (sh, sw), (ph, pw) = _hw(kernel), _hw(stride or kernel), _hw(padding)
        if ph * 2 > kh or pw * 2 > kw:
            raise ModelError(f"{x.where}: padding {ph}x{pw} must be at most half the kernel {kh}x{kw}")
        if kh > h + 2 * ph or kw > w + 2 * pw:
            x.mismatch(f"kernel {kh}x{kw} is larger than the incoming {h}x{w}")
        module = cls((kh, kw), stride=(sh, sw), padding=(ph, pw))
        return module, (c, _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw))
    return build


def _adaptive_pool(cls: type[nn.Module]) -> Builder:
    def build(x: Layer, /, size: Pair = 1) -> tuple[nn.Module, Shape]:
        return cls(_hw(size)), (x.image()[0], *_hw(size))
    return build


def _same_shape(cls: type[nn.Module]) -> Builder:
    """A layer without fields that keeps its input's shape (an activation)."""
    return lambda x, /: (cls(), x.shape)


def _leakyrelu(x: Layer, /, slope: Annotated[float, NON_NEGATIVE] = 0.01) -> tuple[nn.Module, Shape]:
    return nn.LeakyReLU(slope), x.shape


def _dropout(x: Layer, /, p: Annotated[float, UNIT] = 0.5) -> tuple[nn.Module, Shape]:
    return nn.Dropout(p), x.shape


def _batchnorm(x: Layer, /, eps: Annotated[float, NON_NEGATIVE] = 1e-5,
               momentum: Annotated[float, UNIT] = 0.1) -> tuple[nn.Module, Shape]:
    if len(x.shape) not in (1, 3):
        x.mismatch(f"needs CxHxW or features input, got {x.desc}")
    cls = nn.BatchNorm2d if len(x.shape) == 3 else nn.BatchNorm1d
    return cls(x.shape[0], eps=eps, momentum=momentum), x.shape


def _flatten(x: Layer, /) -> tuple[nn.Module, Shape]:
    n = math.prod(x.shape)
    if len(x.shape) > 1:
        x.out_desc = f"{fmt_shape(x.shape)}={n}"  # later messages show where the features came from
    return nn.Flatten(), (n,)


def _linear(x: Layer, /, out: Count, in_: Count | None = None, bias: bool = True) -> tuple[nn.Module, Shape]:
    n = math.prod(x.shape)
    if len(x.shape) != 1:
        x.mismatch(f"the incoming shape {fmt_shape(x.shape)} is not flat; add '- flatten' before it "
                   f"(then in-features {n} would fit)")
    cin = in_ if in_ is not None else n
    if cin != n:
        x.mismatch(f"in-features {cin} do not match the incoming {x.desc}; in-features {n} would fit")
    return nn.Linear(cin, out, bias=bias), (out,)


def _residual(x: Layer, /, layers: Any) -> tuple[nn.Module, Shape]:
    body, shape = x.build.layers(layers, x.shape, x.desc, parent=x)  # the body is checked as it is built
    if shape != x.shape:
        x.mismatch(f"the residual body changes the shape from {fmt_shape(x.shape)} to {fmt_shape(shape)}; "
                   "it must keep it")
    return Residual(body), x.shape


class LayerType(NamedTuple):
    """One row of :data:`LAYERS`: default name stem and builder, whose keyword parameters are the type's fields."""

    stem: str
    build: Builder


LAYERS: dict[str, LayerType] = {
    "conv": LayerType("conv", _conv),
    "relu": LayerType("relu", _same_shape(nn.ReLU)),
    "gelu": LayerType("gelu", _same_shape(nn.GELU)),
    "silu": LayerType("silu", _same_shape(nn.SiLU)),
    "sigmoid": LayerType("sigmoid", _same_shape(nn.Sigmoid)),
    "tanh": LayerType("tanh", _same_shape(nn.Tanh)),
    "identity": LayerType("identity", _same_shape(nn.Identity)),
    "leakyrelu": LayerType("leakyrelu", _leakyrelu),
    "batchnorm": LayerType("bn", _batchnorm),
    "maxpool": LayerType("pool", _pool(nn.MaxPool2d)),
    "avgpool": LayerType("pool", _pool(nn.AvgPool2d)),
    "adaptiveavgpool": LayerType("pool", _adaptive_pool(nn.AdaptiveAvgPool2d)),
    "adaptivemaxpool": LayerType("pool", _adaptive_pool(nn.AdaptiveMaxPool2d)),
    "dropout": LayerType("dropout", _dropout),
    "flatten": LayerType("flatten", _flatten),
    "linear": LayerType("fc", _linear),
    "residual": LayerType("res", _residual),
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
        raise ModelError(f"layer {pos}: unknown layer type {kind!r}{did_you_mean(kind, LAYERS)}; "
                         f"known: {', '.join(LAYERS)}")
    if name is not None and not isinstance(name, str):
        raise ModelError(f"layer {pos} ({kind}): name must be a string, got {name!r}")
    return kind, fields, name


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
            modules[name], shape = build(functools.partial(spec.build, layer), given, where, error=ModelError,
                                         noun="field")
            desc = layer.out_desc or fmt_shape(shape)
        return modules, shape


def build_layers(layers: Any, input_shape: Shape = INPUT_SHAPE,
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


def build_from_layers(layers: Any, input_shape: Shape = INPUT_SHAPE) -> nn.Sequential:
    """Build an ``nn.Sequential`` from a YAML layer list, inferring in-channels and in-features."""
    return build_layers(layers, input_shape)[0]
