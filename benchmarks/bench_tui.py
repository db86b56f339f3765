"""TUI speed on a million-example store: filter → first page + counts, cold start, next example.

    python benchmarks/bench_tui.py [--db PATH] [--examples N]

Builds the store with tests/tui_fixture.build_large the first time (about two minutes for 1M,
~1 GB) and reuses it afterwards. Prints each figure next to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_fixture import LARGE_RUN, build_large

from engine.store import Store
from tui.state import PAGE, Filters

FILTER_CHANGES = {
    "outcome=interpretable": {"outcome": "yes"},
    "outcome=not": {"outcome": "no"},
    "outcome=unscorable": {"outcome": "unscorable"},
    "prediction=wrong": {"prediction": "wrong"},
    "prediction=FP": {"prediction": "fp"},
    "kind=deleted": {"kind": "deleted"},
    "rationale size=2": {"rationale": "2"},
    "metric=hit@1": {"metric": "hit1"},
    "layer=3": {"layer": 3},
    "sort=confidence": {"sort": "confidence", "descending": True},
    "search 'theorem'": {"search": "theorem"},
}


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def filter_change(store: Store, filters: Filters) -> None:
    """What the examples screen does on a filter change: counts and the first page."""
    store.bucket_counts(**filters.query())
    store.example_page(
        **filters.query(), sort=filters.sort, descending=filters.descending, limit=PAGE
    )


async def cold_start(db: Path) -> float:
    from textual.widgets import DataTable

    from tui.app import EditlensApp

    start = time.perf_counter()
    app = EditlensApp(db)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        while table.row_count == 0:
            await pilot.pause(0.005)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/editlens-bench/large.duckdb"))
    parser.add_argument("--examples", type=int, default=1_000_000)
    args = parser.parse_args()
    if not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {args.examples:,} examples in {args.db} …", flush=True)
        start = time.perf_counter()
        build_large(args.db, args.examples)
        print(f"built in {time.perf_counter() - start:.0f} s")

    base = Filters(run=LARGE_RUN, method="attention", layer=6)
    with Store(args.db, read_only=True) as store:
        n = store.run_overview().column("n")[0].as_py()
        print(f"store: {args.db} ({n:,} examples in run {LARGE_RUN})\n")
        print("changing a filter → first page + bucket counts (target ≤ 100 ms median)")
        medians = []
        for name, change in FILTER_CHANGES.items():
            filters = base.with_(**change)
            filter_change(store, filters)  # warm
            median = timed(lambda f=filters: filter_change(store, f))
            medians.append(median)
            print(f"  {name:<24} {median * 1000:7.1f} ms")
        overall = statistics.median(medians)
        print(f"  {'median of the above':<24} {overall * 1000:7.1f} ms   target ≤ 100 ms")

        ids = store.example_page(**base.query(), limit=PAGE).column("id").to_pylist()

        def next_example(state={"i": 0}) -> None:  # noqa: B006
            state["i"] = (state["i"] + 1) % len(ids)
            store.example_detail(LARGE_RUN, ids[state["i"]])
            store.example_across_runs("big", ids[state["i"]], "attention", 6)

        step = timed(next_example, repeat=20)
        print(f"\nnext example (detail + every run)  {step * 1000:7.1f} ms   target ≤ 50 ms")

    start = asyncio.run(cold_start(args.db))
    print(f"cold start to a populated runs table {start * 1000:7.0f} ms   target ≤ 2000 ms")


if __name__ == "__main__":
    main()
