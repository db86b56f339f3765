"""The baseline every table shows: a seeded uniform ranking of the words."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from engine.attribution.base import Attribution, Inputs
from engine.specs import EvalSpec


class RandomRanking(Attribution):
    """Uniform scores seeded by (seed, example id): the same whatever the batch."""

    name = "random"
    family = "baseline"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @classmethod
    def from_spec(cls, spec: EvalSpec) -> RandomRanking:
        return cls(seed=spec.seed)

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        words = inputs.batch.words
        rows = [
            np.random.default_rng(_seed_of(self.seed, example_id)).random(words)
            for example_id in inputs.example_ids
        ]
        scores = torch.tensor(
            np.stack(rows), dtype=torch.float32, device=inputs.batch.input_ids.device
        )
        return scores.unsqueeze(1)  # (batch, 1, words)


def _seed_of(seed: int, example_id: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{seed}:{example_id}".encode()).digest()[:8], "big")
