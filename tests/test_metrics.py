"""Known-answer tests for engine.metrics: every expected number here was worked out by hand."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from engine.metrics import (
    Aopc,
    Classification,
    Estimate,
    Faithfulness,
    Plausibility,
    aopc,
    aopc_sizes,
    classification,
    faithfulness,
    mcnemar,
    mean_with_ci,
    paired_difference,
    plausibility,
    plausibility_batch,
    rank_words,
)
from engine.vocabulary import METRICS

# --- rank_words ------------------------------------------------------------------------------


def test_rank_words_orders_by_score_descending() -> None:
    assert rank_words([0.1, 0.9, 0.5]).tolist() == [1, 2, 0]


def test_rank_words_breaks_ties_by_lower_index_first() -> None:
    assert rank_words([0.2, 0.7, 0.2, 0.7, 0.2]).tolist() == [1, 3, 0, 2, 4]


def test_rank_words_puts_nan_last_even_below_negative_infinity() -> None:
    assert rank_words([math.nan, -math.inf, 1.0, math.nan, 0.0]).tolist() == [2, 4, 1, 0, 3]


def test_rank_words_rejects_a_matrix() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        rank_words([[1.0, 2.0]])


# --- plausibility: known answers -------------------------------------------------------------


def names_of(family: str) -> tuple[str, ...]:
    return tuple(m.name for m in METRICS if m.family == family)


def test_each_metric_family_of_the_vocabulary_is_one_result_dataclass_in_its_order() -> None:
    # The evaluator stores getattr(result, name) for every name of a family: the two must agree.
    assert tuple(f.name for f in dataclasses.fields(Plausibility)) == names_of("plausibility")
    # Faithfulness at k = |R| and its AOPC over several k: together, the faithfulness family.
    faithful = (*dataclasses.fields(Faithfulness), *dataclasses.fields(Aopc))
    assert tuple(f.name for f in faithful) == names_of("faithfulness")


def test_one_word_rationale_ranked_first_passes_every_metric() -> None:
    result = plausibility([2], [0.1, 0.3, 0.9, 0.2])
    assert result == Plausibility(
        exact=True, top3=True, hit1=True, jaccard=1.0, jaccard50=True, token_f1=1.0, auprc=1.0
    )


def test_one_word_rationale_ranked_second_is_top3_but_not_hit1() -> None:
    # Ranking: 0, 2, 1, 3.  The only relevant word is found at rank 2: AP = 1/2.
    result = plausibility([2], [0.9, 0.3, 0.5, 0.2])
    assert result == Plausibility(
        exact=False, top3=True, hit1=False, jaccard=0.0, jaccard50=False, token_f1=0.0, auprc=0.5
    )


def test_two_word_rationale_split_across_ranks_one_and_four() -> None:
    # Ranking: 1, 0, 2, 3, 4; R = {1, 3} sits at ranks 1 and 4.
    # P_2 = {1, 0}: |R ∩ P| = 1, |R ∪ P| = 3 -> jaccard 1/3; precision = recall = 1/2 -> F1 1/2.
    # AP = (precision@1 + precision@4) / 2 = (1/1 + 2/4) / 2 = 0.75.
    result = plausibility([1, 3], [0.8, 0.9, 0.7, 0.6, 0.1])
    assert result.exact is False
    assert result.top3 is False
    assert result.hit1 is True
    assert result.jaccard == pytest.approx(1 / 3)
    assert result.jaccard50 is False
    assert result.token_f1 == pytest.approx(0.5)
    assert result.auprc == pytest.approx(0.75)


def test_rationale_order_does_not_matter() -> None:
    scores = [0.8, 0.9, 0.7, 0.6, 0.1]
    assert plausibility([3, 1], scores) == plausibility([1, 3], scores)


def test_tied_top_score_goes_to_the_lower_index_so_hit1_fails() -> None:
    # Words 0 and 1 tie; word 0 wins rank 1, so the rationale word 1 is second.
    result = plausibility([1], [0.5, 0.5, 0.2])
    assert result.hit1 is False
    assert result.exact is False
    assert result.top3 is True
    # AP treats the tie as one threshold: at 0.5, precision 1/2 and recall 1 -> AP = 1/2.
    assert result.auprc == pytest.approx(0.5)


def test_tied_lower_index_rationale_word_wins_the_tie() -> None:
    result = plausibility([0], [0.5, 0.5, 0.2])
    assert result.hit1 is True
    assert result.exact is True
    # Same tie, same single threshold: AP is 1/2 whichever tied word is relevant.
    assert result.auprc == pytest.approx(0.5)


def test_average_precision_groups_tied_scores_into_one_threshold() -> None:
    # Scores 0.9 | 0.5 0.5 | 0.1 with R = {0, 2}.
    # Threshold 0.9: 1 of 1 relevant, recall 1/2, precision 1.
    # Threshold 0.5: 2 of 3 relevant, recall 1 (gain 1/2), precision 2/3.
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.  (Breaking the tie by index would give 1.0 instead.)
    result = plausibility([0, 2], [0.9, 0.5, 0.5, 0.1])
    assert result.auprc == pytest.approx(5 / 6)
    # The top-2 by index tie-break is {0, 1}: one of two right.
    assert result.jaccard == pytest.approx(1 / 3)


def test_average_precision_with_all_scores_tied_is_the_base_rate() -> None:
    # One threshold holding everything: recall 1, precision 2/5.
    assert plausibility([1, 4], [0.3] * 5).auprc == pytest.approx(2 / 5)


def test_top3_holds_for_a_three_word_rationale_in_any_order_within_the_top3() -> None:
    result = plausibility([0, 1, 2], [0.7, 0.9, 0.8, 0.1])
    assert result.top3 is True
    assert result.exact is True


def test_top3_fails_when_rationale_has_four_words() -> None:
    # Even a perfect ranking cannot fit four words into three slots.
    result = plausibility([0, 1, 2, 3], [0.9, 0.8, 0.7, 0.6, 0.1])
    assert result.top3 is False
    assert result.exact is True
    assert result.auprc == pytest.approx(1.0)


def test_sentence_with_two_words_treats_top3_as_all_words() -> None:
    # Rationale word ranked last of two: still inside the "top 3".
    result = plausibility([1], [0.9, 0.1])
    assert result.top3 is True
    assert result.hit1 is False
    assert result.auprc == pytest.approx(0.5)


def test_rationale_covering_every_word_is_exact() -> None:
    result = plausibility([1, 0], [0.1, 0.9])
    assert result == Plausibility(
        exact=True, top3=True, hit1=True, jaccard=1.0, jaccard50=True, token_f1=1.0, auprc=1.0
    )


def test_jaccard_of_one_half_counts_as_jaccard50() -> None:
    # R = {0, 1, 2}, P_3 = {0, 1, 3}: |∩| = 2, |∪| = 4 -> exactly 0.5.
    result = plausibility([0, 1, 2], [0.9, 0.8, 0.1, 0.7])
    assert result.jaccard == 0.5
    assert result.jaccard50 is True
    assert result.token_f1 == pytest.approx(2 / 3)


def test_plausibility_returns_plain_python_types() -> None:
    result = plausibility([1], [0.2, 0.4, np.float32(0.3)])
    for name in names_of("plausibility"):
        value = getattr(result, name)
        assert type(value) in (bool, float), (name, type(value))


def test_plausibility_accepts_numpy_integer_indices_and_arrays() -> None:
    expected = plausibility([1, 3], [0.8, 0.9, 0.7, 0.6, 0.1])
    assert plausibility(np.array([1, 3]), np.array([0.8, 0.9, 0.7, 0.6, 0.1])) == expected


# --- plausibility: validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rationale", "scores", "message"),
    [
        ([], [0.1, 0.2], "empty"),
        ([2], [0.1, 0.2], "outside"),
        ([-1], [0.1, 0.2], "outside"),
        ([0, 0], [0.1, 0.2], "repeats"),
        ([0], [0.1, math.nan], "NaN"),
        ([0], [0.1, math.inf], "NaN or infinity"),
        ([0], [], "empty"),
        ([0.0], [0.1, 0.2], "not an integer"),
        ([True], [0.1, 0.2], "bool"),
    ],
)
def test_plausibility_rejects_bad_input(rationale: list, scores: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plausibility(rationale, scores)


def test_plausibility_batch_rejects_rows_of_the_wrong_width() -> None:
    # The rationale names word 3, but the rows only have three words.
    with pytest.raises(ValueError, match="outside"):
        plausibility_batch([3], np.zeros((2, 3)))


def test_plausibility_batch_rejects_a_single_vector() -> None:
    with pytest.raises(ValueError, match=r"\(rows, words\)"):
        plausibility_batch([0], np.zeros(3))


def test_plausibility_batch_rejects_nan_in_any_row() -> None:
    rows = np.zeros((3, 4))
    rows[2, 1] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        plausibility_batch([0], rows)


# --- plausibility_batch agrees with plausibility ----------------------------------------------


def test_plausibility_batch_of_zero_rows_is_empty() -> None:
    assert plausibility_batch([0], np.zeros((0, 4))) == []


def test_plausibility_batch_matches_plausibility_row_by_row_on_random_inputs_with_ties() -> None:
    rng = np.random.default_rng(1234)
    for _ in range(200):
        n_words = int(rng.integers(1, 12))
        k = int(rng.integers(1, n_words + 1))
        rationale = rng.choice(n_words, size=k, replace=False).tolist()
        # Scores from a handful of levels so ties are common; a few rows are fully continuous.
        rows = rng.integers(0, 4, size=(6, n_words)).astype(float)
        rows[0] = rng.normal(size=n_words)
        rows[1] = 0.0
        batch = plausibility_batch(rationale, rows)
        assert batch == [plausibility(rationale, row) for row in rows]


def _reference_average_precision(relevant: list[bool], scores: list[float]) -> float:
    """sklearn's definition, written as a plain loop over descending distinct thresholds."""
    total = sum(relevant)
    ap, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = [r for r, s in zip(relevant, scores, strict=True) if s >= threshold]
        recall = sum(chosen) / total
        ap += (recall - previous_recall) * (sum(chosen) / len(chosen))
        previous_recall = recall
    return ap


