"""Rows for the runs table: the write-up's columns, read from run directories."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import yaml

from cifarlab.reporting.tables import format_rows

# The write-up's columns, then what only a tool can keep track of.
COLUMNS = ["label", "lr", "batch size", "epochs", "arch", "optimizer", "regularization", "activation",
           "normalization", "val acc", "test acc", "writeup acc", "params", "wall s", "device", "seed", "status"]


def _arch(model: dict[str, Any]) -> str:
    args = model.get("args") or {}
    if model.get("layers") is not None:
        return "custom"
    if model["name"] == "seed":
        return "5-3"
    if model["name"] == "seedlike":
        return f"{args.get('conv', 5)}-{args.get('fc', 3)}"
    width = f" w{args['width']}" if "width" in args else ""
    return f"{model['name']}{width}"


def _regularization(cfg: dict[str, Any]) -> str:
    parts = []
    args = cfg["model"].get("args") or {}
    if cfg["model"]["name"] in ("seed", "seedlike") and args.get("dropout", 0.2) > 0:
        parts.append(f"dropout {args.get('dropout', 0.2)}")
    if cfg["optim"]["weight_decay"] > 0:
        parts.append(f"wd {cfg['optim']['weight_decay']:g}")
    if cfg["train"]["label_smoothing"] > 0:
        parts.append(f"ls {cfg['train']['label_smoothing']:g}")
    aug = cfg["data"]["augment"]
    augs = [name for name, on in (("flip", aug["flip"]), ("crop", aug["crop_padding"]), ("cutout", aug["cutout"]))
            if on]
    if augs:
        parts.append("aug " + "+".join(augs))
    return ", ".join(parts) or "none"


def _activation(model: dict[str, Any]) -> str:
    if model.get("layers") is not None:
        kinds = {next(iter(layer)) if isinstance(layer, dict) else layer for layer in model["layers"]}
        found = [a for a in ("relu", "gelu", "silu", "leakyrelu") if a in kinds]
        return "/".join(a.upper() if a != "leakyrelu" else "LeakyReLU" for a in found) or "none"
    return "GELU" if model["name"] == "fast" else "ReLU"


def _normalization(model: dict[str, Any]) -> str:
    if model.get("layers") is not None:
        return "BN" if any("batchnorm" in (layer if isinstance(layer, dict) else {layer: 0})
                           for layer in model["layers"]) else "none"
    return "BN" if (model.get("args") or {}).get("batchnorm", True) else "none"


def collect_run(run_dir: Path) -> dict[str, Any] | None:
    """One row for the run directory, or None when it is not a run (no summary or config)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    try:
        sweep = json.loads((run_dir / "sweep.json").read_text())
    except (OSError, ValueError):
        sweep = {}
    return {
        "label": sweep.get("label", run_dir.name),
        "group": sweep.get("group", run_dir.name),
        "lr": cfg["optim"]["lr"],
        "batch size": cfg["train"]["batch_size"],
        "epochs": cfg["train"]["epochs"],
        "arch": _arch(cfg["model"]),
        "optimizer": cfg["optim"]["name"] + (" nesterov" if cfg["optim"]["nesterov"] and
                                             cfg["optim"]["name"] == "sgd" else ""),
        "regularization": _regularization(cfg),
        "activation": _activation(cfg["model"]),
        "normalization": _normalization(cfg["model"]),
        "val acc": summary.get("val_acc"),
        "test acc": summary.get("test_acc"),
        "writeup acc": sweep.get("writeup_accuracy"),
        "params": summary.get("params"),
        "wall s": summary.get("wall_seconds"),
        "device": summary.get("device"),
        "seed": summary.get("seed"),
        "status": summary.get("status"),
        "run": str(run_dir),
    }


def collect_runs(root: Path) -> list[dict[str, Any]]:
    """Rows for every run directory under ``root`` (searched recursively)."""
    rows = [collect_run(p.parent) for p in sorted(Path(root).rglob("summary.json"))]
    return [r for r in rows if r is not None]


def sort_rows(rows: list[dict[str, Any]], key: str = "val acc") -> list[dict[str, Any]]:
    """Rows sorted by ``key``: accuracies descending, everything else ascending, missing values last."""
    descending = key in ("val acc", "test acc", "writeup acc")

    def order(row):
        value = row.get(key)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        if missing:
            return (1, 0)
        return (0, -value if descending and isinstance(value, (int, float)) else value)

    return sorted(rows, key=order)


def aggregate_repeats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: accuracies as mean ± std over its seeds.

    A configuration whose mean validation accuracy is within the larger of the two
    spreads of the best one's is marked with ``≈`` (not distinguishable from the best).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    out = []
    for name, members in groups.items():
        row = {**members[0], "label": name, "seed": ",".join(str(m["seed"]) for m in members)}
        for key in ("val acc", "test acc", "wall s"):
            values = [m[key] for m in members if m[key] is not None]
            row[key] = statistics.mean(values) if values else None
            row[f"{key} std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    scored = [r for r in out if r["val acc"] is not None]
    if scored:
        best = max(scored, key=lambda r: r["val acc"])
        for row in scored:
            spread = max(best["val acc std"], row["val acc std"])
            row["label"] += " ≈" if row is not best and best["val acc"] - row["val acc"] <= spread else ""
    return out


def write_results(sweep_dir: Path, rows: list[dict[str, Any]], best: dict[str, Any] | None) -> None:
    """``results.csv``, ``results.md`` and the plots of a sweep."""
    from cifarlab.fileio import write_text
    from cifarlab.reporting.sweep_plots import write_sweep_plots

    table = sort_rows(rows)
    repeated = any(r["group"] != r["label"] for r in rows)
    shown = sort_rows(aggregate_repeats(rows)) if repeated else table
    write_text(sweep_dir / "results.csv", format_rows(table, COLUMNS, "csv"))
    write_text(sweep_dir / "results.md", format_rows(shown, COLUMNS, "markdown", spread=repeated) + "\n")
    write_sweep_plots(sweep_dir, rows)
