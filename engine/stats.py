"""Tests of significance for paired yes/no outcomes (pure functions, no I/O)."""

from __future__ import annotations

import math

import numpy as np


def mcnemar_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts of a paired 2x2 table.

    ``a_only``: pairs that are yes under A and no under B; ``b_only``: the reverse. Under the null
    hypothesis each discordant pair goes either way with probability 1/2, so the p-value is the
    two-sided binomial tail: min(1, 2 P(X <= min(a_only, b_only))), X ~ Binomial(a_only + b_only,
    1/2). Summed in log space, so millions of pairs neither overflow nor lose the tail.
    """
    for name, value in (("a_only", a_only), ("b_only", b_only)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a count (a non-negative integer), got {value!r}")
    n, low = int(a_only) + int(b_only), min(int(a_only), int(b_only))
    if n == 0:
        return 1.0
    # log C(n, k) for k = 0..low, by the ratio C(n, k) / C(n, k-1) = (n - k + 1) / k
    k = np.arange(1, low + 1)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log(n - k + 1) - np.log(k))]) - n * math.log(2)
    peak = log_terms.max()
    tail = math.exp(peak + math.log(np.exp(log_terms - peak).sum()))
    return min(1.0, 2.0 * tail)
