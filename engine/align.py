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
        # [CLS], [SEP] and padding have empty offsets; placeholders like _MATH_ are added special
        # tokens with real offsets, so they map to their word like any other token.
        word_of_token = [
            word_of_offset(starts[i], ends[i], start) if end > start else NO_WORD
            for start, end in batch["offset_mapping"][i]
        ]
        seen = max(word_of_token, default=NO_WORD) + 1
        truncated = bool(batch.encodings[i].overflowing) if batch.encodings else False
        encoded.append(Encoded(list(ids), word_of_token, seen, truncated or seen < len(starts[i])))
    return encoded
