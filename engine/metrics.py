"""Metrics for how well a model's word scores agree with the words a human editor changed.

Pure functions over plain numbers (no torch, no I/O), so every number in a results table can be
re-derived by hand from the scores and the rationale.  Inputs are checked once, at the public
function, and a bad input raises ``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from engine.stats import mcnemar_p

__all__ = [
    "Aopc",
    "Classification",
    "Estimate",
    "Faithfulness",
    "Plausibility",
    "aopc",
    "aopc_sizes",
    "bootstrap_draws",
    "classification",
    "faithfulness",
    "mcnemar",
    "mean_with_ci",
    "paired_difference",
    "plausibility",
    "plausibility_batch",
    "rank_words",
]


@dataclass(frozen=True, slots=True)
class Plausibility:
    """Agreement of one score vector with one human rationale R (k = |R| words)."""

    exact: bool  # the top-k words are exactly R
    top3: bool  # R fits inside the top 3 words (the headline metric; False when k > 3)
    hit1: bool  # the single highest-scored word is in R
    jaccard: float  # |R ∩ top-k| / |R ∪ top-k|
    jaccard50: bool  # jaccard >= 0.5
    token_f1: float  # ERASER token F1 of the top-k words against R
    auprc: float  # average precision of the scores against 1[word in R] (as sklearn computes it)


@dataclass(frozen=True, slots=True)
class Faithfulness:
    """ERASER faithfulness: how much the predicted class's probability depends on the top-k."""

    comprehensiveness: float  # p_full - p_without_topk: high when removing the top-k hurts
    sufficiency: float  # p_full - p_only_topk: low when the top-k alone suffice


@dataclass(frozen=True, slots=True)
class Aopc:
    """ERASER's area over the perturbation curve: both faithfulness figures averaged over k."""

    aopc_comprehensiveness: float  # mean over k of p_full - p_without_top_k
    aopc_sufficiency: float  # mean over k of p_full - p_only_top_k


