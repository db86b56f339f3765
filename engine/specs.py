"""What an evaluation is asked to do, torch-free (``engine.evaluate`` imports torch at the top).

``editlens --help`` and the TUI's forms read the defaults from here, so each default is declared
once, in the dataclass field. ``TrainSpec`` stays in ``engine.train``, which is torch-free at
import.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from engine.device import DEFAULT_DEVICE, DEFAULT_PRECISION
from engine.errors import EditlensError
from engine.models import DEFAULT_MODEL
from engine.vocabulary import AGGREGATIONS, EXPLAINED_CLASSES, METHOD_NAMES


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
    aggregation: str = "sum"  # a word's score from its subwords': sum | mean | max
    explain: str = "edit"  # the class gradient and perturbation methods explain: edit | pred
    device: str = DEFAULT_DEVICE  # auto | cpu | cuda | cuda:N | mps; not part of the run id
    precision: str = DEFAULT_PRECISION  # fp32 | bf16 | fp16 (autocast); scores stored as float32

    def check(self) -> None:
        """Refuse values no evaluation can run with, before a model or the store is opened."""
        unknown = [m for m in self.methods if m not in METHOD_NAMES]
        problems = [
            (not self.methods, f"no method given; use some of {', '.join(METHOD_NAMES)}"),
            (bool(unknown), f"unknown method {', '.join(unknown)}; use {', '.join(METHOD_NAMES)}"),
            (
                self.limit is not None and self.limit < 1,
                f"limit must be 1 or more (got {self.limit})",
            ),
            (self.batch_size < 1, f"batch size must be 1 or more (got {self.batch_size})"),
            (
                self.ig_steps < 1,
                f"integrated-gradients steps must be 1 or more (got {self.ig_steps})",
            ),
            (self.max_length < 8, f"max length must be 8 or more (got {self.max_length})"),
            (any(layer < 1 for layer in self.layers), f"layers start at 1 (got {self.layers})"),
            (
                self.aggregation not in AGGREGATIONS,
                f"unknown aggregation {self.aggregation!r}; use {', '.join(AGGREGATIONS)}",
            ),
            (
                self.explain not in EXPLAINED_CLASSES,
                f"unknown class to explain {self.explain!r}; use {', '.join(EXPLAINED_CLASSES)}",
            ),
        ]
        for bad, message in problems:
            if bad:
                raise EditlensError(message)


def default(spec: type, name: str) -> Any:
    """The declared default of one field of a spec dataclass (a ``KeyError`` if it has none)."""
    for item in fields(spec):
        if item.name == name:
            return item.default
    raise KeyError(f"{spec.__name__} has no field {name!r}")
