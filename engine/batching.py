"""Length-bucketed batches padded only to their longest member: most of the speed on CPU."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.align import NO_WORD, Encoded


@dataclass
class Batch:
    """Padded tensors for a group of sentences of similar length."""

    rows: list[int]  # positions of these sentences in the caller's list
    input_ids: torch.Tensor  # (batch, tokens)
    attention_mask: torch.Tensor  # (batch, tokens)
    word_of_token: torch.Tensor  # (batch, tokens), NO_WORD where no word
    words: int  # the widest sentence's seen words

    def to(self, device: torch.device) -> Batch:
        """The same batch with its tensors on ``device`` (itself when they are there already)."""
        return Batch(
            self.rows,
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.word_of_token.to(device),
            self.words,
        )


def bucketed(
    lengths: Sequence[int], batch_size: int, rng: random.Random | None = None
) -> list[list[int]]:
    """Indices grouped by length; with ``rng`` the batches come in shuffled order (training)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if rng is not None:  # shuffle within equal lengths too, so epochs differ
        order = sorted(order, key=lambda i: (lengths[i], rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def collate(
    encoded: Sequence[Encoded], rows: list[int], pad_id: int, pad_to: int | None = None
) -> Batch:
    """Pad the chosen rows to their longest member (or to ``pad_to``, for the baseline)."""
    width = pad_to or max(len(encoded[r].input_ids) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    word_of_token = torch.full((len(rows), width), NO_WORD, dtype=torch.long)
    for b, r in enumerate(rows):
        ids = encoded[r].input_ids
        input_ids[b, : len(ids)] = torch.tensor(ids)
        attention_mask[b, : len(ids)] = 1
        word_of_token[b, : len(ids)] = torch.tensor(encoded[r].word_of_token)
    words = max(encoded[r].seen_words for r in rows)
    return Batch(rows, input_ids, attention_mask, word_of_token, max(words, 1))
