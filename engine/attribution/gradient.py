"""Gradient methods: gradients of the explained class's logit with respect to input embeddings."""

from __future__ import annotations

import torch

from engine.attribution.base import GradientAttribution, Inputs
from engine.batching import pass_tokens
from engine.specs import EvalSpec


def embedding_gradients(inputs: Inputs, embeddings: torch.Tensor, repeats: int = 1) -> torch.Tensor:
    """Gradient of the target class's logit w.r.t. input embeddings: (rows, tokens, dim).

    ``embeddings`` may stack ``repeats`` copies of the batch (integrated-gradient steps), so
    several steps share one forward and backward pass.
    """
    with torch.enable_grad():
        embeddings = embeddings.detach().requires_grad_(True)
        mask = inputs.batch.attention_mask.repeat(repeats, 1)
        logits = inputs.model(inputs_embeds=embeddings, attention_mask=mask).logits
        chosen = logits.gather(1, inputs.target.repeat(repeats).unsqueeze(1)).sum()
        (gradient,) = torch.autograd.grad(chosen, embeddings)
    return gradient


def input_embeddings(inputs: Inputs) -> torch.Tensor:
    """(batch, tokens, dim), detached."""
    return inputs.model.get_input_embeddings()(inputs.batch.input_ids).detach()


def input_gradients(inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient at the input and the input embeddings, computed once per batch for all methods."""
    if "input_gradients" not in inputs.cache:
        embeddings = input_embeddings(inputs)
        inputs.cache["input_gradients"] = (embedding_gradients(inputs, embeddings), embeddings)
    return inputs.cache["input_gradients"]


class Gradient(GradientAttribution):
    """Saliency: L2 norm of the gradient of the explained logit per token."""

    name = "grad"

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        gradient, _ = input_gradients(inputs)
        return gradient.norm(dim=-1).unsqueeze(1)  # (batch, 1, tokens)


class GradientTimesInput(GradientAttribution):
    """gradient . embedding per token: a first-order estimate of each token's contribution."""

    name = "grad_x_input"
    magnitude = True

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        gradient, embeddings = input_gradients(inputs)
        return (gradient * embeddings).sum(dim=-1).unsqueeze(1)  # (batch, 1, tokens)


def word_baseline(inputs: Inputs, embeddings: torch.Tensor) -> torch.Tensor:
    """Integrated gradients' x': the [PAD] embedding on word tokens, the input elsewhere, so only
    words are "removed" (special tokens and padding keep their embeddings)."""
    model = inputs.model
    pad = model.get_input_embeddings().weight[model.config.pad_token_id].detach()
    on_words = (inputs.batch.word_of_token >= 0).unsqueeze(-1)  # (batch, tokens, 1)
    return torch.where(on_words, pad.expand_as(embeddings), embeddings)


def target_logits(inputs: Inputs, embeddings: torch.Tensor, repeats: int = 1) -> torch.Tensor:
    """The explained class's logit at ``embeddings``, which may stack ``repeats`` copies of the
    batch: (rows,) in float32, without gradients."""
    with torch.no_grad():
        mask = inputs.batch.attention_mask.repeat(repeats, 1)
        logits = inputs.model(inputs_embeds=embeddings, attention_mask=mask).logits
        return logits.gather(1, inputs.target.repeat(repeats).unsqueeze(1)).squeeze(1).float()


class IntegratedGradients(GradientAttribution):
    """sum_d (x - x') * mean_alpha grad(x' + alpha (x - x')) with x' the [PAD] embedding on words.

    Special tokens keep their embeddings in the baseline, so only words are "removed". Steps are
    midpoints of ``steps`` equal intervals, stacked into passes as large as the device's token
    budget (``batching.pass_tokens``, or ``tokens_per_pass``) holds.
    """

    name = "integrated_gradients"
    magnitude = True

    def __init__(self, steps: int = 16, tokens_per_pass: int | None = None) -> None:
        if steps < 1:
            raise ValueError(f"integrated gradients needs at least one step, got {steps}")
        self.steps = steps
        self.tokens_per_pass = tokens_per_pass

    @classmethod
    def from_spec(cls, spec: EvalSpec) -> IntegratedGradients:
        return cls(steps=spec.ig_steps)

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        return self._integrate(inputs)[0].unsqueeze(1)  # (batch, 1, tokens)

    def attribute_with_checks(self, inputs: Inputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scores and ``ig_delta``, the absolute convergence delta per example (captum's
        completeness check): |sum of the signed token attributions - (F(x) - F(x'))|, F the
        explained class's logit. Exact integration gives 0; a large figure means ``steps`` is
        too small. Absolute, because captum's signed delta cancels across examples in a run's
        mean; in logit units, because a share of F(x) - F(x') explodes on sentences whose
        words barely move the logit. F(x) and F(x') cost one more forward pass (no backward),
        through the same embedding path as the gradients."""
        scores, embeddings, baseline = self._integrate(inputs)
        full, empty = target_logits(inputs, torch.cat([embeddings, baseline]), repeats=2).chunk(2)
        delta = (scores.float().sum(dim=-1) - (full - empty)).abs()
        return scores.unsqueeze(1), {"ig_delta": delta}

    def _integrate(self, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Signed token attributions (batch, tokens), the input and the baseline embeddings."""
        embeddings = input_embeddings(inputs)  # (batch, tokens, dim)
        baseline = word_baseline(inputs, embeddings)
        alphas = torch.arange(self.steps, dtype=embeddings.dtype, device=embeddings.device)
        alphas = (alphas + 0.5) / self.steps
        budget = self.tokens_per_pass or pass_tokens(inputs.model, backward=True)
        per_pass = max(1, budget // embeddings.shape[:2].numel())  # steps sharing one pass
        total = torch.zeros_like(embeddings)
        for group in alphas.split(per_pass):
            # (steps, batch, tokens, dim)
            path = baseline + group.view(-1, 1, 1, 1) * (embeddings - baseline)
            gradient = embedding_gradients(inputs, path.flatten(0, 1), repeats=len(group))
            total += gradient.view_as(path).sum(dim=0)
        attribution = (embeddings - baseline) * total / self.steps
        return attribution.sum(dim=-1), embeddings, baseline


class GradientRollout(GradientAttribution):
    """Gradient-weighted attention rollout (Chefer, Gur & Wolf 2021, eq. 5-6).

    Per layer, A_bar = mean over heads of (dy/dA * A) clipped at 0, with y the target logit; from
    R = I, R <- R + A_bar R layer by layer; the scores through layer l are R's [CLS] row.
    """

    name = "grad_rollout"

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        batch = inputs.batch
        with torch.enable_grad():
            out = inputs.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                output_attentions=True,
            )
            chosen = out.logits.gather(1, inputs.target.unsqueeze(1)).sum()
            gradients = torch.autograd.grad(chosen, out.attentions)
        tokens = batch.input_ids.shape[1]
        rolled = torch.eye(tokens, device=batch.input_ids.device)
        rolled = rolled.expand(len(batch.rows), -1, -1)  # (batch, tokens, tokens)
        rows = []
        for attention, gradient in zip(out.attentions, gradients, strict=True):
            weighted = (gradient * attention.detach()).clamp(min=0).mean(dim=1)  # (b, t, t)
            rolled = rolled + weighted @ rolled
            rows.append(rolled[:, 0, :])  # (batch, tokens)
        return torch.stack(rows, dim=1)  # (batch, layers, tokens)
