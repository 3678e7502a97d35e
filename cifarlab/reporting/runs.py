"""Rows of the runs table: the write-up's columns, read back from run directories.

A row is a plain dict keyed by column name (see :data:`COLUMNS`) plus ``run``
(its directory), ``group`` (its configuration, for repeats) and, in sweeps,
``trial``. Accuracies are fractions, wall time is seconds.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from cifarlab.config import parse_yaml
from cifarlab.errors import CifarlabError, ConfigError
from cifarlab.fileio import write_json, write_text
from cifarlab.reporting.tables import ACCURACIES, cell_text, format_rows, is_at_chance, legend
from cifarlab.rundir import RunDir

# The write-up's columns, then what only a tool keeps track of.
COLUMNS = ["label", "lr", "batch size", "epochs", "arch", "optimizer", "regularization", "activation",
           "normalization", "val acc", "test acc", "writeup acc", "params", "wall time", "device", "seed", "status"]
# What "at chance" means, in the words results.md and the HTML report both use.
CHANCE_TEST = "Validation accuracy no better than chance (one-sided binomial test against 10%, 1% level)"
# Sweep trials run by Slurm array tasks: each attempt's task and host (cifarlab.sweeps.slurm.describe_attempt).
SLURM_COLUMN = "slurm task"


def _arch(model: dict[str, Any], arch: dict[str, Any] | None) -> str:
    name = "custom" if model.get("layers") is not None else model["name"]
    if arch is None:  # a run from before runs recorded the architecture's facts
        return name
    if name in ("seed", "seedlike", "custom"):
        return f"{'custom ' if name == 'custom' else ''}{arch['conv']}-{arch['fc']}"
    args = ", ".join(f"{k}={v}" for k, v in (model.get("args") or {}).items())
    return f"{name} ({args})" if args else name


def _optimizer(optim: dict[str, Any]) -> str:
    sgd = f"SGD (m={optim['momentum']:g}{', nesterov' if optim['nesterov'] else ''})"
    if optim["name"] == "muon":
        return f"Muon (m={optim['muon_momentum']:g}) + {sgd}"
    return sgd if optim["name"] == "sgd" else {"adam": "Adam", "adamw": "AdamW"}.get(optim["name"], optim["name"])


def _regularization(cfg: dict[str, Any], dropout: float) -> str:
    aug = cfg["data"]["augment"]
    flip = "altflip" if aug.get("flip_alternate") else "flip"  # runs from before flip_alternate lack the key
    augs = [text for text, on in ((flip, aug["flip"]), (f"crop{aug['crop_padding']}", aug["crop_padding"]),
                                  (f"cutout{aug['cutout']}", aug["cutout"])) if on]
    parts = [f"dropout={dropout:g}" if dropout else "",
             f"wd={cfg['optim']['weight_decay']:g}" if cfg["optim"]["weight_decay"] else "",
             f"smoothing={cfg['train']['label_smoothing']:g}" if cfg["train"]["label_smoothing"] else "",
             "aug=" + "+".join(augs) if augs else ""]
    return ", ".join(p for p in parts if p) or "none"


def read_run(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``config`` (a dict), ``summary`` and (sweep trials) ``sweep`` records, or None if it is no run."""
    rd = RunDir(run_dir)
    summary = rd.summary()
    if not summary or not rd.exists():
        return None
    try:
        cfg = rd.config().to_dict()
    except CifarlabError:  # e.g. written by a version whose config keys this one does not know
        return None
    return {"config": cfg, "summary": summary, "sweep": rd.sweep()}


def row_from_record(record: dict[str, Any], run: str) -> dict[str, Any]:
    """The table row of a run from its :func:`read_run` record; ``run`` names where it lives."""
    cfg, summary, sweep = record["config"], record["summary"], record["sweep"]
    name = Path(run).name
    facts = summary.get("arch") or {"activation": "?", "normalization": "?"}
    return {
        "label": sweep.get("label", name),
        "lr": cfg["optim"]["muon_lr"] if cfg["optim"]["name"] == "muon" else cfg["optim"]["lr"],
        "batch size": cfg["train"]["batch_size"],
        "epochs": cfg["train"]["epochs"],
        "arch": _arch(cfg["model"], summary.get("arch")),
        "optimizer": _optimizer(cfg["optim"]),
        "regularization": _regularization(cfg, facts.get("dropout", 0.0)),
        "activation": facts["activation"],
        "normalization": facts["normalization"],
        "val acc": summary.get("val_acc"),
        "test acc": summary.get("test_acc"),
        "writeup acc": sweep.get("writeup_accuracy"),
        "params": summary.get("params"),
        "wall time": summary.get("wall_seconds"),
        "device": summary.get("device"),
        "seed": summary.get("seed"),
        "status": _status(summary, cfg),
        "group": sweep.get("group", sweep.get("label", name)),
        "run": run,
    }


