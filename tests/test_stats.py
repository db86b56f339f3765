"""McNemar's exact test (engine.stats) against answers worked by hand."""

from __future__ import annotations

import pytest

from engine.stats import mcnemar_p


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
