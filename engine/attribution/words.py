"""Token scores to word scores, in one place for every method.

A word's score is the sum, mean or max of its subwords' scores (the evaluation's
``aggregation``; sum is the study's). [CLS], [SEP], padding and anything outside every word
belong to no word, so they never reach a ranking, whatever the method put on them; a word past
an example's end (the batch is as wide as its widest sentence) has no tokens and scores 0.
"""

from __future__ import annotations

import torch

from engine.vocabulary import AGGREGATIONS


def token_to_word_matrix(word_of_token: torch.Tensor, words: int) -> torch.Tensor:
    """One-hot (batch, tokens, words); rows of tokens outside every word are all zero."""
    inside = word_of_token >= 0  # (batch, tokens)
    matrix = torch.zeros(
        (*word_of_token.shape, words), dtype=torch.float32, device=word_of_token.device
    )
    matrix.scatter_(2, word_of_token.clamp(min=0).unsqueeze(-1), inside.unsqueeze(-1).float())
    return matrix


def to_words(token_scores: torch.Tensor, matrix: torch.Tensor, aggregation: str) -> torch.Tensor:
    """(batch, layers, tokens) scores and a (batch, tokens, words) one-hot -> (batch, layers, words)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; use {', '.join(AGGREGATIONS)}")
    summed = token_scores @ matrix  # (batch, layers, words)
    if aggregation == "sum":
        return summed
    pieces = matrix.sum(dim=1).unsqueeze(1)  # (batch, 1, words): subwords per word
    if aggregation == "mean":
        return summed / pieces.clamp(min=1)
    member = matrix.bool().unsqueeze(1)  # (batch, 1, tokens, words)
    spread = token_scores.unsqueeze(-1).masked_fill(
        ~member, -torch.inf
    )  # (b, layers, tokens, words)
    return spread.amax(dim=2).masked_fill(pieces == 0, 0.0)