def at_chance(accuracy: float, images: int) -> bool:
    """True when ``accuracy`` on ``images`` is no better than guessing one of CIFAR-10's ten classes: a one-sided
    binomial test against 10% does not reject at the 1% level (1,000 images: below about 12.4%)."""
    from scipy.stats import binomtest

    return bool(binomtest(round(accuracy * images), images, 0.1, alternative="greater").pvalue >= 0.01)


def loss_trend(run_dir: str | Path) -> str:
    """``training loss 2.303 -> 2.302 over 20 epochs (chance: ln 10 = 2.303)``: a run at chance, in one line."""
    losses = [e["train_loss"] for e in RunDir(run_dir).epochs() if e.get("train_loss") is not None]
    if not losses:
        return "no epoch was logged here"
    return f"training loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} epochs (chance: ln 10 = 2.303)"


def _status(summary: dict[str, Any], cfg: dict[str, Any]) -> str | None:
    """The run's status, ``completed, at chance`` for a completed run whose validation accuracy is chance's: it did
    not learn, which a table must say rather than report 10% as a result."""
    status, val = summary.get("status"), summary.get("val_acc")
    if status == "completed" and val is not None and cfg["data"]["val_size"] and \
            at_chance(val, cfg["data"]["val_size"]):
        return "completed, at chance"
    return status


def collect_run(run_dir: str | Path) -> dict[str, Any] | None:
    """One row for a run directory, or None when it is not one (no readable summary.json and config.yaml)."""
    record = read_run(run_dir)
    return None if record is None else row_from_record(record, str(run_dir))


def collect_runs(root: str | Path) -> list[dict[str, Any]]:
    """Rows for every run directory under ``root`` (searched recursively), in path order.

    A sweep folder whose trials went to ``--artifacts DIR`` (its ``plan.yaml`` says where) gets
    this sweep's trials in DIR too.
    """
    root = Path(root)
    found = [p.parent for p in sorted(root.rglob(RunDir.SUMMARY))]
    found += [d for d in _artifact_trials(root) if not d.resolve().is_relative_to(root.resolve())]
    rows = [collect_run(d) for d in found]
    return [r for r in rows if r is not None]


def _artifact_trials(sweep_dir: Path) -> list[Path]:
    """The run directories of the sweep at ``sweep_dir`` in its ``--artifacts`` folder, if it had one."""
    plan_file = sweep_dir / "plan.yaml"
    if not plan_file.is_file():
        return []
    plan = parse_yaml(plan_file.read_text(), str(plan_file))
    if not plan.get("artifacts"):
        return []
    # The folder may be shared with other sweeps (as NFS is); each trial names its own in sweep.json.
    trials = [p.parent for p in sorted(Path(plan["artifacts"]).glob(f"*/{RunDir.SUMMARY}"))]
    return [d for d in trials if RunDir(d).sweep().get("sweep") == plan.get("sweep")]


def column(name: str) -> str:
    """The column ``name`` names, with ``_`` or ``-`` for spaces (``val_acc``); ConfigError if none."""
    wanted = name.strip().lower().replace("_", " ").replace("-", " ")
    if wanted in COLUMNS + ["run"]:
        return wanted
    raise ConfigError(f"--sort {name!r}: no such column; columns: {', '.join(COLUMNS)}")


def sort_rows(rows: list[dict[str, Any]], key: str = "val acc") -> list[dict[str, Any]]:
    """Rows sorted by column ``key``: accuracies best first, others ascending, missing values last."""
    key = column(key)

    def order(row: dict[str, Any]):
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0)
        if key in ACCURACIES:
            return (0, -value)
        return (0, value) if isinstance(value, (int, float)) else (0, str(value))

    return sorted(rows, key=order)


def columns_for(rows: list[dict[str, Any]], *, test: bool = True) -> list[str]:
    """The columns worth showing: ``writeup acc`` only where some row has one, beside ``test acc``; ``slurm task``
    only where some trial ran in a Slurm task.

    ``test=False`` (a table that ranks on validation) leaves out both test accuracies, ours and the
    write-up's: :mod:`cifarlab.reporting.writeup` compares those apart.
    """
    shown = [c for c in COLUMNS if c != "writeup acc" or any(r.get("writeup acc") is not None for r in rows)]
    if any(r.get(SLURM_COLUMN) is not None for r in rows):  # a sweep run under Slurm
        shown.append(SLURM_COLUMN)
    return shown if test else [c for c in shown if c not in ("test acc", "writeup acc")]


