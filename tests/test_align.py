"""Words to subwords by character offsets, with the real minilm tokenizer: known answers.

Only the tokenizer is loaded (a fraction of a second), so these run in the fast loop; the check
over the whole released file is slow.
"""

from __future__ import annotations

import pytest

from engine.align import NO_WORD, Encoded, encode, word_of_offset
from engine.corpus import PLACEHOLDERS, tokenize_words
from engine.models import DEFAULT_MODEL, load_tokenizer
from engine.study import default_data_dir


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(DEFAULT_MODEL)


def aligned(tokenizer, text: str, max_length: int = 128) -> tuple[list[str], Encoded]:
    words, starts, ends = tokenize_words(text)
    return words, encode(tokenizer, [text], [starts], [ends], max_length)[0]


def pieces_by_word(tokenizer, text: str) -> list[tuple[str, str]]:
    """(word, its tokens joined by spaces) for every word: the answer a reader can check."""
    words, encoded = aligned(tokenizer, text)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    grouped: dict[int, list[str]] = {}
    for token, word in zip(tokens, encoded.word_of_token, strict=True):
        if word != NO_WORD:
            grouped.setdefault(word, []).append(token)
    return [(words[w], " ".join(grouped.get(w, []))) for w in range(len(words))]


@pytest.mark.parametrize(
    ("text", "word", "tokens"),
    [
        ("Take the _MATH_-th root.", "_MATH_-th", "_MATH_ - th"),
        ("We use i.e. this one.", "i.e.", "i . e ."),
        ("See Eq. 3 below.", "Eq.", "e ##q ."),
        ("It grows by 1.5 units.", "1.5", "1 . 5"),
        ("It's true.", "It", "it"),
        ("It's true.", "'s", "' s"),
        ("A weigthed sum.", "weigthed", "wei ##gt ##hed"),
    ],
)
def test_hard_words_get_exactly_their_own_tokens(tokenizer, text, word, tokens) -> None:
    assert (word, tokens) in pieces_by_word(tokenizer, text)


def test_quotes_are_words_of_their_own(tokenizer) -> None:
    assert pieces_by_word(tokenizer, 'He said "yes" here.') == [
        ("He", "he"), ("said", "said"), ('"', '"'), ("yes", "yes"), ('"', '"'),
        ("here", "here"), (".", "."),
    ]  # fmt: skip


def test_placeholders_are_single_added_tokens(tokenizer) -> None:
    text = "Let _MATH_ be _MATHDISP_ as in _CITE_ and _REF_."
    by_word = dict(pieces_by_word(tokenizer, text))
    for placeholder in PLACEHOLDERS:
        assert by_word[placeholder] == placeholder
        assert placeholder in tokenizer.all_special_tokens


def test_cls_and_sep_belong_to_no_word(tokenizer) -> None:
    words, encoded = aligned(tokenizer, "A short sentence.")
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert encoded.word_of_token[0] == NO_WORD and encoded.word_of_token[-1] == NO_WORD
    assert encoded.word_of_token[1:-1] == [0, 1, 2, 3]
    assert encoded.seen_words == len(words) and not encoded.truncated


def test_a_sentence_longer_than_max_length_is_truncated_with_its_seen_words_counted(
    tokenizer,
) -> None:
    text = " ".join(["word"] * 20) + "."
    _, encoded = aligned(tokenizer, text, max_length=8)
    assert len(encoded.input_ids) == 8  # [CLS] + 6 words + [SEP]
    assert encoded.truncated
    assert encoded.seen_words == 6
    assert encoded.word_of_token == [NO_WORD, 0, 1, 2, 3, 4, 5, NO_WORD]


def test_a_cut_inside_the_last_word_still_counts_as_truncated(tokenizer) -> None:
    # "weigthed" is three pieces; max_length 5 keeps [CLS] a wei ##gt [SEP]: every word was
    # reached, but not all of its tokens.
    _, encoded = aligned(tokenizer, "a weigthed", max_length=5)
    assert encoded.word_of_token == [NO_WORD, 0, 1, 1, NO_WORD]
    assert encoded.seen_words == 2
    assert encoded.truncated


def test_a_sentence_that_fits_exactly_is_not_truncated(tokenizer) -> None:
    _, encoded = aligned(tokenizer, "one two three", max_length=5)
    assert len(encoded.input_ids) == 5
    assert not encoded.truncated and encoded.seen_words == 3


def test_a_token_maps_to_the_word_whose_span_holds_its_start() -> None:
    starts, ends = [0, 4, 10], [3, 9, 11]
    assert [word_of_offset(starts, ends, o) for o in (0, 2, 3, 4, 8, 9, 10, 11)] == [
        0, 0, NO_WORD, 1, 1, NO_WORD, 2, NO_WORD,
    ]  # fmt: skip


def test_every_word_has_a_token_even_where_the_tokenizer_merges_two_words(tokenizer) -> None:
    # NLTK (the released words) splits "cannot" into "can" + "not"; WordPiece keeps one token.
    # A word without a token would get a score of 0 from every method and be ranked as if seen.
    released_words = ["It", "can", "not", "hold", "."]
    starts, ends = [0, 3, 6, 10, 14], [2, 6, 9, 14, 15]
    encoded = encode(tokenizer, ["It cannot hold."], [starts], [ends], 128)[0]
    assert set(range(len(released_words))) <= set(encoded.word_of_token)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert list(zip(tokens, encoded.word_of_token, strict=True)) == [
        ("[CLS]", NO_WORD), ("it", 0), ("can", 1), ("not", 2), ("hold", 3), (".", 4),
        ("[SEP]", NO_WORD),
    ]  # fmt: skip
    assert encoded.seen_words == len(released_words) and not encoded.truncated


def test_a_re_split_token_still_respects_max_length(tokenizer) -> None:
    starts, ends = [0, 3, 6, 10, 14], [2, 6, 9, 14, 15]
    encoded = encode(tokenizer, ["It cannot hold."], [starts], [ends], 4)[0]
    assert encoded.word_of_token == [NO_WORD, 0, 1, NO_WORD]
    assert len(encoded.input_ids) == 4
    assert encoded.truncated and encoded.seen_words == 2


@pytest.mark.slow
def test_every_released_word_gets_a_token_inside_its_own_span(tokenizer) -> None:
    data = default_data_dir()
    released = data / "deleted.jsonl.gz" if data else None
    if released is None or not released.is_file():
        pytest.skip(
            "the released rationales (shared/aesw-rationales) are not beside the repository"
        )
    from engine.released import Skipped, read_released
    from engine.sources import open_source

    with open_source(released) as source:
        examples = list(read_released(source, "deleted", Skipped()))
    assert len(examples) > 4000
    no_token, outside = [], []
    for at in range(0, len(examples), 512):
        chunk = examples[at : at + 512]
        encoded = encode(
            tokenizer,
            [e.text for e in chunk],
            [e.starts for e in chunk],
            [e.ends for e in chunk],
            512,
        )
        for example, enc in zip(chunk, encoded, strict=True):
            if not enc.truncated and set(range(len(example.words))) - set(enc.word_of_token):
                no_token.append(example.id)
            for (start, end), word in zip(enc.offsets, enc.word_of_token, strict=True):
                if (
                    word != NO_WORD
                    and not example.starts[word] <= start < end <= example.ends[word]
                ):
                    outside.append(example.id)
                    break
    assert no_token == []
    assert outside == []
