"""Attention methods: read the [CLS] row of the forward pass's attention weights, per layer."""

from __future__ import annotations

import torch

from engine.attribution.base import AttentionAttribution, Inputs, cls_rows


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
        eye = torch.eye(first.shape[-1], dtype=first.dtype).expand(first.shape[0], -1, -1)
        rolled = eye
        rows = []
        for layer in inputs.attentions:
            mixed = 0.5 * layer.mean(dim=1) + 0.5 * eye  # (batch, tokens, tokens)
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
            rolled = mixed @ rolled
            rows.append(rolled[:, 0, :])  # (batch, tokens)
        return torch.stack(rows, dim=1)  # (batch, layers, tokens)