def is_repeated(rows: list[dict[str, Any]]) -> bool:
    """True when some configuration was run with several seeds."""
    groups = [r.get("group", r["label"]) for r in rows]
    return len(set(groups)) < len(groups)


def aggregate_repeats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: accuracies and wall time as mean with ``<col> std`` over its seeds.

    ``within spread`` is set on each configuration whose mean validation accuracy
    is below the best one's by no more than the larger of their two standard
    deviations: with these seeds the two cannot be told apart.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("group", row["label"]), []).append(row)
    out = []
    for name, members in groups.items():
        row = {**members[0], "label": name, "seed": ",".join(str(m["seed"]) for m in members),
               "runs": [m["run"] for m in members]}
        if len({m["status"] for m in members}) > 1:
            row["status"] = ",".join(sorted({str(m["status"]) for m in members}))
        for key in ("val acc", "test acc", "wall time"):
            values = [m[key] for m in members if m.get(key) is not None]
            row[key] = statistics.mean(values) if values else None
            row[f"{key} std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    scored = [r for r in out if r["val acc"] is not None]
    if scored:
        best = max(scored, key=lambda r: r["val acc"])
        for row in scored:
            spread = max(best["val acc std"], row["val acc std"])
            row["within spread"] = row is not best and best["val acc"] - row["val acc"] <= spread
    return out


def configurations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: :func:`aggregate_repeats` when some configuration has several seeds, else ``rows``."""
    return aggregate_repeats(rows) if is_repeated(rows) else rows


def ranked_table(rows: list[dict[str, Any]], fmt: str) -> str:
    """A sweep's table: its :func:`configurations`, best validation accuracy first, without test accuracy (stated
    once, for the best trial), then (text and Markdown) the legend of its marks."""
    shown = sort_rows(configurations(rows))
    table, marks = format_rows(shown, columns_for(rows, test=False), fmt), legend(shown)
    return "\n\n".join([table, marks]) if fmt in ("table", "markdown") and marks else table


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best completed run (or configuration, when repeated) by validation accuracy; never by test."""
    done = [r for r in configurations(rows) if str(r["status"]).startswith("completed") and r["val acc"] is not None]
    return max(done, key=lambda r: r["val acc"]) if done else None


def describe_best(best: dict[str, Any] | None) -> str:
    """The best trial and its test accuracy, stated once and apart from the table that chose it."""
    if best is None:
        return "no trial completed, so there is no best trial"
    val = f"{best['val acc']:.2%}" + (f" ± {best['val acc std']:.2%}" if "val acc std" in best else "")
    where = ", ".join(best["runs"]) if "runs" in best else best["run"]
    return (f"best trial, chosen on validation accuracy: {best['label']} (val acc {val})\n"
            f"its test accuracy (final model, reported once): {cell_text(best, 'test acc')}   [{where}]")


def write_results(sweep_dir: Path, rows: list[dict[str, Any]], best: dict[str, Any] | None, title: str) -> None:
    """A sweep's ``results.csv`` (every trial), ``results.md`` (its table and best trial) and plots."""
    from cifarlab.reporting.sweep_plots import write_sweep_plots  # matplotlib: only when writing, never to list
    from cifarlab.reporting.writeup import format_comparison, plot_comparison

    write_text(sweep_dir / "results.csv", format_rows(sort_rows(rows), columns_for(rows) + ["run"], "csv"))
    intro = "Ranked on validation accuracy; test accuracy is reported once, for the best trial, below."
    markdown = [f"# {title}", "", intro, "", ranked_table(rows, "markdown"), ""]
    markdown += [line + "  " for line in describe_best(best).splitlines()]  # two spaces: a Markdown line break
    stuck = [r for r in sort_rows(rows, "label") if is_at_chance(r)]
    if stuck:
        markdown += ["", "## Rows that did not learn", "", f"{CHANCE_TEST}:", ""]
        markdown += [f"- {r['label']}: {loss_trend(r['run'])}" for r in stuck]
        markdown += ["", "![training loss of the rows at chance](plots/at_chance.png)"]
    failed = [r for r in rows if r.get("error")]
    if failed:
        markdown += ["", "## Failed trials", ""] + [f"- {r['label']}: `{r['error']}`" for r in failed]
    comparison = format_comparison(rows, "markdown")
    if comparison:
        markdown += ["", "## Beside the write-up", "", comparison]
        if plot_comparison(rows, sweep_dir / "plots" / "writeup.png"):
            markdown += ["", "![write-up against ours](plots/writeup.png)"]
    write_text(sweep_dir / "results.md", "\n".join(markdown) + "\n")
    write_json(sweep_dir / "best.json", best or {})
    write_sweep_plots(sweep_dir, rows)
