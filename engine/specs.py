"""What a job is asked to do: the specs every entry point (CLI, TUI, study) builds.

Torch-free and import-cheap on purpose: ``editlens --help`` and the TUI's forms read their
defaults from here, so each default is declared once, in the dataclass field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.models import DEFAULT_MODEL
from engine.vocabulary import METHOD_NAMES


@dataclass(frozen=True)
class TrainSpec:
    """What to fine-tune on what, and how; equal specs give equal runs (same id, same losses)."""

    corpus: str
    model: str = DEFAULT_MODEL
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 16
    max_length: int = 128
    seed: int = 13
    patience: int = 2  # epochs without a lower dev loss before stopping (0 behaves as 1)
    warmup: float = 0.1  # share of steps with linear warm-up, then linear decay to 0
    out: Path | None = None  # checkpoint directory; default: <db dir>/checkpoints/<run id>
    limit: int | None = None  # cap on training examples (and on dev examples), first by id
    pad_to_max: bool = False  # the benchmark's baseline: pad every batch to max_length


@dataclass(frozen=True)
class EvalSpec:
    """Everything that determines an evaluation's results (and so its run id)."""

    corpus: str
    model: str = DEFAULT_MODEL
    split: str = "test"  # train | dev | test | all
    methods: tuple[str, ...] = METHOD_NAMES
    layers: tuple[int, ...] = ()  # layers of the layered methods to keep; empty: every layer
    limit: int | None = None
    batch_size: int = 32
    max_length: int = 128
    seed: int = 0
    ig_steps: int = 16
    faithfulness: bool = True
    label: str | None = None  # the name runs are shown under; default from the model


def default(spec: type, name: str) -> Any:
    """The declared default of one field of a spec dataclass (a ``KeyError`` if it has none)."""
    for item in fields(spec):
        if item.name == name:
            return item.default
    raise KeyError(f"{spec.__name__} has no field {name!r}")
