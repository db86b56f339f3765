"""The plain frozen values the store hands back, and how they become rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Run:
    """A finished training or evaluation run, as the runs table holds it."""

    id: str
    kind: str
    model: str
    checkpoint: str
    corpus: str
    split: str
    layers: int
    heads: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    started: datetime
    finished: datetime


RUN_COLUMNS = (
    "id, kind, model, checkpoint, corpus, split, layers, heads, config, metrics, started, finished"
)


@dataclass(frozen=True)
class CorpusSummary:
    """What one corpus in the store holds."""

    name: str
    examples: int
    needs_edit: int
    by_split: dict[str, int]
    by_kind: dict[str, int]
    scorable: int  # needs an edit and has a non-empty rationale


def run_from_row(row: tuple[Any, ...]) -> Run:
    """A ``Run`` from a row selected as ``RUN_COLUMNS``."""
    values = list(row)
    values[8], values[9] = json.loads(values[8]), json.loads(values[9])
    return Run(*values)


def dumps(value: Any) -> str:
    """JSON for config and metric columns, stable key order so equal configs compare equal."""
    return json.dumps(value, sort_keys=True)
