"""The examples list's filter as one typed, frozen value, and the allow-lists it is checked
against, declared once: the TUI builds its drop-downs from these, the store its SQL.

User input reaches SQL only as $parameters; column names and conditions come from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.corpus import EDIT_KINDS
from engine.vocabulary import BROWSE_METRICS, HEADLINE_METHOD, HEADLINE_METRIC

OUTCOMES = ("any", "yes", "no", "unscorable")  # the browse metric is true, false, or not scored
PREDICTIONS = {  # name -> condition on an outcomes row ``o``
    "any": "TRUE",
    "right": "o.pred = o.label",
    "wrong": "o.pred <> o.label",
    "tp": "o.pred AND o.label",
    "fp": "o.pred AND NOT o.label",
    "fn": "NOT o.pred AND o.label",
    "tn": "NOT o.pred AND NOT o.label",
}
SORTS = {  # name -> sort key on an outcomes row ``o``
    "id": "o.sort_key",  # natural order: 2.1 < 10.1 < 101.0 (schema.natural_key)
    "confidence": "o.confidence",
    # p(needs edit) from the slice: the predicted class's confidence, or its complement
    # (equal to predictions.prob up to float rounding; joining predictions costs ~150 ms)
    "prob": "CASE WHEN o.pred THEN o.confidence ELSE 1 - o.confidence END",
    "jaccard": "o.jaccard",
    "auprc": "o.auprc",
    "length": "o.seen_words",
}
KINDS = EDIT_KINDS
RATIONALE_SIZES: dict[str, tuple[int, int] | None] = {
    "any": None,
    "0": (0, 0),
    "1": (1, 1),
    "2": (2, 2),
    "3+": (3, 1_000_000),
}


@dataclass(frozen=True)
class ExampleFilter:
    """Which examples of one (run, method, layer) slice to show, and in what order.

    Checked against the allow-lists when made, so a bad value fails here with a ``ValueError``,
    not inside SQL. Frozen and comparable: the TUI drops a query result whose filter is stale.
    """

    run: str
    method: str = HEADLINE_METHOD
    layer: int = 6
    metric: str = HEADLINE_METRIC  # the yes/no metric that "interpretable" means
    outcome: str = "any"
    prediction: str = "any"
    kind: str | None = None
    rationale: str = "any"  # a key of RATIONALE_SIZES
    search: str = ""  # case-insensitive substring of the text or the id
    sort: str = "id"
    descending: bool = False

    def __post_init__(self) -> None:
        checks = {
            "metric": (self.metric, BROWSE_METRICS),
            "outcome": (self.outcome, OUTCOMES),
            "prediction": (self.prediction, tuple(PREDICTIONS)),
            "kind": (self.kind, (None, *KINDS)),
            "rationale": (self.rationale, tuple(RATIONALE_SIZES)),
            "sort": (self.sort, tuple(SORTS)),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                choices = ", ".join(str(a) for a in allowed)
                raise ValueError(f"unknown {name} {value!r}; use one of {choices}")

    @property
    def rationale_range(self) -> tuple[int, int] | None:
        """The rationale sizes shown, inclusive; None for any."""
        return RATIONALE_SIZES[self.rationale]

    def with_(self, **changes: Any) -> ExampleFilter:
        return replace(self, **changes)
