"""Known answers for words, character spans and splits: the cases that broke the reference code."""

from __future__ import annotations

from collections import Counter

import pytest

from engine.corpus import SPLITS, assign_split, locate_words, tokenize_words


def words_of(text: str) -> list[str]:
    return tokenize_words(text)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We use i.e. this one.", ["We", "use", "i.e.", "this", "one", "."]),
        ("Some, e.g. cats, purr.", ["Some", ",", "e.g.", "cats", ",", "purr", "."]),
        ("See Eq. 3 below.", ["See", "Eq.", "3", "below", "."]),
        (
            "As Smith et al. showed, it holds.",
            ["As", "Smith", "et", "al.", "showed", ",", "it", "holds", "."],
        ),
        ("It grows by 1.5 units.", ["It", "grows", "by", "1.5", "units", "."]),
        ("We ran 1,000 trials.", ["We", "ran", "1,000", "trials", "."]),
        ("It's true.", ["It", "'s", "true", "."]),
        ("We don't know.", ["We", "do", "n't", "know", "."]),
        ('He said "yes" here.', ["He", "said", '"', "yes", '"', "here", "."]),
        ("Take the _MATH_-th root.", ["Take", "the", "_MATH_-th", "root", "."]),
        ("A full-order observer.", ["A", "full-order", "observer", "."]),
    ],
)
def test_hard_cases_tokenize_as_the_released_words_do(text: str, expected: list[str]) -> None:
    assert words_of(text) == expected


def test_placeholders_stay_single_words() -> None:
    assert words_of("Let _MATH_ be _MATHDISP_ as in _CITE_ and _REF_.") == [
        "Let", "_MATH_", "be", "_MATHDISP_", "as", "in", "_CITE_", "and", "_REF_", ".",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "last_two"),
    [
        ("It is shown in Eq.", ["Eq", "."]),
        ("This was done by Smith et al.", ["al", "."]),
        ("The value is 3.", ["3", "."]),
        ("The value is 1.5.", ["1.5", "."]),
        ("It works. ", ["works", "."]),
    ],
)
def test_the_final_period_of_a_sentence_is_its_own_word(text: str, last_two: list[str]) -> None:
    assert words_of(text)[-2:] == last_two


def test_word_spans_point_at_the_words_in_the_text() -> None:
    text = "It's  the _MATH_-th value, i.e. 1.5."
    words, starts, ends = tokenize_words(text)
    assert [text[s:e] for s, e in zip(starts, ends, strict=True)] == words
    assert words == ["It", "'s", "the", "_MATH_-th", "value", ",", "i.e.", "1.5", "."]
    assert starts[:3] == [0, 2, 6]


def test_an_empty_sentence_has_no_words() -> None:
    assert tokenize_words("") == ([], [], [])
    assert tokenize_words("   ") == ([], [], [])


def test_locate_words_finds_repeated_words_in_order() -> None:
    text = "the cat and the dog"
    assert locate_words(text, ["the", "cat", "and", "the", "dog"]) == (
        [0, 4, 8, 12, 16],
        [3, 7, 11, 15, 19],
    )


def test_locate_words_skips_extra_spacing_between_words() -> None:
    assert locate_words("a  ,  b ", ["a", ",", "b"]) == ([0, 3, 6], [1, 4, 7])


def test_locate_words_gives_none_when_a_word_is_missing() -> None:
    assert locate_words("the cat", ["the", "dog"]) is None


def test_locate_words_gives_none_when_words_are_out_of_order() -> None:
    assert locate_words("the cat", ["cat", "the"]) is None


def test_assign_split_is_deterministic_and_known() -> None:
    assert [assign_split(key) for key in ("5.1", "5.2", "29865.6")] == ["train"] * 3
    assert assign_split("5.1") == assign_split("5.1")
    assert all(assign_split(f"{i}.0") in SPLITS for i in range(100))


def test_assign_split_is_roughly_80_10_10_over_ten_thousand_ids() -> None:
    counts = Counter(assign_split(f"{i}.{i % 7}") for i in range(10_000))
    assert set(counts) == set(SPLITS)
    assert abs(counts["train"] - 8_000) < 200
    assert abs(counts["dev"] - 1_000) < 150
    assert abs(counts["test"] - 1_000) < 150


def test_assign_split_shares_can_be_changed() -> None:
    counts = Counter(assign_split(str(i), dev_share=0.0, test_share=0.5) for i in range(2_000))
    assert counts["dev"] == 0
    assert abs(counts["test"] - 1_000) < 120
