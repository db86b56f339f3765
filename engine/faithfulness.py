"""Comprehensiveness and sufficiency (ERASER): does the model's prediction rest on its top words?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.align import Encoded
from engine.batching import by_token_budget, collate
from engine.device import model_device


def without_and_only(encoded: Encoded, words: set[int]) -> tuple[list[int], list[int]]:
    """Token ids with the given words removed, and with nothing but those words (specials kept)."""
    without, only = [], []
    for token, word in zip(encoded.input_ids, encoded.word_of_token, strict=True):
        if word < 0 or word not in words:
            without.append(token)
        if word < 0 or word in words:
            only.append(token)
    return without, only


def class_probabilities(
    model: torch.nn.Module,
    sequences: Sequence[list[int]],
    classes: Sequence[int],
    pad_id: int,
    tokens: int,
) -> np.ndarray:
    """p(classes[i] | sequences[i]) for every sequence, in length-sorted passes of at most
    ``tokens`` padded positions (``engine.batching.by_token_budget``)."""
    encoded = [Encoded(ids, [-1] * len(ids), 0, False) for ids in sequences]
    probabilities = np.zeros(len(sequences), dtype=np.float64)
    device = model_device(model)
    chosen = torch.tensor(list(classes), dtype=torch.long, device=device)
    with torch.inference_mode():
        for rows in by_token_budget([len(ids) for ids in sequences], tokens):
            batch = collate(encoded, rows, pad_id).to(device)
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
            picked = logits.softmax(dim=-1).gather(1, chosen[rows].unsqueeze(1)).squeeze(1)
            probabilities[rows] = picked.double().cpu().numpy()
    return probabilities
