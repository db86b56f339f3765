"""Length-bucketed batches padded only to their longest member: most of the speed on CPU."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.align import NO_WORD, Encoded
from engine.errors import EditlensError


@dataclass
class Batch:
    """Padded tensors for a group of sentences of similar length."""

    rows: list[int]  # positions of these sentences in the caller's list
    input_ids: torch.Tensor  # (batch, tokens)
    attention_mask: torch.Tensor  # (batch, tokens)
    word_of_token: torch.Tensor  # (batch, tokens), NO_WORD where no word
    words: int  # the widest sentence's seen words

    def to(self, device: torch.device) -> Batch:
        """The same batch with its tensors on ``device`` (itself when they are there already)."""
        return Batch(
            self.rows,
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.word_of_token.to(device),
            self.words,
        )


def bucketed(
    lengths: Sequence[int],
    batch_size: int,
    rng: random.Random | None = None,
    keys: Sequence[str] | None = None,
) -> list[list[int]]:
    """Indices grouped by length; with ``rng`` the batches come in shuffled order (training).

    Rows with equal ``keys`` (a sentence and its edited twin) stay in one batch, so each step's
    gradient sees the minimal pair's contrast. Groups of one size are batched among themselves,
    ``batch_size // size`` groups a batch, so the number of batches depends only on the group
    sizes (``batch_count``), never on the lengths or the shuffle: a resumed run can count the
    steps of a chunk without encoding it. Without ``keys`` every row is its own group and the
    batches are the ones this function always gave.
    """
    groups = _groups(len(lengths), keys)
    size = [max(lengths[i] for i in group) for group in groups]
    order = sorted(range(len(groups)), key=lambda g: (size[g], groups[g][0]))
    if rng is not None:  # shuffle within equal lengths too, so epochs differ
        order = sorted(order, key=lambda g: (size[g], rng.random()))
    batches: list[list[int]] = []
    for members in sorted({len(group) for group in groups}):
        same = [groups[g] for g in order if len(groups[g]) == members]
        per_batch = _per_batch(members, batch_size)
        for start in range(0, len(same), per_batch):
            batches.append([i for group in same[start : start + per_batch] for i in group])
    if rng is not None:
        rng.shuffle(batches)
    return batches


# Token positions (rows x padded length) per forward pass of the methods that stack many copies
# of a batch (integrated-gradient steps, occlusion's edited sentences) on a CPU: on 2 cores, the
# rows the fixed batch sizes gave at the study's sentence lengths (about 40 subwords).
CPU_PASS_TOKENS = 8192
GPU_MEMORY_SHARE = 0.25  # of the free GPU memory, for one such pass's activations


def by_token_budget(lengths: Sequence[int], tokens: int) -> list[list[int]]:
    """Indices in length order, cut into batches of at most ``tokens`` padded positions each
    (rows x the batch's longest length; a longer row than that is a batch of its own), so short
    sentences share a pass by the hundred and long ones do not run out of memory."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        if current and (len(current) + 1) * lengths[index] > tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pass_tokens(model: torch.nn.Module, backward: bool) -> int:
    """The token budget of one stacked pass on the model's device: ``CPU_PASS_TOKENS`` on a CPU;
    on a GPU, a share of its free memory over a token's activations (every layer's, kept for
    the backward pass when ``backward``; one layer's at a time otherwise)."""
    parameter = next(model.parameters(), None)  # none: a test's stub
    if parameter is None or parameter.device.type != "cuda":
        return CPU_PASS_TOKENS
    free, _ = torch.cuda.mem_get_info(parameter.device)
    config = model.config
    # per token and layer: ~12 hidden-sized activations (attention, feed-forward at 4x) plus the
    # heads' attention rows (up to max positions wide), in the parameters' element size
    per_layer = 12 * config.hidden_size + config.num_attention_heads * 512
    layers = config.num_hidden_layers if backward else 1
    per_token = per_layer * layers * parameter.element_size()
    return max(CPU_PASS_TOKENS, int(free * GPU_MEMORY_SHARE) // per_token)


def batch_count(keys: Sequence[str] | None, rows: int, batch_size: int) -> int:
    """How many batches ``bucketed`` makes of ``rows`` rows with these ``keys``."""
    sizes = Counter(len(group) for group in _groups(rows, keys))
    return sum(-(-n // _per_batch(members, batch_size)) for members, n in sizes.items())


def _per_batch(members: int, batch_size: int) -> int:
    if members > batch_size:
        raise EditlensError(
            f"{members} rows share a key but a batch holds {batch_size}; raise the batch size"
        )
    return batch_size // members


def _groups(rows: int, keys: Sequence[str] | None) -> list[list[int]]:
    """Rows that must share a batch, in order of their first row; one row each without keys."""
    if keys is None:
        return [[i] for i in range(rows)]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def collate(
    encoded: Sequence[Encoded], rows: list[int], pad_id: int, pad_to: int | None = None
) -> Batch:
    """Pad the chosen rows to their longest member (or to ``pad_to``, for the baseline)."""
    width = pad_to or max(len(encoded[r].input_ids) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    word_of_token = torch.full((len(rows), width), NO_WORD, dtype=torch.long)
    for b, r in enumerate(rows):
        ids = encoded[r].input_ids
        input_ids[b, : len(ids)] = torch.tensor(ids)
        attention_mask[b, : len(ids)] = 1
        word_of_token[b, : len(ids)] = torch.tensor(encoded[r].word_of_token)
    words = max(encoded[r].seen_words for r in rows)
    return Batch(rows, input_ids, attention_mask, word_of_token, max(words, 1))
