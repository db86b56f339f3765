"""Tests of significance: paired yes/no outcomes, rank correlation (pure functions, no I/O)."""

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


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span (as Spearman's rho needs)."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's r of the ranks; NaN when either side is constant."""
    first, second = ranks(a), ranks(b)
    if len(first) != len(second):
        raise ValueError(f"a ({len(first)}) and b ({len(second)}) differ in length")
    if len(first) < 2 or first.std() == 0 or second.std() == 0:
        return math.nan
    return float(np.corrcoef(first, second)[0, 1])


def spearman_p(a: np.ndarray, b: np.ndarray, *, permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided permutation p-value of Spearman's rho: the share of shufflings of ``b`` whose
    |rho| reaches the observed one (the observed order counted in, so p is never 0).

    Few points (here, one per checkpoint) make the normal approximation wrong; shuffling is
    exact in distribution whatever n is."""
    observed = spearman(a, b)
    if math.isnan(observed):
        return math.nan
    rng = np.random.default_rng(seed)
    first, second = ranks(a), ranks(b)
    shuffled = np.array([rng.permutation(second) for _ in range(permutations)])
    centred = shuffled - shuffled.mean(axis=1, keepdims=True)
    x = first - first.mean()
    rhos = centred @ x / (np.linalg.norm(centred, axis=1) * np.linalg.norm(x))
    return float((1 + (np.abs(rhos) >= abs(observed) - 1e-12).sum()) / (permutations + 1))
