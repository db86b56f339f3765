"""The analysis screens' reads on a million-example store (compare A/B, charts, run detail,
heads, pins), each beside the examples list's filter change measured in the same run.

    python benchmarks/bench_analysis.py [--db PATH]

Uses the store benchmarks/bench_tui.py builds (run that first). Every figure is the median of
five runs after one warm-up; the screens run these reads in worker threads.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_tui import timed
from tui_fixture import LARGE_RUN

from engine import figures
from engine.figures import Side
from engine.store import Store, StoreReader
from tui.state import PAGE, Filters


def warm_timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """``bench_tui.timed`` after one untimed call, so the first query's cold cache is not counted."""
    fn()
    return timed(fn, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/editlens-bench/large.duckdb"))
    args = parser.parse_args()
    if not args.db.exists():
        sys.exit(f"{args.db}: no store; build it with benchmarks/bench_tui.py first")
    Store(args.db).close()  # upgrades a store an older editlens wrote
    store = StoreReader(args.db)
    run = LARGE_RUN
    a, b = Side(run, "attention", 6), Side(run, "attention", 5)
    ids = [f"b{i:07d}" for i in range(0, 20_000, 1_000)]
    filters = Filters(run=run, method="attention", layer=6, outcome="yes")
    reads: dict[str, Callable[[], object]] = {
        "baseline: list filter change": lambda: (
            store.bucket_counts(filters),
            store.example_page(filters, limit=PAGE),
        ),
        "compare: 2x2 + McNemar": lambda: figures.compare(store, a, b, "top3"),
        "compare: a cell's first page": lambda: store.compare_page(a, b, "top3", (True, False)),
        "charts: by layer (10 bars)": lambda: figures.layer_bars(store, run, "top3", "all"),
        "charts: by edit kind": lambda: figures.group_bars(
            store, run, "attention", 6, "top3", "all", "kind"
        ),
        "run detail": lambda: figures.run_facts(store, run),
        "heads of one example": lambda: store.head_rows(run, "b0000123"),
        "20 pinned examples": lambda: store.examples_by_id(run, "attention", 6, ids),
    }
    n = store.run_populations(run)["evaluated"]
    print(f"store: {args.db} ({n:,} examples in run {run})")
    for name, read in reads.items():
        print(f"  {name:<32} {warm_timed(read) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
