"""``inspect_model``: a per-layer table, totals and design findings for a network, before training it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch.nn as nn

from cifarlab.errors import ModelError
from cifarlab.formatting import esc, fmt_shape, html_table, text_table
from cifarlab.inspection.findings import Finding, design_warnings, failure_finding
from cifarlab.inspection.resolve import resolve_model
from cifarlab.inspection.trace import LayerRow, count_params, trace
from cifarlab.models.declarative import Residual
from cifarlab.models.registry import INPUT_SHAPE


@dataclass
class InspectReport:
    """What :func:`inspect_model` found: rows per leaf layer, totals and findings."""

    model_name: str
    input_shape: tuple[int, ...]
    batch: int
    rows: list[LayerRow]
    output_shape: tuple[int, ...] | None
    params_trainable: int
    params_frozen: int
    findings: list[Finding] = field(default_factory=list)
    residuals: list[tuple[str, int, int]] = field(default_factory=list)  # (block, first row, last row)

    @property
    def params(self) -> int:
        """All parameters, trainable and frozen."""
        return self.params_trainable + self.params_frozen

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image (conv and linear layers)."""
        return sum(r.macs for r in self.rows)

    @property
    def param_mb(self) -> float:
        """Parameter memory in MB (float32)."""
        return self.params * 4 / 1e6

    @property
    def activation_mb(self) -> float:
        """Memory of all leaf layers' outputs for the batch, in MB (float32)."""
        return sum(r.activation_bytes for r in self.rows) / 1e6

    @property
    def errors(self) -> list[Finding]:
        """Findings that stop the network from running."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Design warnings: the network runs, but probably not as intended."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when the network runs on the input (no error findings)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "batch": self.batch,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "layers": [r.to_dict() for r in self.rows],
            "totals": {
                "params": self.params, "params_trainable": self.params_trainable,
                "params_frozen": self.params_frozen, "macs_per_image": self.macs,
                "param_mb": round(self.param_mb, 4), "activation_mb": round(self.activation_mb, 4),
            },
            "findings": [f.to_dict() for f in self.findings],
            "residuals": [{"block": b, "first_layer": self.rows[i].name, "last_layer": self.rows[j].name}
                          for b, i, j in self.residuals],
            "ok": self.ok,
        }

    def _table_rows(self) -> list[list[str]]:
        return [[r.name, r.type, fmt_shape(r.output_shape) if r.ok else "FAILS",
                 f"{r.params_trainable:,}" + (f" (+{r.params_frozen:,} frozen)" if r.params_frozen else ""),
                 f"{r.macs:,}", f"{r.activation_bytes / 1e3:,.1f}"] for r in self.rows]

    _HEAD: ClassVar[list[str]] = ["layer", "type", "output", "params", "MACs", "act KB"]

    def format_table(self) -> str:
        """The report as aligned text."""
        lines = text_table(self._HEAD, self._table_rows(), right={3, 4, 5})  # params, MACs, act KB
        frozen = f" ({self.params_frozen:,} frozen)" if self.params_frozen else ""
        title = (f"model {self.model_name}: input {self.batch}x{fmt_shape(self.input_shape)} "
                 f"-> output {fmt_shape(self.output_shape)}")
        totals = (f"params {self.params:,}{frozen} = {self.param_mb:.2f} MB; MACs/image {self.macs:,} "
                  f"({self.macs / 1e6:.1f} M); activations {self.activation_mb:.2f} MB for batch {self.batch}")
        return "\n".join([title, *lines, lines[1], totals, *map(str, self.findings)])

    def _repr_html_(self) -> str:
        finds = "".join(
            f"<li style='color:{'#b00' if f.level == 'error' else '#a60'}'>{esc(str(f))}</li>" for f in self.findings)
        return (f"<div><b>{esc(self.model_name)}</b>: input {self.batch}x{esc(fmt_shape(self.input_shape))} → "
                f"{esc(fmt_shape(self.output_shape))}{html_table(self._HEAD, self._table_rows())}"
                f"<p>params {self.params:,} ({self.param_mb:.2f} MB); MACs/image {self.macs:,}; "
                f"activations {self.activation_mb:.2f} MB for batch {self.batch}</p>"
                + (f"<ul>{finds}</ul>" if finds else "") + "</div>")

    def __repr__(self) -> str:
        return (f"InspectReport(model={self.model_name!r}, params={self.params:,}, macs={self.macs:,}, "
                f"errors={len(self.errors)}, warnings={len(self.warnings)})")


def parse_shape(text: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``"3x32x32"`` -> ``(3, 32, 32)``."""
    if isinstance(text, (tuple, list)):
        return tuple(int(s) for s in text)
    try:
        shape = tuple(int(s) for s in str(text).lower().split("x"))
    except ValueError:
        raise ModelError(f"input shape {text!r}: expected CxHxW such as 3x32x32") from None
    if not shape or any(s < 1 for s in shape):
        raise ModelError(f"input shape {text!r}: every size must be >= 1")
    return shape


def _residual_spans(model: nn.Module, rows: list[LayerRow]) -> list[tuple[str, int, int]]:
    """(block name, first row, last row) of each declarative residual block that ran."""
    spans = []
    for name, module in model.named_modules():
        if isinstance(module, Residual):
            inside = [i for i, r in enumerate(rows) if r.name.startswith(f"{name}.")]
            if inside:
                spans.append((name, inside[0], inside[-1]))
    return spans


def inspect_model(model_or_config: Any, input_shape: tuple[int, ...] | str = INPUT_SHAPE,
                  batch: int = 1) -> InspectReport:
    """Trace a network once and report its layers, totals and design findings.

    ``model_or_config``: an ``nn.Module``, a registered model name (``"seed"``), a ``Config`` or ``ModelConfig``,
    a config mapping, a layer list, a config YAML path (with a ``model:`` section), a bare layer-list YAML path,
    or a run directory / weights file. ``input_shape`` is CxHxW (a tuple or ``"3x32x32"``). ``batch`` only
    scales the activation memory; the trace itself runs one image. A network that cannot run is reported through
    error findings (``report.ok`` is False), not an exception; a malformed source (unknown model, bad layer
    entry) raises :class:`ModelError`.
    """
    shape = parse_shape(input_shape)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ModelError(f"batch must be a positive integer, got {batch!r}")
    model, name, shape_errors = resolve_model(model_or_config, shape)
    rows, failure, out_shape = trace(model, shape, batch)
    trainable, frozen = count_params(model.parameters())
    findings = [Finding("error", e.layer, e.message, "shape-mismatch") for e in shape_errors]
    # The declarative builder already explained a layer it knew would fail; the trace's
    # message for the same layer would only repeat it in torch's words.
    if failure is not None and failure.name not in {e.layer for e in shape_errors}:
        findings.append(failure_finding(failure))
    findings += design_warnings(rows, trainable + frozen)
    return InspectReport(model_name=name, input_shape=shape, batch=batch, rows=rows, output_shape=out_shape,
                         params_trainable=trainable, params_frozen=frozen, findings=findings,
                         residuals=_residual_spans(model, rows))
