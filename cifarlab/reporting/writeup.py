"""The write-up's accuracies beside ours: a table and a plot, for comparison only.

The write-up chose its rows on the test set (it had no validation split), so its
numbers are test accuracies picked on the test set. cifarlab ranks on
validation accuracy; here, apart from that ranking, each row's write-up
accuracy is put beside cifarlab's *test* accuracy for the same row, the only
like-for-like number, and labelled so that nobody selects on it.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

from cifarlab.reporting.plots import plt, save_figure
from cifarlab.reporting.tables import format_rows

NOTE = "for comparison with the write-up, not for selection (the write-up picked its rows on the test set)"
COLUMNS = ["label", "writeup acc", "test acc", "difference"]

# The write-up's one-factor comparisons: pairs of its table's rows (by number) that differ in one setting.
ONE_FACTOR = [
    ("optimizer: Adam -> SGD", 2, 3),
    ("fc layers: 1 -> 3", 2, 4),
    ("depth: 12 -> 7 conv", 5, 6),
    ("weight decay -> dropout", 10, 11),
    ("depth: 5 -> 7 conv (dropout)", 11, 12),
    ("depth: 7 -> 8 conv (dropout)", 12, 13),
    ("BatchNorm: off -> on", 13, 14),
    ("dropout: on -> off (BatchNorm)", 14, 15),
]
PAIR_COLUMNS = ["comparison", "rows", "writeup", "ours", "beyond spread", "same sign"]
PAIRS_INTRO = ("The write-up's one-factor comparisons (row b - row a, in test accuracy points; beyond spread: larger "
               "than twice the difference's standard error from the seed-to-seed spread)")
PERMUTATIONS = 9999  # permutation test resamples: p-values to about 0.01 at the 5% level


def comparison_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that carry a write-up accuracy, in plan order, with ``difference`` = ours (test) - the write-up's."""
    known = sorted((r for r in rows if r.get("writeup acc") is not None), key=lambda r: r.get("trial", 0))
    return [{"label": r["label"], "writeup acc": r["writeup acc"], "test acc": r.get("test acc"),
             "difference": None if r.get("test acc") is None else r["test acc"] - r["writeup acc"],
             "run": r.get("run")} for r in known]


def format_comparison(rows: list[dict[str, Any]], fmt: str = "table") -> str:
    """The comparison table of :func:`comparison_rows`, headed by its note; ``""`` when no row has one."""
    compared = comparison_rows(rows)
    if not compared:
        return ""
    table = format_rows(compared, COLUMNS, fmt)
    if fmt in ("csv", "json"):
        return table
    found = format_agreement(rows, fmt)
    return f"Beside the write-up, {NOTE}:\n\n{table}" + (f"\n\n{found}" if found else "")


def plot_comparison(rows: list[dict[str, Any]], path: Path) -> bool:
    """One point per row: the write-up's accuracy against ours (test), with the diagonal; False if nothing to plot."""
    points = [r for r in comparison_rows(rows) if r["test acc"] is not None]
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    xs = [100 * r["writeup acc"] for r in points]
    ys = [100 * r["test acc"] for r in points]
    lo, hi = max(0.0, min(xs + ys) - 5), min(100.0, max(xs + ys) + 5)
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="same accuracy")
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    # Rows often land on or near the same point (e.g. at chance): one short label per whole-percent
    # point, naming each row by its label's first part (r01-12x4 -> r01).
    names: dict[tuple[float, float], list[str]] = {}
    for r, x, y in zip(points, xs, ys):
        names.setdefault((round(x), round(y)), []).append(r["label"].split("-")[0])
    for i, ((x, y), labels) in enumerate(sorted(names.items())):  # neighbours alternate above and below
        ax.annotate(", ".join(labels), (x, y), textcoords="offset points", xytext=(3, 5 if i % 2 else -11),
                    fontsize=7)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", xlabel="write-up's test accuracy (%)",
           ylabel="cifarlab's test accuracy, same row (%)")
    ax.set_title("Beside the write-up: for comparison, not for selection", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)
    return True


def _row_number(label: str) -> int | None:
    """The write-up's row number of a seed-table label (``r02-12x1`` -> 2), else None."""
    match = re.match(r"r(\d+)-", label)
    return int(match[1]) if match else None


