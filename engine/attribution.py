"""Rationale methods: one small interface, a registry, word scores out.

Every method turns one batch into word scores of shape (batch, layers, words): ``layers`` is the
model's depth for layered methods (attention at layer l, rollout through layer l) and 1 for the
rest (stored as layer 0). Token scores are summed into words through the offset alignment;
[CLS], [SEP] and padding belong to no word, so they never enter a ranking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from engine.batching import Batch


@dataclass
class Context:
    """What a method may look at: the model, the batch, and the forward pass already made."""

    model: torch.nn.Module
    batch: Batch
    example_ids: Sequence[str]
    attentions: tuple[torch.Tensor, ...] | None  # per layer (batch, heads, tokens, tokens)
    predicted: torch.Tensor  # (batch,) predicted class
    to_words: torch.Tensor  # (batch, tokens, words) one-hot token -> word
    seed: int = 0
    ig_steps: int = 16
    cache: dict[str, Any] = field(default_factory=dict)  # work shared by methods within a batch


IG_ROWS_PER_PASS = 128  # integrated-gradient steps are stacked up to this many rows per pass


class Method(Protocol):
    name: str
    layered: bool
    needs_attentions: bool
    needs_gradients: bool

    def scores(self, ctx: Context) -> torch.Tensor:
        """Word scores, (batch, layers or 1, words)."""
        ...


def token_to_word_matrix(word_of_token: torch.Tensor, words: int) -> torch.Tensor:
    """One-hot (batch, tokens, words); rows of tokens outside every word are all zero."""
    inside = word_of_token >= 0  # (batch, tokens)
    matrix = torch.zeros((*word_of_token.shape, words), dtype=torch.float32)
    matrix.scatter_(2, word_of_token.clamp(min=0).unsqueeze(-1), inside.unsqueeze(-1).float())
    return matrix


def cls_rows(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """The [CLS] row of every layer and head: (batch, layers, heads, tokens)."""
    return torch.stack([layer[:, :, 0, :] for layer in attentions], dim=1)


class Attention:
    """[CLS] row of layer l, mean over heads (the study's heads-summed ranking)."""

    name: ClassVar[str] = "attention"
    layered = True
    needs_attentions = True
    needs_gradients = False

    def scores(self, ctx: Context) -> torch.Tensor:
        return cls_rows(ctx.attentions).mean(dim=2) @ ctx.to_words  # (batch, layers, words)


class AttentionMax:
    """[CLS] row of layer l, max over heads: one sharp head is enough."""

    name: ClassVar[str] = "attention_max"
    layered = True
    needs_attentions = True
    needs_gradients = False

    def scores(self, ctx: Context) -> torch.Tensor:
        return cls_rows(ctx.attentions).amax(dim=2) @ ctx.to_words


class Rollout:
    """Attention rollout (Abnar & Zuidema 2020): A^ = 0.5 mean_h A + 0.5 I, R = A^_l ... A^_1."""

    name: ClassVar[str] = "rollout"
    layered = True
    needs_attentions = True
    needs_gradients = False

    def scores(self, ctx: Context) -> torch.Tensor:
        first = ctx.attentions[0]
        eye = torch.eye(first.shape[-1], dtype=first.dtype).expand(first.shape[0], -1, -1)
        rolled = eye
        rows = []
        for layer in ctx.attentions:
            mixed = 0.5 * layer.mean(dim=1) + 0.5 * eye  # (batch, tokens, tokens)
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
            rolled = mixed @ rolled
            rows.append(rolled[:, 0, :])  # (batch, tokens)
        return torch.stack(rows, dim=1) @ ctx.to_words


def _embedding_gradients(ctx: Context, embeddings: torch.Tensor, repeats: int = 1) -> torch.Tensor:
    """Gradient of the predicted class' logit w.r.t. input embeddings: (rows, tokens, dim).

    ``embeddings`` may stack ``repeats`` copies of the batch (integrated-gradient steps), so
    several steps share one forward and backward pass.
    """
    with torch.enable_grad():
        embeddings = embeddings.detach().requires_grad_(True)
        mask = ctx.batch.attention_mask.repeat(repeats, 1)
        logits = ctx.model(inputs_embeds=embeddings, attention_mask=mask).logits
        chosen = logits.gather(1, ctx.predicted.repeat(repeats).unsqueeze(1)).sum()
        (gradient,) = torch.autograd.grad(chosen, embeddings)
    return gradient


def _input_embeddings(ctx: Context) -> torch.Tensor:
    return ctx.model.get_input_embeddings()(ctx.batch.input_ids).detach()  # (batch, tokens, dim)


def _input_gradients(ctx: Context) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient at the input and the input embeddings, computed once per batch for all methods."""
    if "input_gradients" not in ctx.cache:
        embeddings = _input_embeddings(ctx)
        ctx.cache["input_gradients"] = (_embedding_gradients(ctx, embeddings), embeddings)
    return ctx.cache["input_gradients"]


class Gradient:
    """Saliency: L2 norm of the gradient of the predicted logit per token."""

    name: ClassVar[str] = "grad"
    layered = False
    needs_attentions = False
    needs_gradients = True

    def scores(self, ctx: Context) -> torch.Tensor:
        gradient, _ = _input_gradients(ctx)
        return gradient.norm(dim=-1).unsqueeze(1) @ ctx.to_words  # (batch, 1, words)


class GradientTimesInput:
    """|gradient . embedding| per token: a first-order estimate of each token's contribution."""

    name: ClassVar[str] = "grad_x_input"
    layered = False
    needs_attentions = False
    needs_gradients = True

    def scores(self, ctx: Context) -> torch.Tensor:
        gradient, embeddings = _input_gradients(ctx)
        return (gradient * embeddings).sum(dim=-1).abs().unsqueeze(1) @ ctx.to_words


class IntegratedGradients:
    """|sum_d (x - x') * mean_alpha grad(x' + alpha (x - x'))| with x' the [PAD] embedding on words.

    Special tokens keep their embeddings in the baseline, so only words are "removed". Steps are
    midpoints of ``ig_steps`` equal intervals, run as batched forward passes.
    """

    name: ClassVar[str] = "integrated_gradients"
    layered = False
    needs_attentions = False
    needs_gradients = True

    def scores(self, ctx: Context) -> torch.Tensor:
        embeddings = _input_embeddings(ctx)  # (batch, tokens, dim)
        pad = ctx.model.get_input_embeddings().weight[ctx.model.config.pad_token_id].detach()
        on_words = (ctx.batch.word_of_token >= 0).unsqueeze(-1)  # (batch, tokens, 1)
        baseline = torch.where(on_words, pad.expand_as(embeddings), embeddings)
        alphas = (torch.arange(ctx.ig_steps, dtype=embeddings.dtype) + 0.5) / ctx.ig_steps
        per_pass = max(1, IG_ROWS_PER_PASS // embeddings.shape[0])  # steps sharing one pass
        total = torch.zeros_like(embeddings)
        for group in alphas.split(per_pass):
            path = baseline + group.view(-1, 1, 1, 1) * (
                embeddings - baseline
            )  # (steps, batch, tokens, dim)
            gradient = _embedding_gradients(ctx, path.flatten(0, 1), repeats=len(group))
            total += gradient.view_as(path).sum(dim=0)
        attribution = (embeddings - baseline) * total / ctx.ig_steps
        return attribution.sum(dim=-1).abs().unsqueeze(1) @ ctx.to_words


class RandomRanking:
    """Seeded uniform scores per example id: the baseline every table shows."""

    name: ClassVar[str] = "random"
    layered = False
    needs_attentions = False
    needs_gradients = False

    def scores(self, ctx: Context) -> torch.Tensor:
        words = ctx.to_words.shape[-1]
        rows = [
            np.random.default_rng(_seed_of(ctx.seed, example_id)).random(words)
            for example_id in ctx.example_ids
        ]
        return torch.tensor(np.stack(rows), dtype=torch.float32).unsqueeze(1)


def _seed_of(seed: int, example_id: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{seed}:{example_id}".encode()).digest()[:8], "big")


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Attention(),
        AttentionMax(),
        Rollout(),
        Gradient(),
        GradientTimesInput(),
        IntegratedGradients(),
        RandomRanking(),
    )
}