def test_auprc_matches_a_plain_loop_over_thresholds_on_random_inputs_with_ties() -> None:
    rng = np.random.default_rng(99)
    for _ in range(300):
        n_words = int(rng.integers(1, 15))
        k = int(rng.integers(1, n_words + 1))
        rationale = rng.choice(n_words, size=k, replace=False).tolist()
        scores = rng.integers(0, 5, size=n_words).astype(float).tolist()
        relevant = [i in rationale for i in range(n_words)]
        expected = _reference_average_precision(relevant, scores)
        assert plausibility(rationale, scores).auprc == pytest.approx(expected, abs=1e-12)


# --- faithfulness ----------------------------------------------------------------------------


def test_faithfulness_subtracts_each_ablation_from_the_full_probability() -> None:
    result = faithfulness(0.9, 0.25, 0.75)
    assert result.comprehensiveness == pytest.approx(0.65)
    assert result.sufficiency == pytest.approx(0.15)


def test_faithfulness_can_be_negative_when_ablation_raises_the_probability() -> None:
    result = faithfulness(0.5, 0.75, 1.0)
    assert result.comprehensiveness == pytest.approx(-0.25)
    assert result.sufficiency == pytest.approx(-0.5)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_faithfulness_rejects_values_that_are_not_probabilities(bad: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        faithfulness(0.5, bad, 0.5)
    with pytest.raises(ValueError, match="p_full"):
        faithfulness(bad, 0.5, 0.5)


@pytest.mark.parametrize(
    ("rationale", "words", "sizes"),
    [
        (1, 8, (1, 2, 3)),  # 20 % of 8 words = 1.6, rounded up to 2
        (2, 30, (1, 2, 3, 6)),
        (3, 10, (1, 2, 3)),  # |R| = 3 and 3 count once
        (5, 4, (1, 3, 4)),  # no k beyond the sentence: |R| and 20 % capped at 4 words
        (1, 1, (1,)),
    ],
)
def test_aopc_averages_over_1_3_the_rationale_size_and_a_fifth_of_the_words(
    rationale, words, sizes
) -> None:
    assert aopc_sizes(rationale, words) == sizes


def test_aopc_is_the_mean_drop_over_the_sizes() -> None:
    # p_full 0.9; without the top 1, 2, 3 words: 0.5, 0.3, 0.1; with only them: 0.9, 0.8, 0.6.
    result = aopc(0.9, [0.5, 0.3, 0.1], [0.9, 0.8, 0.6])
    assert result.aopc_comprehensiveness == pytest.approx((0.4 + 0.6 + 0.8) / 3)
    assert result.aopc_sufficiency == pytest.approx((0.0 + 0.1 + 0.3) / 3)


def test_aopc_with_one_size_is_comprehensiveness_and_sufficiency_at_that_size() -> None:
    at_k = faithfulness(0.8, 0.3, 0.6)
    curve = aopc(0.8, [0.3], [0.6])
    assert (curve.aopc_comprehensiveness, curve.aopc_sufficiency) == pytest.approx(
        (at_k.comprehensiveness, at_k.sufficiency)
    )


@pytest.mark.parametrize(
    ("without", "only", "message"),
    [([0.5], [0.5, 0.4], "equally long"), ([], [], "non-empty"), ([1.5], [0.5], r"\[0, 1\]")],
)
def test_aopc_rejects_unpaired_empty_or_impossible_probabilities(without, only, message) -> None:
    with pytest.raises(ValueError, match=message):
        aopc(0.9, without, only)


def test_aopc_sizes_need_a_rationale_and_words() -> None:
    with pytest.raises(ValueError, match="words"):
        aopc_sizes(1, 0)
    with pytest.raises(ValueError, match="rationale_size"):
        aopc_sizes(0, 5)


# --- comparisons on the same examples ------------------------------------------------------------


def test_a_constant_paired_difference_has_a_zero_width_interval() -> None:
    # Method A beats B by exactly 0.25 on every example, however hard the example: the pairs'
    # differences never vary, so every resample says 0.25, while the two means' own intervals
    # (the examples vary a lot) overlap.
    b = np.array([0.0, 0.5, 0.25, 0.75, 0.1, 0.6])
    a = b + 0.25
    difference = paired_difference(a, b, resamples=500)
    assert (difference.n, difference.mean, difference.low, difference.high) == pytest.approx(
        (6, 0.25, 0.25, 0.25)
    )
    assert mean_with_ci(a, resamples=500).low < mean_with_ci(b, resamples=500).high


def test_paired_difference_of_two_examples_spans_both_differences() -> None:
    # Differences (0, 1): a resample's mean is 0, 0.5 or 1 with chances 1/4, 1/2, 1/4, so the
    # 2.5 % and 97.5 % quantiles of 10,000 resamples are 0 and 1.
    result = paired_difference([True, True], [True, False], resamples=10_000, seed=3)
    assert (result.mean, result.low, result.high) == (0.5, 0.0, 1.0)


def test_paired_difference_is_the_bootstrap_of_the_per_example_differences() -> None:
    a, b = [0.9, 0.1, 0.4, 0.7, 0.3], [0.5, 0.2, 0.4, 0.1, 0.0]
    differences = np.subtract(a, b)
    assert paired_difference(a, b, seed=4) == mean_with_ci(differences, seed=4)


def test_paired_difference_needs_the_same_examples_on_both_sides() -> None:
    with pytest.raises(ValueError, match="same examples"):
        paired_difference([1.0, 2.0], [1.0])


def test_mcnemar_counts_only_the_examples_where_the_two_disagree() -> None:
    # A right and B wrong on 3 examples, never the reverse; 4 examples where they agree.
    # Two-sided exact p = 2 * P(X <= 0), X ~ Binomial(3, 1/2) = 2 / 8.
    a = [True, True, True, True, False, True, False]
    b = [False, False, False, True, False, True, False]
    assert mcnemar(a, b) == pytest.approx(0.25)
    assert mcnemar(b, a) == pytest.approx(0.25)
    # 5 to 1: p = 2 * (1 + 6) / 64.
    assert mcnemar([1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1]) == pytest.approx(14 / 64)
    assert mcnemar([True, False], [True, False]) == 1.0


def test_mcnemar_needs_paired_yes_no_outcomes() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match="True/False"):
        mcnemar([0.5, 1.0], [1, 0])


