"""``inspect_model``: a per-layer table, totals and design findings for a network, before training it."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch.nn as nn

from cifarlab.errors import ModelError
from cifarlab.inspection.findings import Finding, design_warnings, failure_finding
from cifarlab.inspection.trace import LayerRow, trace


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
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
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
            "ok": self.ok,
        }

    def _table_rows(self) -> list[list[str]]:
        out = []
        for r in self.rows:
            frozen = f" (+{r.params_frozen:,} frozen)" if r.params_frozen else ""
            out.append([r.name, r.type, _fmt(r.output_shape) if r.ok else "FAILS", f"{r.params_trainable:,}{frozen}",
                        f"{r.macs:,}", f"{r.activation_bytes / 1e3:,.1f}"])
        return out

    _HEAD: ClassVar[list[str]] = ["layer", "type", "output", "params", "MACs", "act KB"]

    def format_table(self) -> str:
        """The report as aligned text."""
        rows = self._table_rows()
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(self._HEAD)]
        right = {3, 4, 5}

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        title = f"model {self.model_name}: input {self.batch}x{_fmt(self.input_shape)} -> output {_fmt(self.output_shape)}"
        lines = [title, line(self._HEAD), line(["-" * w for w in widths])]
        lines += [line(r) for r in rows]
        lines.append(line(["-" * w for w in widths]))
        frozen = f" ({self.params_frozen:,} frozen)" if self.params_frozen else ""
        lines.append(f"params {self.params:,}{frozen} = {self.param_mb:.2f} MB; "
                     f"MACs/image {self.macs:,} ({self.macs / 1e6:.1f} M); "
                     f"activations {self.activation_mb:.2f} MB for batch {self.batch}")
        for f in self.findings:
            lines.append(str(f))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self._HEAD)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in self._table_rows())
        finds = "".join(
            f"<li style='color:{'#b00' if f.level == 'error' else '#a60'}'>{esc(str(f))}</li>" for f in self.findings)
        return (f"<div><b>{esc(self.model_name)}</b>: input {self.batch}x{esc(_fmt(self.input_shape))} → "
                f"{esc(_fmt(self.output_shape))}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>params {self.params:,} ({self.param_mb:.2f} MB); MACs/image {self.macs:,}; "
                f"activations {self.activation_mb:.2f} MB for batch {self.batch}</p>"
                + (f"<ul>{finds}</ul>" if finds else "") + "</div>")

    def __repr__(self) -> str:
        return (f"InspectReport(model={self.model_name!r}, params={self.params:,}, macs={self.macs:,}, "
                f"errors={len(self.errors)}, warnings={len(self.warnings)})")


def _fmt(shape) -> str:
    return "x".join(str(s) for s in shape) if shape is not None else "?"


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


def _resolve(source: Any, input_shape: tuple[int, ...]) -> tuple[nn.Module, str, list[str]]:
    """(model, display name, static build errors) for any accepted source."""
    from cifarlab.models.declarative import build_layers

    if isinstance(source, nn.Module):
        return source, type(source).__name__, []
    if isinstance(source, list):
        model, errors, _ = build_layers(source, input_shape, lenient=True)
        return model, "layers", errors
    text = str(source)
    path = Path(text)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        from cifarlab.config import compose, parse_yaml

        try:
            raw_text = path.read_text()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            data = yaml.safe_load(raw_text)
        except yaml.YAMLError:
            parse_yaml(raw_text, str(path))  # raises the config module's one-line message
            raise
        if isinstance(data, list):
            try:
                model, errors, _ = build_layers(data, input_shape, lenient=True)
            except ModelError as exc:
                raise ModelError(f"{path}: {exc}") from None
            return model, path.name, errors
        if isinstance(data, dict) and "model" not in data and "layers" in data:
            model, errors, _ = build_layers(data["layers"], input_shape, lenient=True)
            return model, path.name, errors
        if not isinstance(data, dict) or "model" not in data:
            raise ModelError(f"{path}: expected a layer list or a config with a 'model:' section")
        cfg = compose(config_file=path)
        if cfg.model.layers is not None:
            try:
                model, errors, _ = build_layers(cfg.model.layers, input_shape, lenient=True)
            except ModelError as exc:
                raise ModelError(f"{path}: {exc}") from None
            return model, path.name, errors
        from cifarlab.models import create_model

        return create_model(cfg.model.name, **cfg.model.args), cfg.model.name, []
    if path.suffix == ".safetensors" or path.is_dir():
        from cifarlab.training.checkpoint import load_trained

        return load_trained(path).model, text, []
    from cifarlab.models import create_model

    return create_model(text), text, []


def inspect_model(model_or_config: Any, input_shape: tuple[int, ...] | str = (3, 32, 32),
                  batch: int = 1) -> InspectReport:
    """Trace a network once and report its layers, totals and design findings.

    ``model_or_config``: an ``nn.Module``, a registered model name (``"seed"``),
    a config YAML path (with a ``model:`` section), a bare layer-list YAML path,
    a layer list, or a run directory / weights file. ``batch`` only scales the
    activation memory; the trace itself runs one image.
    """
    shape = parse_shape(input_shape)
    if not isinstance(batch, int) or batch < 1:
        raise ModelError(f"batch must be a positive integer, got {batch!r}")
    model, name, static_errors = _resolve(model_or_config, shape)
    rows, failure, out_shape = trace(model, shape, batch)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    findings: list[Finding] = []
    for msg in static_errors:
        findings.append(Finding("error", msg.split("(", 1)[-1].split(")", 1)[0].split(" ")[-1], msg, "shape-mismatch"))
    if failure is not None:
        finding = failure_finding(failure)
        if not static_errors or failure.name not in {f.layer for f in findings}:
            findings.append(finding)
    findings += design_warnings(rows, trainable + frozen)
    return InspectReport(model_name=name, input_shape=shape, batch=batch, rows=rows, output_shape=out_shape,
                         params_trainable=trainable, params_frozen=frozen, findings=findings)
