"""The interface every rationale method implements, and the three families it comes in.

captum's split: an attention method reads the forward pass already made, a gradient method runs
backward passes, a perturbation method runs forward passes on edited inputs. A method returns
signed scores per token, (batch, layers or 1, tokens), for the class in ``Inputs.target``; the
evaluator turns them into word scores once (``engine.attribution.words``), taking magnitudes
first where ``magnitude`` says the method's definition ranks by them. A method whose features
are words already (``per_word``) returns (batch, layers or 1, words) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from engine.batching import Batch
from engine.specs import EvalSpec
from engine.vocabulary import is_layered, is_per_word


@dataclass
class Inputs:
    """What a method may look at: the model, the batch, and the forward pass already made."""

    model: torch.nn.Module
    batch: Batch
    example_ids: Sequence[str]
    attentions: tuple[torch.Tensor, ...] | None  # per layer (batch, heads, tokens, tokens)
    target: torch.Tensor  # (batch,) the class whose score is explained
    hidden_states: tuple[torch.Tensor, ...] | None = None  # per layer's input (b, tokens, dim)
    cache: dict[str, Any] = field(default_factory=dict)  # work shared by methods within a batch


class Attribution:
    """One rationale method; its label, family and ``layered`` are declared in ``engine.vocabulary``."""

    name: ClassVar[str]
    family: ClassVar[str]  # as engine.vocabulary declares it; a test checks the two agree
    needs_attentions: ClassVar[bool] = False
    needs_gradients: ClassVar[bool] = False
    needs_hidden_states: ClassVar[bool] = False  # each layer's input, from the forward pass
    magnitude: ClassVar[bool] = False  # rank words by |token score|, not by the signed score

    @classmethod
    def from_spec(cls, spec: EvalSpec) -> Attribution:
        """The method with the parameters an evaluation asks for (none, unless overridden)."""
        return cls()

    @property
    def layered(self) -> bool:
        return is_layered(self.name)

    @property
    def per_word(self) -> bool:
        """Scores come per word, not per token: the subword aggregation does not apply."""
        return is_per_word(self.name)

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        """Signed scores, (batch, layers or 1, tokens), or words for a ``per_word`` method."""
        raise NotImplementedError

    def attribute_with_checks(self, inputs: Inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``attribute``'s scores and the checks the method makes of itself, one figure per
        example, (batch,), keyed by a metric name of ``engine.vocabulary`` (stored on the
        method's outcome rows); none unless overridden."""
        return self.attribute(inputs), {}


class AttentionAttribution(Attribution):
    """Reads the attention weights of the forward pass; no extra passes."""

    family = "attention"
    needs_attentions = True


class GradientAttribution(Attribution):
    """Gradients of the target class's logit with respect to the input embeddings."""

    family = "gradient"
    needs_gradients = True


class PerturbationAttribution(Attribution):
    """Forward passes on edited copies of the input, compared with the unedited one."""

    family = "perturbation"


def cls_rows(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """The [CLS] row of every layer and head: (batch, layers, heads, tokens)."""
    return torch.stack([layer[:, :, 0, :] for layer in attentions], dim=1)
