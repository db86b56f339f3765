"""McNemar's exact test and Spearman's rho (engine.stats) against answers worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.stats import mcnemar_p, ranks, spearman, spearman_p


def test_mcnemar_p_is_twice_the_binomial_tail() -> None:
    # 1 vs 5 discordant pairs: P(X <= 1 | n=6, 1/2) = (1 + 6) / 64, two-sided 14/64
    assert mcnemar_p(1, 5) == pytest.approx(14 / 64)
    assert mcnemar_p(5, 1) == pytest.approx(14 / 64)
    # 0 vs 10: 2 / 2**10
    assert mcnemar_p(0, 10) == pytest.approx(2 / 1024)


def test_mcnemar_p_is_one_without_a_difference() -> None:
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(7, 7) == 1.0  # the two tails overlap: capped at 1


def test_mcnemar_p_stays_finite_for_millions_of_pairs() -> None:
    # 400,000 vs 410,000 discordant pairs: z = 10,000 / sqrt(810,000) = 11.1, p ~ 1.1e-28
    assert mcnemar_p(400_000, 410_000) == pytest.approx(1.12e-28, rel=0.01)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_mcnemar_p_refuses_what_is_not_a_count(bad) -> None:
    with pytest.raises(ValueError, match="count"):
        mcnemar_p(bad, 3)


def test_ranks_give_ties_the_mean_of_the_ranks_they_span() -> None:
    assert ranks(np.array([10.0, 30.0, 20.0, 30.0])).tolist() == [1.0, 3.5, 2.0, 3.5]


def test_spearman_is_one_for_any_increasing_relation_and_minus_one_reversed() -> None:
    x = np.array([0.1, 0.2, 0.5, 0.9, 1.3])
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman(x, -(x**3)) == pytest.approx(-1.0)


def test_spearman_matches_the_textbook_formula_without_ties() -> None:
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)); ranks of b: 2 1 4 3 5, d^2 = 1+1+1+1+0 = 4
    a, b = np.arange(5.0), np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    assert spearman(a, b) == pytest.approx(1 - 6 * 4 / (5 * 24))


def test_spearman_of_a_constant_side_is_undefined() -> None:
    assert math.isnan(spearman(np.arange(4.0), np.ones(4)))


def test_the_permutation_p_value_of_a_perfect_order_of_five_is_the_exact_one() -> None:
    # Of the 120 orders of 5 points, 2 reach |rho| = 1: p = 2/120 (Monte Carlo, within noise)
    p = spearman_p(np.arange(5.0), np.arange(5.0), permutations=20_000, seed=1)
    assert p == pytest.approx(2 / 120, abs=0.004)


def test_unrelated_orders_give_a_large_p_value() -> None:
    rng = np.random.default_rng(3)
    assert spearman_p(rng.normal(size=30), rng.normal(size=30)) > 0.05
