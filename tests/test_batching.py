"""Length buckets: the batches without keys are the ones training always had; pairs stay together."""

from __future__ import annotations

import random

import pytest

from engine.batching import CPU_PASS_TOKENS, batch_count, bucketed, by_token_budget, pass_tokens
from engine.errors import EditlensError


def bucketed_before_keys(
    lengths: list[int], batch_size: int, rng: random.Random | None = None
) -> list[list[int]]:
    """The function as it was before keys: the known answer for the keyless case."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if rng is not None:
        order = sorted(order, key=lambda i: (lengths[i], rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def lengths_of(rows: int, seed: int) -> list[int]:
    draw = random.Random(seed)
    return [draw.randint(5, 40) for _ in range(rows)]


@pytest.mark.parametrize("batch_size", [1, 7, 16])
@pytest.mark.parametrize("seed", [None, 0, 13])
def test_without_keys_the_batches_are_the_ones_bucketed_always_gave(
    batch_size: int, seed: int | None
) -> None:
    lengths = lengths_of(101, seed or 1)
    new = bucketed(lengths, batch_size, None if seed is None else random.Random(seed))
    old = bucketed_before_keys(lengths, batch_size, None if seed is None else random.Random(seed))
    assert new == old


def pair_keys(pairs: int, singles: int) -> list[str]:
    """Rows 0..2*pairs-1 are pairs (2k and 2k+1 share key "k"), then ``singles`` lone rows."""
    return [f"p{i // 2}" for i in range(2 * pairs)] + [f"s{i}" for i in range(singles)]


@pytest.mark.parametrize("batch_size", [2, 7, 16])
@pytest.mark.parametrize("seed", [0, 13])
def test_rows_sharing_a_key_always_share_a_batch(batch_size: int, seed: int) -> None:
    keys = pair_keys(40, 9)
    batches = bucketed(lengths_of(len(keys), seed), batch_size, random.Random(seed), keys)
    assert sorted(i for batch in batches for i in batch) == list(range(len(keys)))
    assert max(len(batch) for batch in batches) <= batch_size
    batch_of = {i: b for b, batch in enumerate(batches) for i in batch}
    for pair in range(40):
        assert batch_of[2 * pair] == batch_of[2 * pair + 1]


def test_pairs_are_bucketed_by_their_longer_member() -> None:
    # pair a: 5 and 30 tokens, pair b: 6 and 7, pair c: 29 and 31; two pairs a batch.
    # By their longer member the order is b (7), a (30), c (31); by the first it would be a, b, c.
    lengths, keys = [5, 30, 6, 7, 29, 31], ["a", "a", "b", "b", "c", "c"]
    assert bucketed(lengths, 4, keys=keys) == [[2, 3, 0, 1], [4, 5]]


@pytest.mark.parametrize("batch_size", [2, 3, 7, 16])
def test_the_batch_count_is_known_without_the_lengths(batch_size: int) -> None:
    keys = pair_keys(37, 11)
    for seed in (1, 2, 3):
        batches = bucketed(lengths_of(len(keys), seed), batch_size, random.Random(seed), keys)
        assert len(batches) == batch_count(keys, len(keys), batch_size)
    assert batch_count(None, 33, 16) == 3


def test_a_group_larger_than_a_batch_is_refused() -> None:
    with pytest.raises(EditlensError, match="raise the batch size"):
        bucketed([3, 4], 1, keys=["a", "a"])


def test_a_token_budget_packs_short_rows_together_and_gives_long_ones_a_pass_of_their_own() -> None:
    lengths = [10, 40, 10, 20, 5, 100]
    # by length: 4 (5), 0 (10), 2 (10) -> 3 x 10 = 30 <= 40; 3 (20) -> 4 x 20 > 40: new pass;
    # 1 (40) -> 2 x 40 > 40: new; 5 (100) is over the budget alone: a pass of its own
    assert by_token_budget(lengths, 40) == [[4, 0, 2], [3], [1], [5]]
    batches = by_token_budget(lengths, 1000)
    assert batches == [[4, 0, 2, 3, 1, 5]]
    assert by_token_budget([], 40) == []


def test_every_row_is_in_exactly_one_pass_within_the_budget() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(500)]
    batches = by_token_budget(lengths, 512)
    assert sorted(i for batch in batches for i in batch) == list(range(500))
    assert all(len(b) * max(lengths[i] for i in b) <= 512 for b in batches)


def test_on_a_cpu_the_pass_budget_is_the_fixed_one() -> None:
    import torch

    assert pass_tokens(torch.nn.Linear(2, 2), backward=True) == CPU_PASS_TOKENS
