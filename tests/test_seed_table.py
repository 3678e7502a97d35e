"""The write-up's results table as the `seed-table` sweep, its best run as `seed-best`, and the comparison view.

The expected settings are written out here from the write-up's table
(../shared/writeup/README.md), not read back from the sweep file, so a typo in
the YAML fails this test.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from cifarlab.cli import main
from cifarlab.config import compose
from cifarlab.models import build_model
from cifarlab.reporting.runs import columns_for
from cifarlab.reporting.writeup import NOTE, comparison_rows, format_comparison, plot_comparison
from cifarlab.sweeps.options import SweepOptions
from cifarlab.sweeps.spec import load_sweep

# row: (label, lr, batch, epochs, conv, fc, optimizer, regularization, batchnorm, write-up accuracy)
WRITEUP_TABLE = [
    ("r01-12x4", 0.001, 64, 25, 12, 4, "adam", "no", False, 0.69),
    ("r02-12x1", 0.0005, 99, 30, 12, 1, "adam", "no", False, 0.73),
    ("r03-12x1-sgd", 0.0005, 99, 30, 12, 1, "sgd", "no", False, 0.67),
    ("r04-12x3-b99", 0.0005, 99, 30, 12, 3, "adam", "no", False, 0.73),
    ("r05-12x3", 0.0005, 60, 18, 12, 3, "adam", "no", False, 0.74),
    ("r06-7x3", 0.0005, 60, 18, 7, 3, "adam", "no", False, 0.79),
    ("r07-6x3-e30", 0.0005, 60, 30, 6, 3, "adam", "no", False, 0.80),
    ("r08-6x3-lr1e-4", 0.0001, 60, 20, 6, 3, "adam", "no", False, 0.66),
    ("r09-6x3-wd", 0.0005, 60, 20, 6, 3, "adam", "weight_decay", False, 0.69),
    ("r10-5x3-wd", 0.0005, 60, 20, 5, 3, "adam", "weight_decay", False, 0.66),
    ("r11-5x3-dropout", 0.0005, 60, 20, 5, 3, "adam", "dropout", False, 0.80),
    ("r12-7x3-dropout", 0.0005, 60, 20, 7, 3, "adam", "dropout", False, 0.81),
    ("r13-8x3-dropout", 0.0005, 60, 20, 8, 3, "adam", "dropout", False, 0.81),
    ("r14-8x3-dropout-bn", 0.0005, 60, 20, 8, 3, "adam", "dropout", True, 0.83),
    ("r15-8x3-bn", 0.0005, 60, 20, 8, 3, "adam", "no", True, 0.84),
]


def _network_facts(cfg) -> tuple[int, int, bool, bool]:
    """(conv layers, linear layers, any dropout, any BatchNorm), counted on the built network."""
    with torch.device("meta"):  # shapes only: the 12-conv networks cost nothing to build
        net = build_model(cfg.model)
    modules = list(net.modules())
    return (sum(isinstance(m, nn.Conv2d) for m in modules), sum(isinstance(m, nn.Linear) for m in modules),
            any(isinstance(m, nn.Dropout) and m.p > 0 for m in modules),
            any(isinstance(m, nn.BatchNorm2d) for m in modules))


def test_seed_table_is_the_writeups_fifteen_rows_in_order():
    spec = load_sweep("seed-table")
    assert spec.kind == "runs"
    assert [(t.label, t.writeup_accuracy) for t in spec.trials] == [(r[0], r[-1]) for r in WRITEUP_TABLE]


@pytest.mark.parametrize("row", WRITEUP_TABLE, ids=[r[0] for r in WRITEUP_TABLE])
def test_every_row_composes_to_the_settings_the_writeup_states(row):
    label, lr, batch, epochs, conv, fc, optimizer, regularization, batchnorm, _ = row
    spec = load_sweep("seed-table")
    cfg = spec.compose(next(t for t in spec.trials if t.label == label).overrides)
    assert (cfg.optim.lr, cfg.train.batch_size, cfg.train.epochs, cfg.optim.name) == (lr, batch, epochs, optimizer)
    assert _network_facts(cfg) == (conv, fc, regularization == "dropout", batchnorm)
    assert (cfg.optim.weight_decay > 0) == (regularization == "weight_decay")
    # what the write-up leaves to PyTorch's defaults: plain SGD, ReLU, the seed's data and schedule
    if optimizer == "sgd":
        assert (cfg.optim.momentum, cfg.optim.nesterov) == (0.0, False)
    assert (cfg.schedule.name, cfg.data.augment.flip, cfg.data.augment.crop_padding) == ("constant", False, 0)
    assert (cfg.train.precision, cfg.train.label_smoothing) == ("fp32", 0.0)


def test_seed_best_is_row_15_and_seed_stays_the_printed_network():
    best = compose("seed-best")
    assert (best.optim.name, best.optim.lr, best.train.batch_size, best.train.epochs) == ("adam", 5e-4, 60, 20)
    assert _network_facts(best) == (8, 3, False, True)
    assert best.optim.weight_decay == 0
    assert _network_facts(compose("seed")) == (5, 3, True, True)  # the code as printed: dropout 0.2 and BN


def test_the_short_form_knobs_scale_every_row():
    spec = load_sweep("seed-table", SweepOptions(max_train_images=1000, epochs_scale=0.05, val_size=500,
                                                 max_test_images=500))
    configs = {t.label: spec.compose(t.overrides) for t in spec.trials}
    assert {c.data.max_train_images for c in configs.values()} == {1000}
    # 30 epochs -> 2, 25, 20 and 18 -> 1: the rows' longer runs stay longer
    assert (configs["r02-12x1"].train.epochs, configs["r01-12x4"].train.epochs,
            configs["r15-8x3-bn"].train.epochs, configs["r05-12x3"].train.epochs) == (2, 1, 1, 1)


def _seedlike_counts(conv: int, fc: int, batchnorm: bool, width: int = 32) -> tuple[int, int]:
    """(parameters, MACs per image) of ``seedlike(conv, fc)``, counted by hand from its growth rule.

    The rule (cifarlab/models/seedlike.py, the write-up's printed network extended): conv ``i`` has
    ``min(width * 2**(i-1), 512)`` channels, 3x3, stride 2 at conv 2 only (32x32 at conv 1, 16x16 after);
    the head takes ``channels * 4`` features (2x2 pool), hidden linear ``j`` has ``max(512 // 2**(j-1), 16)``
    outputs, the last 10. A 3x3 conv has ``cout * cin * 9`` weights and ``cout`` biases and costs
    ``h * w * cout * cin * 9`` MACs; BatchNorm has 2 parameters a channel; a linear layer ``in * out + out``
    parameters and ``in * out`` MACs. The seed (5, 3) gives 2,753,546 parameters, the write-up's figure.
    """
    params = macs = 0
    cin = 3
    for i in range(1, conv + 1):
        cout, side = min(width * 2 ** (i - 1), 512), 32 if i == 1 else 16
        params += cout * cin * 9 + cout + (2 * cout if batchnorm else 0)
        macs += side * side * cout * cin * 9
        cin = cout
    features = cin * 4
    for out in [max(512 // 2 ** (j - 1), 16) for j in range(1, fc)] + [10]:
        params += features * out + out
        macs += features * out
        features = out
    return params, macs


def test_the_hand_count_gives_the_writeups_seed_figure():
    assert _seedlike_counts(5, 3, batchnorm=True)[0] == 2_753_546  # stated in ../shared/writeup/README.md


@pytest.mark.parametrize("row", [r for r in WRITEUP_TABLE if r[0] in ("r01-12x4", "r15-8x3-bn", "r11-5x3-dropout")],
                         ids=lambda r: r[0])
def test_inspect_checks_a_row_of_the_table(row, capsys):
    label, conv, fc, batchnorm = row[0], row[4], row[5], row[8]
    params, macs = _seedlike_counts(conv, fc, batchnorm)
    assert main(["inspect", f"seed-table:{label}"]) == 0
    out = capsys.readouterr().out
    assert f"params {params:,} " in out and f"MACs/image {macs:,} " in out


def test_inspect_names_the_rows_when_a_label_is_unknown(capsys):
    assert main(["inspect", "seed-table:r16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no row labelled 'r16'" in err and "r15-8x3-bn" in err and len(err.splitlines()) == 1


def test_inspect_takes_a_preset_name(capsys):
    assert main(["inspect", "seed-best"]) == 0
    params, macs = _seedlike_counts(8, 3, batchnorm=True)  # row 15: 8 conv, 3 linear, BatchNorm
    out = capsys.readouterr().out
    assert f"params {params:,} " in out and f"MACs/image {macs:,} " in out


def _rows():
    return [{"label": "r02", "trial": 1, "val acc": 0.5, "test acc": 0.52, "writeup acc": 0.73, "run": "b"},
            {"label": "r01", "trial": 0, "val acc": 0.6, "test acc": 0.58, "writeup acc": 0.69, "run": "a"},
            {"label": "extra", "trial": 2, "val acc": 0.7, "test acc": 0.71, "writeup acc": None, "run": "c"}]


def test_comparison_puts_the_writeup_beside_our_test_accuracy_in_plan_order():
    compared = comparison_rows(_rows())
    assert [r["label"] for r in compared] == ["r01", "r02"]
    assert compared[0]["difference"] == pytest.approx(0.58 - 0.69)
    text = format_comparison(_rows(), "table")
    assert NOTE in text and "not for selection" in text
    assert "58.00%" in text and "69.00%" in text and "-11.00 pp" in text
    assert format_comparison([r for r in _rows() if r["writeup acc"] is None]) == ""


def test_the_table_that_ranks_on_validation_shows_no_test_accuracy_of_either_kind():
    ranked = columns_for(_rows(), test=False)
    assert "val acc" in ranked and "test acc" not in ranked and "writeup acc" not in ranked
    assert {"test acc", "writeup acc"} <= set(columns_for(_rows()))


def test_comparison_plot_has_one_point_per_row(tmp_path):
    path = tmp_path / "writeup.png"
    assert plot_comparison(_rows(), path) and path.stat().st_size > 5_000
    assert not plot_comparison([_rows()[2]], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_the_report_page_shows_the_comparison_as_the_text_table_does(tmp_path):
    from cifarlab.reporting.html.sweep import RunsView, writeup_comparison

    page = writeup_comparison(RunsView(tmp_path, _rows(), is_sweep=True))
    assert page.index("r01") < page.index("r02") and "extra" not in page  # plan order; rows without one left out
    assert "58.00%" in page and "69.00%" in page and "-11.00 pp" in page and 'data-sort="0.69"' in page
