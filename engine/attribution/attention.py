"""Attention methods: read the [CLS] row of the forward pass's attention weights, per layer."""

from __future__ import annotations

import torch

from engine.attribution.base import AttentionAttribution, Inputs, cls_rows
from engine.errors import EditlensError


class Attention(AttentionAttribution):
    """[CLS] row of layer l, mean over heads (the study's heads-summed ranking)."""

    name = "attention"

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        return cls_rows(inputs.attentions).mean(dim=2)  # (batch, layers, tokens)


class AttentionMax(AttentionAttribution):
    """[CLS] row of layer l, max over heads: one sharp head is enough."""

    name = "attention_max"

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        return cls_rows(inputs.attentions).amax(dim=2)  # (batch, layers, tokens)


class Rollout(AttentionAttribution):
    """Attention rollout (Abnar & Zuidema 2020): A^ = 0.5 mean_h A + 0.5 I, R = A^_l ... A^_1."""

    name = "rollout"

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        first = inputs.attentions[0]
        eye = torch.eye(first.shape[-1], dtype=first.dtype, device=first.device)
        eye = eye.expand(first.shape[0], -1, -1)
        rolled = eye
        rows = []
        for layer in inputs.attentions:
            mixed = 0.5 * layer.mean(dim=1) + 0.5 * eye  # (batch, tokens, tokens)
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
            rolled = mixed @ rolled
            rows.append(rolled[:, 0, :])  # (batch, tokens)
        return torch.stack(rows, dim=1)  # (batch, layers, tokens)


class AttentionNorm(AttentionAttribution):
    """||sum_h alpha_h[CLS, j] f_h(x_j)|| per layer (Kobayashi et al. 2020, "Attention is Not
    Only a Weight"), with f_h(x) = (x W_V^h + b_V^h) W_O^h the value vector of head h as the
    output projection maps it: what token j actually adds to [CLS], not just its weight.

    Reads BERT-style layers (``encoder.layer[i].attention.self.value`` and
    ``.attention.output.dense``: BERT, RoBERTa, SciBERT, MiniLM).
    """

    name = "attention_norm"
    needs_hidden_states = True

    def attribute(self, inputs: Inputs) -> torch.Tensor:
        try:
            blocks = [layer.attention for layer in inputs.model.base_model.encoder.layer]
            projections = [(b.self.value, b.output.dense) for b in blocks]
        except AttributeError:
            raise EditlensError(
                f"{self.name} needs BERT-style attention layers (encoder.layer[i].attention."
                "self.value); evaluate this model without it"
            ) from None
        rows = []
        inputs_of_layers = inputs.hidden_states[: len(inputs.attentions)]  # the last is output
        layers = zip(inputs.attentions, inputs_of_layers, projections, strict=True)
        for attention, hidden, (value, output) in layers:
            batch, heads, tokens, _ = attention.shape
            values = value(hidden).view(batch, tokens, heads, -1)  # (batch, tokens, heads, dim)
            weights = attention[:, :, 0, :].transpose(1, 2).unsqueeze(-1)  # (b, tokens, heads, 1)
            moved = (weights * values).flatten(2) @ output.weight.T  # (batch, tokens, hidden)
            rows.append(moved.norm(dim=-1))  # (batch, tokens)
        return torch.stack(rows, dim=1)  # (batch, layers, tokens)
