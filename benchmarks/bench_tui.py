"""TUI speed on a million-example store: filter → first page + counts, cold start, next example,
and the same figures again with two TUI processes open while a third publishes runs.

    python benchmarks/bench_tui.py [--db PATH] [--examples N] [--publish-examples N]
                                   [--publishes N] [--no-sharing]

Builds the store with tests/tui_fixture.build_large the first time (about two minutes for 1M,
~1 GB) and reuses it afterwards (upgrading it once if an older editlens wrote it). Prints each
figure next to its target.

The sharing scenario (skip it with --no-sharing) starts two real TUIs, headless, on the
examples list (benchmarks/bench_tui_peers.py: each polls the store as every open TUI does and
changes a filter every second), then a publisher process that merges a staged run of
--publish-examples examples into the store --publishes times. Meanwhile this process changes
filters and steps through examples as before; it prints those latencies beside the idle ones
measured above, the publisher's time per publish and its wait to open the store beside an idle
publish's, and whether the targets still hold. Every child is stopped on exit and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyarrow as pa
from tui_fixture import LARGE_RUN, _large_chunk, _run, build_large

from engine.store import Store, StoreReader
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
FILTER_TARGET, STEP_TARGET = 0.100, 0.050  # seconds, medians
PUBLISHED_RUN = "bench-publish"
PEERS = Path(__file__).with_name("bench_tui_peers.py")
TUI_PAUSE = 1.0  # seconds between the filter keys each TUI process presses
USER_PAUSE = 0.1  # seconds between this process's reads while the others run


def samples(fn: Callable[[], object], repeat: int) -> list[float]:
    """The wall time of each of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    return statistics.median(samples(fn, repeat))


def p95(times: list[float]) -> float:
    return float(np.percentile(times, 95))


def filter_change(store: Any, filters: Filters) -> None:
    """What the examples screen does on a filter change: counts and the first page."""
    store.bucket_counts(filters)
    store.example_page(filters, limit=PAGE)


def next_example(store: Any, example_id: str) -> None:
    """What the example screen reads on `n`: the example, and it under every run."""
    store.example_detail(LARGE_RUN, example_id)
    store.example_across_runs("big", example_id, "attention", 6)


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


def base_filters() -> Filters:
    return Filters(run=LARGE_RUN, method="attention", layer=6)


# -- sharing: two TUI processes and a publisher --------------------------------------------------


def stage_run(workdir: Path, examples: int) -> Path:
    """A staged run of ``examples`` examples, on a corpus of its own so that publishing it does
    not change the next-example figure of later benchmark runs."""
    staging = workdir / "template.duckdb"
    with Store(staging) as store:
        _, tables = _large_chunk(np.random.default_rng(5), 0, examples)
        for name, table in tables.items():
            run = pa.array([PUBLISHED_RUN] * table.num_rows)
            tables[name] = table.set_column(table.schema.get_field_index("run"), "run", run)
        store.write_chunk(tables)
        store.record_run(_run(PUBLISHED_RUN, "minilm:publish", "publish", {"f1": 0.5}, 1))
    return staging


