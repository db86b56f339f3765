"""Rationale methods: one small interface, one registry, signed token scores out.

Adding a method is one class (in the module of its family) and one line in ``METHODS``, beside
its ``MethodInfo`` line in ``engine.vocabulary``; tests/test_attribution.py runs every
registered method through the shared tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from engine.attribution.attention import Attention, AttentionMax, AttentionNorm, Rollout
from engine.attribution.base import (
    AttentionAttribution,
    Attribution,
    GradientAttribution,
    Inputs,
    PerturbationAttribution,
    cls_rows,
)
from engine.attribution.baseline import RandomRanking
from engine.attribution.gradient import (
    Gradient,
    GradientRollout,
    GradientTimesInput,
    IntegratedGradients,
)
from engine.attribution.perturbation import Occlusion
from engine.attribution.words import AGGREGATIONS, to_words, token_to_word_matrix
from engine.specs import EvalSpec

# In engine.vocabulary's order (a test checks the names agree).
METHODS: dict[str, type[Attribution]] = {
    method.name: method
    for method in (
        Attention,
        AttentionMax,
        AttentionNorm,
        Rollout,
        GradientRollout,
        Gradient,
        GradientTimesInput,
        IntegratedGradients,
        Occlusion,
        RandomRanking,
    )
}


def build(names: Sequence[str], spec: EvalSpec) -> list[Attribution]:
    """The named methods with the parameters ``spec`` asks for (names already checked)."""
    return [METHODS[name].from_spec(spec) for name in names]


def word_scores(
    method: Attribution, inputs: Inputs, matrix: torch.Tensor, aggregation: str = "sum"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A method's scores mapped to words once, (batch, layers or 1, words), and its per-example
    checks, (batch,) by metric name (``Attribution.attribute_with_checks``).

    ``matrix`` is ``token_to_word_matrix`` of the batch; magnitudes are taken per token, before
    aggregation, where the method's definition ranks by them.
    """
    with torch.inference_mode(not method.needs_gradients):
        values, checks = method.attribute_with_checks(inputs)
    values = values.detach()
    if method.magnitude:
        values = values.abs()
    words = values if method.per_word else to_words(values, matrix, aggregation)
    return words, {name: check.detach() for name, check in checks.items()}


__all__ = [
    "AGGREGATIONS",
    "METHODS",
    "AttentionAttribution",
    "Attribution",
    "GradientAttribution",
    "Inputs",
    "PerturbationAttribution",
    "build",
    "cls_rows",
    "to_words",
    "token_to_word_matrix",
    "word_scores",
]
