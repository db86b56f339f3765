"""Perturbation methods: forward passes on edited copies of each sentence."""

from __future__ import annotations

import torch

from engine.attribution.base import Inputs, PerturbationAttribution
from engine.batching import pass_tokens
from engine.faithfulness import class_probabilities


class Occlusion(PerturbationAttribution):
    """Leave-one-word-out: p(target | x) - p(target | x without word w), signed, per word.

    captum's FeatureAblation with the words as the feature mask, except that a word's subwords
    are removed rather than replaced by a baseline token (ERASER's erasure; on a minimal pair
    the edited twin is exactly the sentence without its deleted words). Every word of every
    sentence in the batch is one edited copy; the copies and the unedited sentences run
    together, as many per pass as the device's token budget holds (``batching.pass_tokens``,
    or ``tokens_per_pass``).
    """

    name = "occlusion"

    def __init__(self, tokens_per_pass: int | None = None) -> None:
        self.tokens_per_pass = tokens_per_pass

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        batch = inputs.batch
        sequences, classes, owners = [], [], []  # owners: (row, word), word -1 for the original
        for row in range(len(batch.rows)):
            length = int(batch.attention_mask[row].sum())
            ids = batch.input_ids[row, :length].tolist()
            word_of_token = batch.word_of_token[row, :length].tolist()
            target = int(inputs.target[row])
            for word in range(-1, max(word_of_token) + 1):
                sequences.append([t for t, w in zip(ids, word_of_token, strict=True) if w != word])
                classes.append(target)
                owners.append((row, word))
        pad_id = inputs.model.config.pad_token_id
        tokens = self.tokens_per_pass or pass_tokens(inputs.model, backward=False)
        p = class_probabilities(inputs.model, sequences, classes, pad_id, tokens)
        full = {row: p[i] for i, (row, word) in enumerate(owners) if word < 0}
        scores = torch.zeros(len(batch.rows), 1, batch.words, device=batch.input_ids.device)
        for i, (row, word) in enumerate(owners):
            if word >= 0:
                scores[row, 0, word] = float(full[row] - p[i])
        return scores
