"""The figures behind the TUI's analysis screens, computed here so the TUI only draws them:
two slices compared (2x2 counts and McNemar's p), bars with bootstrap intervals (by layer, by
edit kind, by rationale size), and what a run is (populations, badges).

Intervals come from ``engine.metrics.mean_with_ci`` with the results page's resamples and seed,
so a bar and the page's table agree. A group larger than ``BOOTSTRAP_MAX_N`` gets its mean
without an interval: the bootstrap holds resamples x N indices in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.metrics import Estimate, mean_with_ci
from engine.models import REGISTRY
from engine.stats import mcnemar_p
from engine.store import Run, Store
from engine.store.analysis import Side
from engine.vocabulary import method_order

RESAMPLES = 1000  # as on the results page
BOOTSTRAP_MAX_N = 20_000  # 1000 x 20,000 indices: 160 MB at most, for a moment

__all__ = [
    "Bar",
    "Comparison",
    "RunFacts",
    "Side",
    "compare",
    "group_bars",
    "layer_bars",
    "run_facts",
]


@dataclass(frozen=True)
class Comparison:
    """Examples scorable under both A and B, counted by their yes/no outcome under each."""

    a: Side
    b: Side
    metric: str
    both: int  # yes under A and under B
    a_only: int  # yes under A, no under B
    b_only: int  # no under A, yes under B
    neither: int
    p_value: float  # McNemar's exact test: do A and B differ beyond chance?

    @property
    def n(self) -> int:
        return self.both + self.a_only + self.b_only + self.neither

    def count(self, cell: tuple[bool, bool]) -> int:
        """The count of one cell, keyed by (yes under A, yes under B)."""
        return {
            (True, True): self.both,
            (True, False): self.a_only,
            (False, True): self.b_only,
            (False, False): self.neither,
        }[cell]


def compare(store: Store, a: Side, b: Side, metric: str) -> Comparison:
    """The paired 2x2 table of ``metric`` under A and B, with McNemar's p-value."""
    cells = store.compare_cells(a, b, metric)
    a_only, b_only = cells[(True, False)], cells[(False, True)]
    return Comparison(
        a=a,
        b=b,
        metric=metric,
        both=cells[(True, True)],
        a_only=a_only,
        b_only=b_only,
        neither=cells[(False, False)],
        p_value=mcnemar_p(a_only, b_only),
    )


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a group's mean of a metric with its interval."""

    heading: str  # the set of bars it belongs to (a method, or the grouping)
    value: str | int  # what it stands for: a layer, an edit kind, a rationale size
    label: str
    estimate: Estimate


def _estimate(row: dict[str, Any]) -> Estimate:
    values = row["values"]
    if values is None or row["n"] > BOOTSTRAP_MAX_N:
        return Estimate(n=row["n"], mean=row["mean"], low=math.nan, high=math.nan)
    return mean_with_ci(values, resamples=RESAMPLES, seed=0)


def layer_bars(store: Store, run: str, metric: str, population: str) -> list[Bar]:
    """One bar per method and layer of a run (methods without layers: one bar each)."""
    rows = store.grouped_values(run, metric, population, "layer", cap=BOOTSTRAP_MAX_N)
    rows.sort(key=lambda row: (method_order(row["method"]), row["layer"]))
    return [
        Bar(
            row["method"],
            row["layer"],
            f"L{row['layer']}" if row["layer"] else "–",
            _estimate(row),
        )
        for row in rows
    ]


def group_bars(
    store: Store, run: str, method: str, layer: int, metric: str, population: str, by: str
) -> list[Bar]:
    """One bar per edit kind (``by="kind"``) or rationale size (``by="rationale"``: 1, 2, 3+)
    of one method and layer."""
    rows = store.grouped_values(
        run, metric, population, by, method=method, layer=layer, cap=BOOTSTRAP_MAX_N
    )
    bars = []
    for row in rows:
        value = row[by]
        label = f"|R|={value}" + ("+" if by == "rationale" and value >= 3 else "")
        bars.append(Bar(by, value, str(value) if by == "kind" else label, _estimate(row)))
    return bars


@dataclass(frozen=True)
class RunFacts:
    """What a run is, for its detail pane: the run row, its populations, and what to beware of."""

    run: Run
    populations: dict[str, int]
    limit: int | None  # the --limit it ran with: a partial evaluation
    methods: list[str]
    layers: list[int]  # the layers kept (empty: every layer)
    seconds: float
    head: str  # "fine-tuned", "untrained" or "unknown": the classifier head's training
    badges: list[str]


def run_facts(store: Store, run_id: str) -> RunFacts:
    """A run's configuration, duration and N per population, with badges for a partial run and
    for a classifier head that was never trained (its predictions and flagged set mean nothing)."""
    run = store.get_run(run_id)
    config = run.config
    limit = config.get("limit")
    head = _head(run)
    badges = []
    if limit is not None:
        badges.append(f"PARTIAL: --limit {limit}")
    if head == "untrained":
        badges.append("UNTRAINED HEAD: not fine-tuned")
    elif head == "unknown":
        badges.append("HEAD NOT TRAINED BY EDITLENS")
    return RunFacts(
        run=run,
        populations=store.run_populations(run_id),
        limit=limit,
        methods=sorted(config.get("methods", []), key=method_order),
        layers=list(config.get("layers", [])),
        seconds=(run.finished - run.started).total_seconds(),
        head=head,
        badges=badges,
    )


def _head(run: Run) -> str:
    """Fine-tuned when editlens trained the checkpoint (its label says ``+ft:``); untrained when
    the model is one of the registry's pretrained encoders, whose classifier head is new."""
    if run.kind == "train" or "+ft:" in run.model:
        return "fine-tuned"
    if run.config.get("model", run.model) in REGISTRY:
        return "untrained"
    return "unknown"