@dataclass(frozen=True, slots=True)
class Classification:
    """Sentence-level quality of the "needs edit" classifier (positive class = True)."""

    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean with a percentile-bootstrap confidence interval [low, high]."""

    n: int
    mean: float
    low: float
    high: float


# --- ranking ---------------------------------------------------------------------------------


def _rank_rows(rows: np.ndarray) -> np.ndarray:
    """Rank each row descending; a stable sort of the negation keeps lower indices first on ties.

    NaN negates to NaN, which numpy sorts after every number, so NaN words rank last.
    """
    return np.argsort(-rows, axis=-1, kind="stable")


def rank_words(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Word indices from highest to lowest score; ties go to the lower index, NaN ranks last.

    Deterministic tie-breaking matters: "top-1" and "top-3" must not depend on sort internals.
    """
    array = np.asarray(scores, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {array.shape}")
    return _rank_rows(array)


# --- plausibility ----------------------------------------------------------------------------


def _check_rationale(rationale: Sequence[int], n_words: int) -> np.ndarray:
    """Return R as a boolean mask over the words, or raise ValueError saying what is wrong."""
    if len(rationale) == 0:
        raise ValueError("rationale is empty; plausibility needs at least one edited word")
    indices: list[int] = []
    for item in rationale:
        if isinstance(item, bool | np.bool_):
            raise ValueError(f"rationale index {item!r} is a bool, not a word index")
        try:
            index = operator.index(item)
        except TypeError:
            raise ValueError(f"rationale index {item!r} is not an integer") from None
        if not 0 <= index < n_words:
            raise ValueError(f"rationale index {index} is outside the {n_words} words")
        indices.append(index)
    if len(set(indices)) != len(indices):
        raise ValueError(f"rationale {indices} repeats a word index")
    mask = np.zeros(n_words, dtype=bool)
    mask[indices] = True
    return mask


def _check_score_rows(score_rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(score_rows, dtype=float)
    if rows.ndim != 2:
        raise ValueError(f"score_rows must be (rows, words), got shape {rows.shape}")
    if rows.shape[1] == 0:
        raise ValueError("scores are empty; need one score per word")
    if not np.isfinite(rows).all():
        raise ValueError("scores contain NaN or infinity; every word needs a finite score")
    return rows


def _plausibility_rows(in_rationale: np.ndarray, rows: np.ndarray) -> list[Plausibility]:
    """The one implementation behind plausibility() and plausibility_batch() (inputs checked)."""
    n_rows, n_words = rows.shape
    k = int(in_rationale.sum())
    ranking = _rank_rows(rows)
    relevant = in_rationale[ranking]  # (rows, words): is the word at this rank in R?

    overlap = relevant[:, :k].sum(axis=1)  # |R ∩ P_k|
    exact = overlap == k
    top3 = relevant[:, :3].sum(axis=1) == k  # never true when k > 3
    hit1 = relevant[:, 0]
    jaccard = overlap / (2 * k - overlap)  # |R ∪ P_k| = k + k - overlap
    precision = overlap / k  # |P_k| = k
    recall = overlap / k
    with np.errstate(invalid="ignore", divide="ignore"):
        token_f1 = np.where(overlap > 0, 2 * precision * recall / (precision + recall), 0.0)

    # Average precision with tied scores forming one threshold, as sklearn does:
    # AP = sum over thresholds of (recall gain) * precision = (1/k) * sum over relevant words of
    # the precision at the end of that word's tie group.
    ranked_scores = np.take_along_axis(rows, ranking, axis=1)
    positions = np.arange(n_words)
    group_ends_here = np.ones((n_rows, n_words), dtype=bool)
    group_ends_here[:, :-1] = ranked_scores[:, :-1] != ranked_scores[:, 1:]
    end_marks = np.where(group_ends_here, positions, n_words)
    group_end = np.minimum.accumulate(end_marks[:, ::-1], axis=1)[:, ::-1]
    hits_so_far = np.cumsum(relevant, axis=1)
    precision_at_end = np.take_along_axis(hits_so_far, group_end, axis=1) / (group_end + 1)
    auprc = np.where(relevant, precision_at_end, 0.0).sum(axis=1) / k

    jaccard50 = jaccard >= 0.5
    return [
        Plausibility(*values)
        for values in zip(
            exact.tolist(),
            top3.tolist(),
            hit1.tolist(),
            jaccard.tolist(),
            jaccard50.tolist(),
            token_f1.tolist(),
            auprc.tolist(),
            strict=True,
        )
    ]


def plausibility(rationale: Sequence[int], scores: Sequence[float] | np.ndarray) -> Plausibility:
    """Score one word-score vector against one human rationale (indices of edited words).

    Raises ValueError for an empty, repeated or out-of-range rationale and for empty or
    non-finite scores, because any of these would silently bias a mean over sentences.
    """
    array = np.asarray(scores, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {array.shape}")
    rows = _check_score_rows(array[np.newaxis, :])
    in_rationale = _check_rationale(rationale, rows.shape[1])
    return _plausibility_rows(in_rationale, rows)[0]


def plausibility_batch(rationale: Sequence[int], score_rows: np.ndarray) -> list[Plausibility]:
    """plausibility() for one rationale and many score vectors (rows, words) in one numpy pass.

    Evaluation scores every method x layer of every sentence; checking the rationale once and
    ranking all rows together keeps that affordable.  Row i equals plausibility(R, rows[i]).
    """
    rows = _check_score_rows(score_rows)
    in_rationale = _check_rationale(rationale, rows.shape[1])
    if rows.shape[0] == 0:
        return []
    return _plausibility_rows(in_rationale, rows)


# --- faithfulness ----------------------------------------------------------------------------


def faithfulness(p_full: float, p_without_topk: float, p_only_topk: float) -> Faithfulness:
    """ERASER comprehensiveness and sufficiency from three probabilities of the predicted class."""
    for name, p in (
        ("p_full", p_full),
        ("p_without_topk", p_without_topk),
        ("p_only_topk", p_only_topk),
    ):
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return Faithfulness(
        comprehensiveness=float(p_full - p_without_topk),
        sufficiency=float(p_full - p_only_topk),
    )


AOPC_SHARE = 0.2  # besides 1, 3 and |R|, the top 20 % of the words


def aopc_sizes(rationale_size: int, words: int) -> tuple[int, ...]:
    """The k's AOPC averages over: 1, 3, |R| and 20 % of the words (rounded up), each at most
    the number of words, each once, ascending (ERASER's bins, in words rather than tokens)."""
    for name, value in (("rationale_size", rationale_size), ("words", words)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    share = math.ceil(AOPC_SHARE * words)
    return tuple(sorted({min(k, words) for k in (1, 3, rationale_size, share)}))


def aopc(p_full: float, p_without: Sequence[float], p_only: Sequence[float]) -> Aopc:
    """AOPC comprehensiveness and sufficiency from p(predicted class) with the top-k words
    removed (``p_without``) and alone (``p_only``), one value per k of ``aopc_sizes``."""
    without, only = np.asarray(p_without, dtype=float), np.asarray(p_only, dtype=float)
    if without.ndim != 1 or without.shape != only.shape or len(without) == 0:
        raise ValueError(
            f"p_without and p_only must be equally long, non-empty lists, got {without.shape} "
            f"and {only.shape}"
        )
    values = np.concatenate([[p_full], without, only])
    if not ((values >= 0.0) & (values <= 1.0)).all():  # also rejects NaN
        raise ValueError(f"every probability must lie in [0, 1], got {values.tolist()}")
    return Aopc(
        aopc_comprehensiveness=float(np.mean(p_full - without)),
        aopc_sufficiency=float(np.mean(p_full - only)),
    )


# --- classification --------------------------------------------------------------------------


def _check_booleans(name: str, values: Sequence[bool] | np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only True/False (or 1/0)")
    return array.astype(bool)


def _ratio(numerator: int, denominator: int) -> float:
    """A ratio that is 0.0 rather than NaN when undefined, so table means stay numbers."""
    return numerator / denominator if denominator else 0.0


def classification(
    labels: Sequence[bool] | np.ndarray, preds: Sequence[bool] | np.ndarray
) -> Classification:
    """Accuracy, precision, recall and F1 for "needs edit" (True) against the gold labels."""
    gold = _check_booleans("labels", labels)
    pred = _check_booleans("preds", preds)
    if len(gold) != len(pred):
        raise ValueError(f"labels ({len(gold)}) and preds ({len(pred)}) differ in length")
    if len(gold) == 0:
        raise ValueError("labels and preds are empty; nothing to score")
    tp = int((gold & pred).sum())
    fp = int((~gold & pred).sum())
    fn = int((gold & ~pred).sum())
    correct = int((gold == pred).sum())
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)  # = harmonic mean of precision and recall
    return Classification(
        n=len(gold), accuracy=correct / len(gold), precision=precision, recall=recall, f1=f1
    )


# --- confidence intervals --------------------------------------------------------------------


BOOTSTRAP_BLOCK = 1 << 22  # indices drawn at once (32 MB): bounds memory whatever n is


def bootstrap_draws(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Resample indices into ``n`` items, ``resamples`` rows in all, a block of rows at a time.

    The same seed gives the same rows as one ``(resamples, n)`` draw would (numpy fills the rows
    from one stream), without holding it: at n = 143k that matrix is over 1 GB.
    """
    rng = np.random.default_rng(seed)
    rows = max(1, BOOTSTRAP_BLOCK // max(n, 1))
    for start in range(0, resamples, rows):
        yield rng.integers(0, n, size=(min(rows, resamples - start), n))


def mean_with_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """Mean with a percentile-bootstrap CI; the same seed always gives the same interval.

    Booleans count as 0/1, so rates (e.g. top3) get intervals the same way as scores.
    An empty input gives NaN (nothing to estimate) rather than an error, so tables can show gaps.
    Memory is bounded by ``bootstrap_draws``' blocks; the result depends only on the seed.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("values contain NaN or infinity")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    n = len(array)
    if n == 0:
        return Estimate(n=0, mean=math.nan, low=math.nan, high=math.nan)
    mean = float(array.mean())
    if n == 1:
        return Estimate(n=1, mean=mean, low=mean, high=mean)
    resampled_means = np.concatenate(
        [array[draws].mean(axis=1) for draws in bootstrap_draws(n, resamples, seed)]
    )
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(resampled_means, [tail, 1.0 - tail])
    return Estimate(n=n, mean=mean, low=float(low), high=float(high))


# --- comparisons on the same examples ----------------------------------------------------------


def _paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> np.ndarray:
    first, second = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if first.ndim != 1 or first.shape != second.shape:
        raise ValueError(
            f"a and b must be one value per example for the same examples, got shapes "
            f"{first.shape} and {second.shape}"
        )
    return first - second


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """Mean of a - b over the same examples (two methods, layers or models), with a
    percentile-bootstrap CI that resamples examples, each pair kept together.

    Pairing is the point: two methods' intervals may overlap while every resample says one is
    better, because both are hard or easy on the same sentences. Booleans count as 0/1.
    """
    return mean_with_ci(_paired(a, b), resamples=resamples, seed=seed, level=level)


def mcnemar(a: Sequence[bool] | np.ndarray, b: Sequence[bool] | np.ndarray) -> float:
    """Exact two-sided McNemar p-value for two yes/no outcomes on the same examples (e.g. top-3
    of two methods): only the examples where they disagree carry information."""
    first, second = _check_booleans("a", a), _check_booleans("b", b)
    if first.shape != second.shape:
        raise ValueError(f"a ({len(first)}) and b ({len(second)}) differ in length")
    return mcnemar_p(int((first & ~second).sum()), int((~first & second).sum()))