# --- classification --------------------------------------------------------------------------


def test_classification_on_a_hand_made_confusion_matrix() -> None:
    # TP = 3, FN = 1, FP = 2, TN = 4 (n = 10).
    labels = [True] * 3 + [True] * 1 + [False] * 2 + [False] * 4
    preds = [True] * 3 + [False] * 1 + [True] * 2 + [False] * 4
    result = classification(labels, preds)
    assert result.n == 10
    assert result.accuracy == pytest.approx(7 / 10)
    assert result.precision == pytest.approx(3 / 5)
    assert result.recall == pytest.approx(3 / 4)
    # F1 = 2PR / (P + R) = 2 * 0.6 * 0.75 / 1.35 = 2/3.
    assert result.f1 == pytest.approx(2 / 3)


def test_classification_reports_zero_not_nan_when_nothing_is_predicted_positive() -> None:
    result = classification([True, False, False], [False, False, False])
    assert result == Classification(n=3, accuracy=2 / 3, precision=0.0, recall=0.0, f1=0.0)


def test_classification_reports_zero_recall_when_there_are_no_positive_labels() -> None:
    result = classification([False, False], [True, False])
    assert result == Classification(n=2, accuracy=0.5, precision=0.0, recall=0.0, f1=0.0)


def test_classification_accepts_zero_one_arrays() -> None:
    assert classification(np.array([1, 0, 1]), np.array([1, 1, 1])) == classification(
        [True, False, True], [True, True, True]
    )


