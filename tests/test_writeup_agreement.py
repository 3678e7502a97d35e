"""Agreement with the write-up: rank correlations, permutation p-values, the seed spread, the one-factor pairs and
the at-chance test, each against numbers worked by hand in the test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cifarlab.reporting.runs import at_chance
from cifarlab.reporting.writeup import _pairings, agreement, format_agreement


def _rows(table: dict[str, tuple[float, list[float]]]) -> list[dict]:
    """Sweep rows: label -> (the write-up's accuracy, our test accuracy per seed)."""
    return [{"label": f"{label}-seed{i}", "group": label, "writeup acc": writeup, "test acc": test, "trial": n}
            for n, (label, (writeup, tests)) in enumerate(table.items()) for i, test in enumerate(tests)]


def test_the_same_order_is_rho_and_tau_one_with_the_exact_permutation_p():
    # 4 rows: 4! = 24 pairings, fewer than the resamples, so the test is exact. Only the identity pairing reaches
    # rho = 1 and only the reversal -1: two-sided p = 2/24.
    found = agreement(_rows({"r01-a": (0.60, [0.30]), "r02-b": (0.70, [0.35]), "r03-c": (0.80, [0.50]),
                             "r04-d": (0.90, [0.51])}))
    assert found["spearman"] == pytest.approx(1.0) and found["kendall"] == pytest.approx(1.0)
    assert found["spearman p"] == pytest.approx(2 / 24) and found["kendall p"] == pytest.approx(2 / 24)


def test_one_swapped_pair_of_four_gives_the_hand_computed_rho_and_tau():
    # ranks 1 2 3 4 against 2 1 3 4: d^2 sum = 2, rho = 1 - 6*2/(4*15) = 0.8; concordant 5, discordant 1:
    # tau = (5-1)/6 = 2/3.
    found = agreement(_rows({"r01-a": (0.60, [0.35]), "r02-b": (0.70, [0.30]), "r03-c": (0.80, [0.50]),
                             "r04-d": (0.90, [0.51])}))
    assert found["spearman"] == pytest.approx(0.8) and found["kendall"] == pytest.approx(2 / 3)


def test_up_to_seven_rows_every_pairing_is_tried_so_the_p_is_exact():
    # 5 rows: 5! = 120 orderings of the write-up's column; only the identity gives rho = tau = 1 and only the
    # reversal -1, so the two-sided p is 2/120 exactly (a random draw of 9,999 pairings would only come near it).
    found = agreement(_rows({"r01-a": (0.60, [0.30]), "r02-b": (0.70, [0.35]), "r03-c": (0.80, [0.50]),
                             "r04-d": (0.90, [0.51]), "r05-e": (0.95, [0.60])}))
    assert found["spearman p"] == pytest.approx(2 / 120, rel=1e-9)
    assert found["kendall p"] == pytest.approx(2 / 120, rel=1e-9)


def test_the_permutation_tests_batched_statistics_are_scipys_rho_and_tau_b_ties_included():
    rng = np.random.default_rng(0)
    ours = rng.integers(0, 6, 12).astype(float)  # 12 rows on 6 levels: ties in both columns
    batch = rng.integers(0, 6, (50, 12)).astype(float)
    null = _pairings(list(ours))
    assert null["spearman"](batch) == pytest.approx([stats.spearmanr(x, ours)[0] for x in batch])
    assert null["kendall"](batch) == pytest.approx([stats.kendalltau(x, ours)[0] for x in batch])


def test_pairs_give_differences_in_points_and_the_spread_decides_beyond():
    # Pooled spread over the five rows' seed pairs: each pair's variance is (a-b)^2/2.
    seeds = {"r10-5x3-wd": (0.66, [0.40, 0.42]), "r11-5x3-dropout": (0.80, [0.50, 0.52]),
             "r12-7x3-dropout": (0.81, [0.525, 0.545]), "r13-8x3-dropout": (0.81, [0.45, 0.47]),
             "r14-8x3-dropout-bn": (0.83, [0.455, 0.465])}
    found = agreement(_rows(seeds))
    spread = math.sqrt((4 * 0.02 ** 2 / 2 + 0.01 ** 2 / 2) / 5)  # 0.01304
    assert found["spread"] == pytest.approx(spread)
    pairs = {p["rows"]: p for p in found["pairs"]}
    assert set(pairs) == {"10 vs 11", "11 vs 12", "12 vs 13", "13 vs 14"}  # the one-factor pairs of these rows
    # Two seeds a side: a difference's standard error is spread * sqrt(1/2 + 1/2) = spread; beyond is > 2 of them.
    wd = pairs["10 vs 11"]  # ours +10 points, the write-up's +14
    assert wd["ours"] == pytest.approx(0.10) and wd["writeup"] == pytest.approx(0.14)
    assert wd["beyond spread"] is True and wd["same sign"] is True
    deeper = pairs["11 vs 12"]  # +2.5 points = 1.92 standard errors: within the spread
    assert deeper["ours"] == pytest.approx(0.025) and deeper["beyond spread"] is False
    assert deeper["same sign"] is True
    flat = pairs["12 vs 13"]  # the write-up's 81% against 81%: no sign to agree with
    assert flat["ours"] == pytest.approx(-0.075) and flat["beyond spread"] is True and flat["same sign"] is None
    bn = pairs["13 vs 14"]  # ours 0.46 - 0.46 = 0: not beyond the spread, and no sign
    assert bn["ours"] == pytest.approx(0.0, abs=1e-12) and bn["beyond spread"] is False and bn["same sign"] is None


def test_fewer_than_three_rows_or_equal_accuracies_give_no_ranking():
    assert agreement(_rows({"r01-a": (0.6, [0.3]), "r02-b": (0.7, [0.4])})) is None
    flat = agreement(_rows({"r01-a": (0.6, [0.1]), "r02-b": (0.7, [0.1]), "r03-c": (0.8, [0.1])}))
    assert flat["spearman"] is None and flat["spread"] is None
    assert "undefined: our accuracies are all equal" in format_agreement(
        _rows({"r01-a": (0.6, [0.1]), "r02-b": (0.7, [0.1]), "r03-c": (0.8, [0.1])}))


@pytest.mark.parametrize("accuracy, expected", [(0.10, True), (0.12, True), (0.13, False), (0.50, False)])
def test_at_chance_is_a_one_sided_binomial_test_against_ten_percent(accuracy, expected):
    # 1,000 images at p = 0.1: mean 100, sd 9.49. 120 right: z = (119.5 - 100) / 9.49 = 2.05, p = 0.020 >= 0.01,
    # chance; 130 right: z = 3.11, p = 0.0009, learned.
    assert at_chance(accuracy, 1000) is expected
