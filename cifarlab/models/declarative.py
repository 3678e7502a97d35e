"""Networks from a YAML layer list: shapes are tracked while building, so in-channels are inferred.

A model config may describe its network inline instead of naming a registered one::

    model:
      layers:
        - conv: {out: 32, kernel: 3, padding: 1}
        - relu
        - batchnorm
        - maxpool: {kernel: 2}
        - residual:
            - conv: {out: 32, kernel: 3, padding: 1}
            - relu
        - adaptiveavgpool: {size: [2, 2]}
        - flatten
        - linear: {out: 10}

Each entry is a bare type (``relu``) or a one-key mapping ``type: {fields}``; any
entry may carry ``name:`` (inside its fields or beside the type). Unnamed layers
get ``conv1, relu1, bn1, pool1, fc1, ...`` (numbered across the whole network);
a residual block's layers are its children (``res1.conv3``). In-channels and in-features are
inferred from the tracked shape; an explicit ``in:`` on a linear layer is checked
against it. Every problem is a :class:`ModelError` naming the layer by position,
type and name, e.g. ``layer 7 (linear fc1): in-features 4096 do not match the
incoming 512x2x2=2048; in-features 2048 would fit``.

Layer types and fields (defaults in brackets):

=================  ==========================================================================
conv               out, kernel, stride [1], padding [0], groups [1], bias [true], dilation [1]
relu, gelu, silu   (none); leakyrelu: slope [0.01]; sigmoid, tanh, identity: (none)
batchnorm          eps [1e-5], momentum [0.1]  (2-D on images, 1-D on features)
maxpool, avgpool   kernel [2], stride [kernel], padding [0]
adaptiveavgpool    size [1] (int or [h, w]); adaptivemaxpool likewise
dropout            p [0.5]
flatten            (none)
linear             out, in [inferred], bias [true]
residual           a list of layers whose output shape equals its input shape
=================  ==========================================================================
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from cifarlab.errors import ModelError

# type -> (allowed fields, required fields, default name prefix)
_SPECS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "conv": (("out", "kernel", "stride", "padding", "groups", "bias", "dilation"), ("out", "kernel"), "conv"),
    "relu": ((), (), "relu"),
    "gelu": ((), (), "gelu"),
    "silu": ((), (), "silu"),
    "sigmoid": ((), (), "sigmoid"),
    "tanh": ((), (), "tanh"),
    "identity": ((), (), "identity"),
    "leakyrelu": (("slope",), (), "leakyrelu"),
    "batchnorm": (("eps", "momentum"), (), "bn"),
    "maxpool": (("kernel", "stride", "padding"), (), "pool"),
    "avgpool": (("kernel", "stride", "padding"), (), "pool"),
    "adaptiveavgpool": (("size",), (), "pool"),
    "adaptivemaxpool": (("size",), (), "pool"),
    "dropout": (("p",), (), "dropout"),
    "flatten": ((), (), "flatten"),
    "linear": (("out", "in", "bias"), ("out",), "fc"),
    "residual": ((), (), "res"),
}


class Residual(nn.Sequential):
    """``x + layers(x)``: a sequence whose output shape equals its input's.

    A ``Sequential`` subclass, so its children are named directly under the
    block (``res1.conv3``) in state dicts, inspection rows and error messages.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


@dataclass(frozen=True)
class ShapeError:
    """A size that cannot connect, found while building leniently (see :func:`build_layers`)."""

    layer: str  # qualified module name, e.g. ``fc1`` or ``res1.conv3``
    message: str  # the one-line message, naming the layer by position, type and name

    def __str__(self) -> str:
        return self.message


@dataclass
class _State:
    """Shape tracking while building: ``shape`` excludes the batch dimension."""

    shape: tuple[int, ...]
    desc: str  # how to describe the shape in messages, e.g. "512x2x2=2048"
    counters: dict[str, int] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    errors: list[ShapeError] = field(default_factory=list)


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _pair(value: Any, where: str, key: str, minimum: int) -> tuple[int, int]:
    vals = value if isinstance(value, (list, tuple)) else [value, value]
    if len(vals) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        raise ModelError(f"{where}: field '{key}' must be an integer or [h, w], got {value!r}")
    if any(v < minimum for v in vals):
        raise ModelError(f"{where}: field '{key}' must be >= {minimum}, got {value!r}")
    return int(vals[0]), int(vals[1])


