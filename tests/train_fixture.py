"""What the training tests share: a tiny balanced corpus in a real store, and a tiny BERT."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from engine.corpus import Example, tokenize_words
from engine.store import Store, examples_to_arrow

SUBJECTS = ["The method", "Our model", "This result", "The proof", "Each sample", "The bound"]
VERBS = ["converges quickly", "holds for _MATH_", "follows from _REF_", "improves on _CITE_"]
TAILS = ["in practice.", "as expected.", "for large _MATH_.", "in all cases."]


def sentence(i: int, doubled: bool) -> Example:
    """Unedited sentences are clean; those that need an edit repeat a word ('the the')."""
    subject, verb, tail = list(itertools.product(SUBJECTS, VERBS, TAILS))[i % 96]
    words = f"{subject} {verb} {tail}".split(" ")
    if doubled:
        at = i % (len(words) - 1)
        words.insert(at, words[at])
    text = " ".join(words)
    tokens, starts, ends = tokenize_words(text)
    return Example(
        id=f"{i:04d}",
        text=text,
        words=tuple(tokens),
        starts=tuple(starts),
        ends=tuple(ends),
        label=doubled,
        rationale=(1,) if doubled else (),
        kind="deleted" if doubled else "none",
    )


def corpus(train: int = 48, dev: int = 16, *, flip_dev: bool = False) -> list[Example]:
    """Balanced train and dev splits; ``flip_dev`` swaps the dev labels so dev loss must rise."""
    examples = []
    for i in range(train + dev):
        example = sentence(i, doubled=i % 2 == 0)
        split = "train" if i < train else "dev"
        label = example.label != (flip_dev and split == "dev")
        examples.append(dataclasses.replace(example, split=split, label=label))
    return examples


def make_store(path: Path, name: str, examples: list[Example]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Store(path) as store:
        store.write_examples(name, [examples_to_arrow(name, examples)])
    return path


def tiny_model(directory: Path, *, dropout: float = 0.1) -> Path:
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, saved as safetensors: trains in
    milliseconds a step, so tests can afford several runs and processes."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from engine.models import bundled_minilm

    tokenizer = AutoTokenizer.from_pretrained(bundled_minilm(), local_files_only=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=2,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
