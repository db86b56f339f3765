"""TUI speed on a million-example store: filter → first page + counts, cold start, next example,
and a job publishing while two TUI processes are open.

    python benchmarks/bench_tui.py [--db PATH] [--examples N]

Builds the store with tests/tui_fixture.build_large the first time (about two minutes for 1M,
~1 GB) and reuses it afterwards (upgrading it once if an older editlens wrote it). Prints each
figure next to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyarrow as pa
from tui_fixture import LARGE_RUN, _large_chunk, _run, build_large

from engine.store import Store, StoreReader, publish_run
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
    store.bucket_counts(filters)
    store.example_page(filters, limit=PAGE)


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


PUBLISHED_RUN = "bench-publish"


def reader_loop(db: Path, seconds: float) -> None:
    """One open TUI: a filter change every 200 ms for ``seconds``; prints its query times."""
    reader = StoreReader(db, notice=None)
    changes = [
        base_filters().with_(**change)
        for name, change in FILTER_CHANGES.items()
        if not name.startswith("search")  # the one slow filter, not what a TUI does each time
    ]
    times, saw = [], False
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        with reader.session():
            filter_change(reader, changes[len(times) % len(changes)])
            saw = saw or PUBLISHED_RUN in {r.id for r in reader.runs()}
        times.append(time.perf_counter() - start)
        time.sleep(0.2)
    print(json.dumps({"median": statistics.median(times), "max": max(times), "saw": saw}))


def publish_with_readers(db: Path, examples: int = 20_000, seconds: float = 15) -> None:
    """Two TUI processes query the store while this one publishes a staged run into it."""
    workdir = Path(tempfile.mkdtemp(prefix="editlens-publish-", dir=db.parent))
    staging = workdir / "staging.duckdb"
    with Store(staging) as store:
        _, tables = _large_chunk(np.random.default_rng(5), 0, examples)
        for name, table in tables.items():
            run = pa.array([PUBLISHED_RUN] * table.num_rows)
            tables[name] = table.set_column(table.schema.get_field_index("run"), "run", run)
        store.write_chunk(tables)
        # a corpus of its own, so the run does not join the next-example figure on later runs
        store.record_run(_run(PUBLISHED_RUN, "minilm:publish", "publish", {"f1": 0.5}, 1))
    command = [sys.executable, __file__, "--db", str(db), "--reader-seconds", str(seconds)]
    readers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(seconds / 3)  # both open and querying
    start = time.perf_counter()
    publish_run(db, staging, PUBLISHED_RUN, notice=None)
    took = time.perf_counter() - start
    workdir.rmdir()
    figures = [json.loads(reader.communicate()[0]) for reader in readers]
    print(f"\npublishing {examples:,} examples with two TUI processes querying: {took:.2f} s")
    for i, f in enumerate(figures, 1):
        print(
            f"  TUI {i}: filter change median {f['median'] * 1000:.1f} ms, slowest"
            f" {f['max'] * 1000:.0f} ms (across the publish), saw the run: {f['saw']}"
        )


def base_filters() -> Filters:
    return Filters(run=LARGE_RUN, method="attention", layer=6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/editlens-bench/large.duckdb"))
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--reader-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_seconds:
        reader_loop(args.db, args.reader_seconds)
        return
    if not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {args.examples:,} examples in {args.db} …", flush=True)
        start = time.perf_counter()
        build_large(args.db, args.examples)
        print(f"built in {time.perf_counter() - start:.0f} s")
    Store(args.db).close()  # upgrades a store an older editlens wrote

    base = base_filters()
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

        ids = store.example_page(base, limit=PAGE).column("id").to_pylist()

        def next_example(state={"i": 0}) -> None:  # noqa: B006
            state["i"] = (state["i"] + 1) % len(ids)
            store.example_detail(LARGE_RUN, ids[state["i"]])
            store.example_across_runs("big", ids[state["i"]], "attention", 6)

        step = timed(next_example, repeat=20)
        print(f"\nnext example (detail + every run)  {step * 1000:7.1f} ms   target ≤ 50 ms")

    start = asyncio.run(cold_start(args.db))
    print(f"cold start to a populated runs table {start * 1000:7.0f} ms   target ≤ 2000 ms")
    publish_with_readers(args.db)


if __name__ == "__main__":
    main()
