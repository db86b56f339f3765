"""Length buckets: the batches without keys are the ones training always had; pairs stay together."""

from __future__ import annotations

import random

import pytest

from engine.batching import batch_count, bucketed
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
