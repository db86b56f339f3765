"""Words to subword tokens by character offsets, never by matching strings."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

NO_WORD = -1  # [CLS], [SEP], padding, and anything outside every word


@dataclass(frozen=True, slots=True)
class Encoded:
    """One sentence as token ids, with the word each token belongs to."""

    input_ids: list[int]
    word_of_token: list[int]  # word index per token, NO_WORD for special tokens
    seen_words: int  # words with at least one token before the length cut
    truncated: bool  # the cut removed tokens
    offsets: tuple[tuple[int, int], ...] = ()  # character span per token, (0, 0) for specials


def word_of_offset(starts: Sequence[int], ends: Sequence[int], offset: int) -> int:
    """The word whose character span contains ``offset``, or NO_WORD."""
    index = bisect_right(starts, offset) - 1
    return index if index >= 0 and offset < ends[index] else NO_WORD


def encode(
    tokenizer: PreTrainedTokenizerFast,
    texts: Sequence[str],
    starts: Sequence[Sequence[int]],
    ends: Sequence[Sequence[int]],
    max_length: int,
) -> list[Encoded]:
    """Tokenize a batch and map every token to its word through the tokenizer's offsets."""
    batch = tokenizer(
        list(texts), truncation=True, max_length=max_length, return_offsets_mapping=True
    )
    encoded = []
    for i, ids in enumerate(batch["input_ids"]):
        ids, offsets, cut = _split_tokens_across_words(
            tokenizer, texts[i], starts[i], ends[i], list(ids), batch["offset_mapping"][i],
            max_length,
        )  # fmt: skip
        # [CLS], [SEP] and padding have empty offsets; placeholders like _MATH_ are added special
        # tokens with real offsets, so they map to their word like any other token.
        word_of_token = [
            word_of_offset(starts[i], ends[i], start) if end > start else NO_WORD
            for start, end in offsets
        ]
        seen = max(word_of_token, default=NO_WORD) + 1
        truncated = bool(batch.encodings[i].overflowing) if batch.encodings else False
        truncated = truncated or cut or seen < len(starts[i])
        encoded.append(Encoded(ids, word_of_token, seen, truncated, tuple(offsets)))
    return encoded


def _split_tokens_across_words(
    tokenizer: PreTrainedTokenizerFast,
    text: str,
    starts: Sequence[int],
    ends: Sequence[int],
    ids: list[int],
    offsets: Sequence[tuple[int, int]],
    max_length: int,
) -> tuple[list[int], list[tuple[int, int]], bool]:
    """Re-tokenize, word by word, any token that runs past the end of its word.

    The tokenizer and the word splitter disagree now and then: the released words split
    "cannot" into "can" + "not" while WordPiece keeps one token, which would leave "not" without
    a token (scored 0 by every method, yet ranked as if seen). Such a token is replaced by the
    tokens of each word's part of it, then the length cut is applied again. Returns the ids, the
    offsets and whether that second cut removed tokens.
    """
    offsets = [tuple(span) for span in offsets]
    crossing = {
        t
        for t, (start, end) in enumerate(offsets)
        if end > start
        and (word := word_of_offset(starts, ends, start)) != NO_WORD
        and end > ends[word]
    }
    if not crossing:
        return ids, offsets, False
    new_ids: list[int] = []
    new_offsets: list[tuple[int, int]] = []
    for t, (token, (start, end)) in enumerate(zip(ids, offsets, strict=True)):
        if t not in crossing:
            new_ids.append(token)
            new_offsets.append((start, end))
            continue
        first = word_of_offset(starts, ends, start)
        for word in range(first, len(starts)):
            if starts[word] >= end:
                break
            left, right = max(start, starts[word]), min(end, ends[word])
            part = tokenizer(
                text[left:right], add_special_tokens=False, return_offsets_mapping=True
            )
            new_ids += part["input_ids"]
            new_offsets += [(left + a, left + b) for a, b in part["offset_mapping"]]
    tail = len(new_ids)  # trailing special tokens ([SEP]) survive the cut
    while tail > 0 and new_offsets[tail - 1][1] <= new_offsets[tail - 1][0]:
        tail -= 1
    keep = max_length - (len(new_ids) - tail)
    if tail <= keep:
        return new_ids, new_offsets, False
    return new_ids[:keep] + new_ids[tail:], new_offsets[:keep] + new_offsets[tail:], True