@pytest.mark.parametrize(
    ("labels", "preds", "message"),
    [
        ([True, False], [True], "differ in length"),
        ([], [], "empty"),
        ([2, 0], [1, 0], "True/False"),
    ],
)
def test_classification_rejects_bad_input(labels: list, preds: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification(labels, preds)


# --- mean_with_ci ----------------------------------------------------------------------------


def test_mean_with_ci_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(5).normal(size=50).tolist()
    assert mean_with_ci(values, seed=7) == mean_with_ci(values, seed=7)
    assert mean_with_ci(values, seed=7) != mean_with_ci(values, seed=8)


def test_mean_with_ci_contains_the_mean() -> None:
    values = np.random.default_rng(6).normal(loc=3.0, size=40)
    estimate = mean_with_ci(values)
    assert estimate.n == 40
    assert estimate.mean == pytest.approx(values.mean())
    assert estimate.low < estimate.mean < estimate.high


def test_mean_with_ci_shrinks_with_more_data() -> None:
    rng = np.random.default_rng(7)
    small = mean_with_ci(rng.normal(size=20))
    large = mean_with_ci(rng.normal(size=2000))
    assert (large.high - large.low) < (small.high - small.low) / 4


def test_mean_with_ci_counts_booleans_as_zero_and_one() -> None:
    estimate = mean_with_ci([True, False, True, True])
    assert estimate.mean == 0.75
    assert 0.0 <= estimate.low <= estimate.mean <= estimate.high <= 1.0


def test_mean_with_ci_of_nothing_is_nan() -> None:
    estimate = mean_with_ci([])
    assert estimate.n == 0
    assert math.isnan(estimate.mean) and math.isnan(estimate.low) and math.isnan(estimate.high)


def test_mean_with_ci_of_one_value_is_a_point() -> None:
    assert mean_with_ci([0.4]) == Estimate(n=1, mean=0.4, low=0.4, high=0.4)


def test_mean_with_ci_of_constant_values_has_no_width() -> None:
    estimate = mean_with_ci([1.0, 1.0, 1.0])
    assert estimate == Estimate(n=3, mean=1.0, low=1.0, high=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": [1.0, math.nan]}, "NaN"),
        ({"values": [1.0], "resamples": 0}, "resamples"),
        ({"values": [1.0], "level": 1.0}, "level"),
        ({"values": [[1.0]]}, "one-dimensional"),
    ],
)
def test_mean_with_ci_rejects_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mean_with_ci(**kwargs)


def test_results_are_frozen() -> None:
    result = plausibility([0], [1.0, 0.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.top3 = False  # type: ignore[misc]