def peer(stack: ExitStack, *args: str, grace: float) -> subprocess.Popen[str]:
    """A bench_tui_peers.py process, stopped on leaving ``stack``: its stdin is closed (which
    tells it to finish), and it is killed if it takes longer than ``grace`` seconds."""
    process = subprocess.Popen(
        [sys.executable, str(PEERS), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def stop() -> None:
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    return process


def publisher(
    stack: ExitStack, db: Path, template: Path, count: int, gap: float
) -> subprocess.Popen[str]:
    return peer(
        stack,
        "publish",
        str(db),
        str(template),
        PUBLISHED_RUN,
        "--count",
        str(count),
        "--gap",
        str(gap),
        grace=120,
    )


def publish_lines(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """A publisher's figures, once it has finished on its own."""
    assert process.stdout is not None
    lines = process.stdout.read().splitlines()
    if process.wait() != 0:
        raise SystemExit(f"the publisher failed (exit {process.returncode})")
    return [json.loads(text) for text in lines]


Timing = tuple[float, float]  # (when it started, in seconds since the epoch; how long it took)


def browse_while(
    store: StoreReader, ids: list[str], running: Callable[[], bool]
) -> tuple[list[Timing], list[Timing]]:
    """A user of this process: a filter change then a next example, every ``USER_PAUSE``
    seconds, for as long as ``running()``; the time of each, waits for the store included."""
    changes = [base_filters().with_(**change) for change in FILTER_CHANGES.values()]
    filters: list[Timing] = []
    steps: list[Timing] = []

    def timing(read: Callable[[], None]) -> Timing:
        at, start = time.time(), time.perf_counter()
        with store.session():
            read()
        return at, time.perf_counter() - start

    while running():
        i = len(filters)
        filters.append(timing(partial(filter_change, store, changes[i % len(changes)])))
        steps.append(timing(partial(next_example, store, ids[i % len(ids)])))
        time.sleep(USER_PAUSE)
    return filters, steps


def during(
    timings: list[Timing], publishes: list[dict[str, Any]]
) -> tuple[list[float], list[float]]:
    """The times of the reads that overlapped a publish, and of the others."""
    spans = [(p["at"] - p["total"], p["at"]) for p in publishes]
    inside, outside = [], []
    for at, seconds in timings:
        overlaps = any(at <= end and start <= at + seconds for start, end in spans)
        (inside if overlaps else outside).append(seconds)
    return inside, outside


def line(name: str, idle: float, shared: float, target: float | None = None) -> str:
    text = f"  {name:<38} {idle * 1000:8.1f} ms {shared * 1000:8.1f} ms {shared / idle:6.2f}x"
    if target is not None:
        met = "met" if shared <= target else "NOT MET"
        text += f"   target ≤ {target * 1000:.0f} ms: {met}"
    return text


def sharing(
    db: Path,
    ids: list[str],
    idle_filters: list[float],
    idle_steps: list[float],
    examples: int,
    count: int,
) -> None:
    """Two TUI processes browse and a third publishes, while this one measures (see the top)."""
    workdir = Path(tempfile.mkdtemp(prefix="editlens-publish-", dir=db.parent))
    with ExitStack() as stack:  # on leaving, even by Ctrl-C: children stopped, then files removed
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        template = stage_run(workdir, examples)
        print(f"\nsharing: publishing {examples:,} examples twice, alone …", flush=True)
        alone = publish_lines(publisher(stack, db, template, count=2, gap=0))

        print(
            f"sharing: … then {count} times, 1 s apart, with two TUI processes open on the"
            " examples list (a filter key each per second) and this one browsing",
            flush=True,
        )
        args = ("tui", str(db), LARGE_RUN, "--pause", str(TUI_PAUSE))
        tuis = [peer(stack, *args, grace=30) for _ in range(2)]
        for tui in tuis:
            assert tui.stdout is not None
            if tui.stdout.readline().strip() != "ready":
                raise SystemExit(f"a TUI process did not start (exit {tui.wait()})")
        heard: list[str] = []
        store = StoreReader(db, notice=heard.append)
        publishing = publisher(stack, db, template, count=count, gap=1)
        filters, steps = browse_while(store, ids, lambda: publishing.poll() is None)
        store.close()
        shared = publish_lines(publishing)
        tui_figures = [json.loads(tui.communicate(timeout=30)[0].splitlines()[-1]) for tui in tuis]

    median = statistics.median
    rows: list[tuple[str, float, float, float | None]] = []
    for name, idle, timings, target in (
        ("filter change", idle_filters, filters, FILTER_TARGET),
        ("next example", idle_steps, steps, STEP_TARGET),
    ):
        times = [seconds for _, seconds in timings]
        inside, outside = during(timings, shared)
        rows += [
            (f"{name}, median", median(idle), median(times), target),
            (f"{name}, p95", p95(idle), p95(times), None),
            (f"{name}, median between publishes", median(idle), median(outside or [0.0]), None),
            (f"{name}, slowest during a publish", max(idle), max(inside or [0.0]), None),
        ]
    alone_total, shared_total = [p["total"] for p in alone], [p["total"] for p in shared]
    alone_open, shared_open = [p["open"] for p in alone], [p["open"] for p in shared]
    alone_cpu, shared_cpu = [p["cpu"] for p in alone], [p["cpu"] for p in shared]
    rows += [
        ("publish, median", median(alone_total), median(shared_total), None),
        ("publish, slowest", max(alone_total), max(shared_total), None),
        ("publish, its CPU time, median", median(alone_cpu), median(shared_cpu), None),
        ("publish: opening the store, median", median(alone_open), median(shared_open), None),
        ("publish: opening the store, slowest", max(alone_open), max(shared_open), None),
    ]
    print(f"\n  {'with two TUIs and a publisher':<38} {'idle':>11} {'shared':>11} {'ratio':>7}")
    for row in rows:
        print(line(*row))
    inside, _ = during(filters, shared)
    print(
        f"  (this process: {len(filters)} filter changes and next examples, {len(inside)} of them"
        f" during one of {len(shared)} publishes)"
    )
    if len(shared) < count:
        print(f"  the publisher finished {len(shared)} of {count} publishes")
    said = sorted({text for p in shared for text in p["heard"]})
    print(f"  the publisher said it waited: {'; '.join(said) if said else 'never'}")
    for i, figures in enumerate(tui_figures, 1):
        print(
            f"  TUI {i}: {figures['keys']} filter keys, reloaded {figures['reloads']} times by"
            f" itself, lists the run: {PUBLISHED_RUN in figures['runs']},"
            f" errors: {'; '.join(figures['errors']) or 'none'}"
        )
    if heard:
        print(f"  this process waited: {'; '.join(sorted(set(heard)))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/editlens-bench/large.duckdb"))
    parser.add_argument("--examples", type=int, default=1_000_000, help="store size, if built")
    parser.add_argument("--publish-examples", type=int, default=20_000, help="per published run")
    parser.add_argument("--publishes", type=int, default=5, help="while the TUIs are open")
    parser.add_argument("--no-sharing", action="store_true", help="skip the sharing scenario")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the children are stopped too
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
        medians, idle_filters = [], []
        for name, change in FILTER_CHANGES.items():
            filters = base.with_(**change)
            filter_change(store, filters)  # warm
            times = samples(lambda f=filters: filter_change(store, f), 5)
            idle_filters += times
            medians.append(statistics.median(times))
            print(f"  {name:<24} {medians[-1] * 1000:7.1f} ms")
        overall = statistics.median(medians)
        print(f"  {'median of the above':<24} {overall * 1000:7.1f} ms   target ≤ 100 ms")

        ids = store.example_page(base, limit=PAGE).column("id").to_pylist()
        steps = iter(range(10**9))
        idle_steps = samples(lambda: next_example(store, ids[next(steps) % len(ids)]), 20)
        step = statistics.median(idle_steps)
        print(f"\nnext example (detail + every run)  {step * 1000:7.1f} ms   target ≤ 50 ms")

    start = asyncio.run(cold_start(args.db))
    print(f"cold start to a populated runs table {start * 1000:7.0f} ms   target ≤ 2000 ms")
    if not args.no_sharing:
        sharing(args.db, ids, idle_filters, idle_steps, args.publish_examples, args.publishes)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every child process was stopped")
