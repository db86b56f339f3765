"""What the screens share: the store handle (a reader safe across worker threads) and the filter.

The filter is the store's ``ExampleFilter`` (one frozen value, checked against the allow-lists
when made); the lists the screens offer are the store's allow-lists, named once in
``engine.store.filters`` and ``engine.vocabulary``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.store import (
    BROWSE_METRICS,
    KINDS,
    OUTCOMES,
    RATIONALE_SIZES,
    ExampleFilter,
    StoreReader,
    publish_run,
)
from engine.store import PREDICTIONS as _PREDICTIONS
from engine.store import SORTS as _SORTS
from engine.vocabulary import metric_info

__all__ = [
    "KINDS",
    "METRICS",
    "METRIC_LABELS",
    "OUTCOMES",
    "PAGE",
    "PREDICTIONS",
    "RATIONALE_SIZES",
    "SORTS",
    "Filters",
    "StoreHandle",
]

METRICS = BROWSE_METRICS
METRIC_LABELS = {m: metric_info(m).label for m in METRICS}
PREDICTIONS = tuple(_PREDICTIONS)
SORTS = tuple(_SORTS)
PAGE = 50

Filters = ExampleFilter  # the examples screen's filter, sort and page order


class StoreHandle:
    """The TUI's store: one ``StoreReader`` for every worker thread, which holds the file only
    while queries run (and never while a writer waits), and a ``publish`` that waits its turn.

    ``notice`` hears, once per wait, that the store is busy and for whom.
    """

    def __init__(self, path: Path, *, notice: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._notice = notice
        self._reader = StoreReader(path, notice=notice)

    @contextmanager
    def read(self) -> Iterator[StoreReader]:
        """The reader, holding one connection for the block's queries on this thread."""
        with self._reader.session():
            yield self._reader

    def publish(
        self, staging: Path, run_id: str, *, notice: Callable[[str], None] | None = None
    ) -> None:
        """Merge a staged run into the store (all of it or nothing), waiting while the store is
        busy (``notice``, or the handle's, hears once for whom); then delete the staging file.
        If the wait runs out, the run stays staged and the StoreError says so."""
        publish_run(self.path, staging, run_id, notice=notice or self._notice)

    def changed_token(self) -> tuple[int, ...]:
        """Differs after every commit to the store; cheap, and never opens the file."""
        return self._reader.changed_token()

    def close(self) -> None:
        self._reader.close()