def _by_row(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each configuration with a write-up accuracy: its write-up accuracy and its test accuracies over seeds."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("writeup acc") is None or r.get("test acc") is None:
            continue
        group = groups.setdefault(r.get("group", r["label"]), {"writeup": r["writeup acc"], "tests": []})
        group["tests"].append(r["test acc"])
    return groups


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How far our test accuracies (mean over seeds) agree with the write-up's: rank correlations with permutation
    p-values, the seed-to-seed spread, and the write-up's one-factor comparisons; None under three rows.

    Spread: the pooled standard deviation of test accuracy across seeds (rows with two or more). A comparison's
    difference is beyond it when larger than twice its standard error, spread x sqrt(1/n_a + 1/n_b).
    """
    from scipy import stats

    groups = _by_row(rows)
    if len(groups) < 3:
        return None
    names = list(groups)
    theirs = [groups[n]["writeup"] for n in names]
    ours = [statistics.mean(groups[n]["tests"]) for n in names]
    out: dict[str, Any] = {"rows": len(names), "seeds": sorted({len(g["tests"]) for g in groups.values()})}
    null = _pairings(ours)
    for key, statistic in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        if len(set(ours)) < 2 or len(set(theirs)) < 2:  # every row at one accuracy (e.g. at chance): no ranking
            out[key] = out[f"{key} p"] = None
            continue
        # Only the write-up's column is shuffled: n! pairings, all of them (an exact p) up to 7 rows
        test = stats.permutation_test((theirs,), null[key], permutation_type="pairings", vectorized=True,
                                      n_resamples=PERMUTATIONS, alternative="two-sided", rng=0)
        out[key], out[f"{key} p"] = float(statistic(theirs, ours)[0]), float(test.pvalue)
    repeated = [g["tests"] for g in groups.values() if len(g["tests"]) > 1]
    spread = math.sqrt(statistics.mean(statistics.variance(t) for t in repeated)) if repeated else None
    out["spread"] = spread
    numbered = {_row_number(n): n for n in names if _row_number(n) is not None}
    pairs = []
    for what, a, b in ONE_FACTOR:
        if a not in numbered or b not in numbered:
            continue
        ga, gb = groups[numbered[a]], groups[numbered[b]]
        mine = statistics.mean(gb["tests"]) - statistics.mean(ga["tests"])
        written = gb["writeup"] - ga["writeup"]
        se = None if spread is None else spread * math.sqrt(1 / len(ga["tests"]) + 1 / len(gb["tests"]))
        pairs.append({"comparison": what, "rows": f"{a} vs {b}", "writeup": written, "ours": mine,
                      "beyond spread": None if se is None else abs(mine) > 2 * se,
                      # a difference that shows as +0.0 points has no sign to agree on
                      "same sign": (mine > 0) == (written > 0) if written and round(100 * mine, 1) else None})
    out["pairs"] = pairs
    return out


def _pairings(ours: list[float]) -> dict[str, Any]:
    """Spearman's rho and Kendall's tau-b of ``ours`` against each of a batch of orderings of the write-up's column
    (the last axis), for the permutation test: scipy's own functions take one pairing per call, which made a
    report's 2 x 9,999 pairings take seconds."""
    import numpy as np
    from scipy import stats

    y = np.asarray(ours)
    y_ranks = stats.rankdata(y)
    first, second = np.triu_indices(len(y), 1)
    y_order = np.sign(y[second] - y[first])  # each pair of rows: +1, -1, or 0 for a tie

    def spearman(x, axis=-1):  # Pearson's r of the (tie-averaged) ranks
        ranks = stats.rankdata(x, axis=axis)
        return stats.pearsonr(ranks, np.broadcast_to(y_ranks, ranks.shape), axis=axis).statistic

    def kendall(x, axis=-1):  # (concordant - discordant) / sqrt(pairs untied in x * pairs untied in y)
        x_order = np.sign(np.take(x, second, axis) - np.take(x, first, axis))
        return (x_order * y_order).sum(axis) / np.sqrt(np.count_nonzero(x_order, axis) * np.count_nonzero(y_order))

    return {"spearman": spearman, "kendall": kendall}


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def pair_cells(pair: dict[str, Any]) -> list[str]:
    """A one-factor comparison's cells, differences in points."""
    return [pair["comparison"], pair["rows"], f"{100 * pair['writeup']:+.1f}", f"{100 * pair['ours']:+.1f}",
            _yes_no(pair["beyond spread"]), _yes_no(pair["same sign"])]


def agreement_lines(found: dict[str, Any]) -> list[str]:
    """The rank agreement and the spread, in sentences."""
    seeds = "/".join(map(str, found["seeds"]))
    spread = "no row has two seeds" if found["spread"] is None else \
        f"{100 * found['spread']:.2f} points (pooled standard deviation of test accuracy over seeds)"
    ranks = "undefined: our accuracies are all equal" if found["spearman"] is None else \
        (f"Spearman's rho {found['spearman']:+.2f} (permutation p = {found['spearman p']:.2g}), "
         f"Kendall's tau {found['kendall']:+.2f} (p = {found['kendall p']:.2g})")
    return [f"rank agreement over {found['rows']} rows (our test accuracy, mean over {seeds} seed(s)): {ranks}",
            f"seed-to-seed spread: {spread}"]


def format_agreement(rows: list[dict[str, Any]], fmt: str = "table") -> str:
    """:func:`agreement` as text (``table``) or Markdown; ``""`` when there is nothing to compare."""
    found = agreement(rows)
    if found is None:
        return ""
    lines = agreement_lines(found)
    head = f"Agreement with the write-up, {NOTE}:"
    if fmt == "markdown":
        text = "\n".join([head, ""] + [f"- {line}" for line in lines])
    else:
        text = "\n".join([head] + [f"  {line}" for line in lines])
    if found["pairs"]:
        cells = [dict(zip(PAIR_COLUMNS, pair_cells(p))) for p in found["pairs"]]
        text += f"\n\n{PAIRS_INTRO}:\n\n" + format_rows(cells, PAIR_COLUMNS, fmt)
    return text
