"""What the screens share: the store handle (safe across worker threads) and the filter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from engine.store import Store

METRICS = ("top3", "hit1", "exact", "jaccard50")
METRIC_LABELS = {"top3": "top-3", "hit1": "hit@1", "exact": "exact", "jaccard50": "Jaccard≥.5"}
OUTCOMES = ("any", "yes", "no", "unscorable")
PREDICTIONS = ("any", "right", "wrong", "tp", "fp", "fn", "tn")
KINDS = ("deleted", "spelling", "inserted", "mixed", "none")
RATIONALE_SIZES = {"any": None, "0": (0, 0), "1": (1, 1), "2": (2, 2), "3+": (3, 1_000_000)}
SORTS = ("id", "confidence", "prob", "jaccard", "auprc", "length")
PAGE = 50


@dataclass(frozen=True)
class Filters:
    """The examples screen's filter, sort and page: one immutable value, compared to drop stale
    query results."""

    run: str
    method: str = "attention"
    layer: int = 6
    metric: str = "top3"
    outcome: str = "any"
    prediction: str = "any"
    kind: str | None = None
    rationale: str = "any"
    search: str = ""
    sort: str = "id"
    descending: bool = False

    def query(self) -> dict[str, Any]:
        """Keyword arguments for the store's browsing methods (filters only, no sort)."""
        values = asdict(self)
        values.pop("sort")
        values.pop("descending")
        values["rationale"] = RATIONALE_SIZES[self.rationale]
        return values

    def with_(self, **changes: Any) -> Filters:
        return replace(self, **changes)


class StoreHandle:
    """The TUI's read-only store connection, shared by worker threads.

    Readers run concurrently (each store query opens its own cursor); ``publish`` waits for them,
    closes the read-only connection, merges a staged run read-write, and reopens read-only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store: Store | None = Store(path, read_only=True)
        self._readers = 0
        self._writing = False
        self._cond = threading.Condition()

    @contextmanager
    def read(self) -> Iterator[Store]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            assert self._store is not None
            yield self._store
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    def publish(self, staging: Path, run_id: str) -> None:
        """Merge a staged run into the store (all of it or nothing), then reopen read-only."""
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and self._readers == 0)
            self._writing = True
        try:
            if self._store is not None:
                self._store.close()
                self._store = None
            with Store(self.path) as store:
                store.merge_run(staging, run_id)
        finally:
            try:
                self._store = Store(self.path, read_only=True)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