def _int(value: Any, where: str, key: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ModelError(f"{where}: field '{key}' must be an integer, got {value!r}")
    if value < minimum:
        raise ModelError(f"{where}: field '{key}' must be >= {minimum}, got {value}")
    return value


def _num(value: Any, where: str, key: str, lo: float, hi: float | None = None) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ModelError(f"{where}: field '{key}' must be a number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ModelError(f"{where}: field '{key}' must be {rng}, got {value}")
    return float(value)


def _parse_entry(entry: Any, pos: str) -> tuple[str, dict[str, Any], str | None]:
    """Split one list entry into (type, fields, explicit name)."""
    if isinstance(entry, str):
        kind, fields, name = entry.strip().lower(), {}, None
    elif isinstance(entry, dict):
        rest = dict(entry)
        name = rest.pop("name", None)
        if len(rest) != 1:
            raise ModelError(f"layer {pos}: expected one layer type per entry, got keys {sorted(map(str, entry))}")
        kind, fields = next(iter(rest.items()))
        kind = str(kind).strip().lower()
        if fields is None:
            fields = {}
        if kind == "residual":
            if not isinstance(fields, list):
                raise ModelError(f"layer {pos} (residual): expected a list of layers, got {fields!r}")
            return kind, {"layers": fields}, name
        if not isinstance(fields, dict):
            raise ModelError(f"layer {pos} ({kind}): fields must be a mapping, got {fields!r}")
        fields = dict(fields)
        if "name" in fields:
            name = fields.pop("name")
    else:
        raise ModelError(f"layer {pos}: expected a layer type or a mapping, got {entry!r}")
    if kind not in _SPECS:
        close = difflib.get_close_matches(kind, _SPECS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelError(f"layer {pos}: unknown layer type {kind!r}{hint}; known: {', '.join(_SPECS)}")
    if kind == "residual" and "layers" not in fields:
        raise ModelError(f"layer {pos} (residual): expected a list of layers")
    if name is not None and not isinstance(name, str):
        raise ModelError(f"layer {pos} ({kind}): name must be a string, got {name!r}")
    return kind, fields, name


def _check_fields(kind: str, fields: dict[str, Any], where: str) -> None:
    allowed, required, _ = _SPECS[kind]
    if kind == "residual":
        return
    for key in fields:
        if key not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise ModelError(f"{where}: unknown field {key!r} (fields: {known})")
    for key in required:
        if key not in fields:
            raise ModelError(f"{where}: missing field {key!r}")


def _need_image(kind: str, state: _State, where: str) -> tuple[int, int, int]:
    if len(state.shape) != 3:
        raise ModelError(f"{where}: needs an image input CxHxW, but the incoming shape is {state.desc}")
    return state.shape  # type: ignore[return-value]


def _out_size(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _build_one(kind: str, f: dict[str, Any], where: str, state: _State, lenient: bool,
               pos: str, qualname: str) -> nn.Module:
    """Create the module for one entry and advance ``state.shape``."""
    def fail(msg: str) -> None:
        if not lenient:
            raise ModelError(f"{where}: {msg}")
        state.errors.append(ShapeError(qualname, f"{where}: {msg}"))

    if kind == "conv":
        c, h, w = _need_image(kind, state, where)
        out = _int(f["out"], where, "out", 1)
        kh, kw = _pair(f["kernel"], where, "kernel", 1)
        sh, sw = _pair(f.get("stride", 1), where, "stride", 1)
        ph, pw = _pair(f.get("padding", 0), where, "padding", 0)
        dh, dw = _pair(f.get("dilation", 1), where, "dilation", 1)
        groups = _int(f.get("groups", 1), where, "groups", 1)
        bias = f.get("bias", True)
        if not isinstance(bias, bool):
            raise ModelError(f"{where}: field 'bias' must be true or false, got {bias!r}")
        if c % groups or out % groups:
            raise ModelError(f"{where}: groups {groups} must divide in-channels {c} and out-channels {out}")
        eff_h, eff_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        if eff_h > h + 2 * ph or eff_w > w + 2 * pw:
            fail(f"kernel {kh}x{kw} is larger than the incoming {h}x{w} (padding {ph}x{pw})")
        oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
        module = nn.Conv2d(c, out, (kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
                           groups=groups, bias=bias)
        state.shape = (out, max(oh, 1), max(ow, 1))
    elif kind in ("relu", "gelu", "silu", "sigmoid", "tanh", "identity"):
        module = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid,
                  "tanh": nn.Tanh, "identity": nn.Identity}[kind]()
    elif kind == "leakyrelu":
        module = nn.LeakyReLU(_num(f.get("slope", 0.01), where, "slope", 0.0))
    elif kind == "batchnorm":
        eps = _num(f.get("eps", 1e-5), where, "eps", 0.0)
        momentum = _num(f.get("momentum", 0.1), where, "momentum", 0.0, 1.0)
        if len(state.shape) == 3:
            module = nn.BatchNorm2d(state.shape[0], eps=eps, momentum=momentum)
        elif len(state.shape) == 1:
            module = nn.BatchNorm1d(state.shape[0], eps=eps, momentum=momentum)
        else:
            raise ModelError(f"{where}: needs CxHxW or features input, got {state.desc}")
    elif kind in ("maxpool", "avgpool"):
        c, h, w = _need_image(kind, state, where)
        kh, kw = _pair(f.get("kernel", 2), where, "kernel", 1)
        sh, sw = _pair(f.get("stride", f.get("kernel", 2)), where, "stride", 1)
        ph, pw = _pair(f.get("padding", 0), where, "padding", 0)
        if ph * 2 > kh or pw * 2 > kw:
            raise ModelError(f"{where}: padding {ph}x{pw} must be at most half the kernel {kh}x{kw}")
        if kh > h + 2 * ph or kw > w + 2 * pw:
            fail(f"kernel {kh}x{kw} is larger than the incoming {h}x{w}")
        cls = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
        module = cls((kh, kw), stride=(sh, sw), padding=(ph, pw))
        state.shape = (c, max(_out_size(h, kh, sh, ph), 1), max(_out_size(w, kw, sw, pw), 1))
    elif kind in ("adaptiveavgpool", "adaptivemaxpool"):
        c, h, w = _need_image(kind, state, where)
        oh, ow = _pair(f.get("size", 1), where, "size", 1)
        cls = nn.AdaptiveAvgPool2d if kind == "adaptiveavgpool" else nn.AdaptiveMaxPool2d
        module = cls((oh, ow))
        state.shape = (c, oh, ow)
    elif kind == "dropout":
        module = nn.Dropout(_num(f.get("p", 0.5), where, "p", 0.0, 1.0))
    elif kind == "flatten":
        n = 1
        for s in state.shape:
            n *= s
        if len(state.shape) > 1:
            state.desc = f"{_fmt(state.shape)}={n}"
        state.shape = (n,)
        module = nn.Flatten()
    elif kind == "linear":
        out = _int(f["out"], where, "out", 1)
        bias = f.get("bias", True)
        if not isinstance(bias, bool):
            raise ModelError(f"{where}: field 'bias' must be true or false, got {bias!r}")
        n = 1
        for s in state.shape:
            n *= s
        if len(state.shape) != 1:
            fail(f"the incoming shape {_fmt(state.shape)} is not flat; add '- flatten' before it "
                 f"(then in-features {n} would fit)")
        fits = state.shape[-1] if len(state.shape) == 1 else n
        cin = fits
        if "in" in f:
            cin = _int(f["in"], where, "in", 1)
            if cin != fits and len(state.shape) == 1:
                fail(f"in-features {cin} do not match the incoming {state.desc}; in-features {fits} would fit")
        module = nn.Linear(cin, out, bias=bias)
        state.shape = (out,)
    elif kind == "residual":
        if not f["layers"]:
            raise ModelError(f"{where}: expected a non-empty list of layers")
        before, before_desc = state.shape, state.desc
        body = _build_list(f["layers"], state, lenient, prefix=f"{pos}.", path=f"{qualname}.")
        if state.shape != before:
            fail(f"the residual body changes the shape from {_fmt(before)} to {_fmt(state.shape)}; "
                 "it must keep it")
        state.shape, state.desc = before, before_desc
        module = Residual(body)
    else:  # pragma: no cover - _SPECS and this function list the same types
        raise ModelError(f"{where}: unknown layer type {kind!r}")
    if kind != "flatten":
        state.desc = _fmt(state.shape)
    return module


def _build_list(layers: Any, state: _State, lenient: bool, prefix: str = "",
                path: str = "") -> OrderedDict[str, nn.Module]:
    """Build each entry of ``layers``; ``prefix`` numbers nested positions, ``path`` names nested modules."""
    if not isinstance(layers, list) or not layers:
        raise ModelError(f"layers: expected a non-empty list of layers, got {layers!r}")
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for i, entry in enumerate(layers, start=1):
        pos = f"{prefix}{i}"
        kind, fields, name = _parse_entry(entry, pos)
        if name is None:
            stem = _SPECS[kind][2]
            while True:
                state.counters[stem] = state.counters.get(stem, 0) + 1
                name = f"{stem}{state.counters[stem]}"
                if name not in state.used:
                    break
        where = f"layer {pos} ({kind} {name})"
        if name in state.used or name in modules or not name or "." in name:
            raise ModelError(f"{where}: the name {name!r} is already used or not a valid name")
        state.used.add(name)
        _check_fields(kind, fields, where)
        modules[name] = _build_one(kind, fields, where, state, lenient, pos, f"{path}{name}")
    return modules


def build_layers(layers: Any, input_shape: tuple[int, ...] = (3, 32, 32),
                 lenient: bool = False) -> tuple[nn.Sequential, list[ShapeError], tuple[int, ...]]:
    """Build ``layers``; return (model, shape errors, output shape without batch).

    With ``lenient`` a shape mismatch (explicit ``in:``, kernel larger than the
    input, linear on an image, residual changing shape) is recorded instead of
    raised and the layer is built as written, so an inspection can still trace
    the network up to the failing layer. Malformed entries always raise.
    """
    shape = tuple(int(s) for s in input_shape)
    state = _State(shape=shape, desc=_fmt(shape))
    model = nn.Sequential(_build_list(layers, state, lenient))
    return model, state.errors, state.shape


def build_from_layers(layers: Any, input_shape: tuple[int, ...] = (3, 32, 32)) -> nn.Sequential:
    """Build an ``nn.Sequential`` from a YAML layer list, inferring in-channels and in-features."""
    model, _, _ = build_layers(layers, input_shape)
    return model
