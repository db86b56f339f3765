"""The other processes of bench_tui.py's sharing scenario: an open TUI, and a job publishing.

    python benchmarks/bench_tui_peers.py tui DB RUN [--pause S]
    python benchmarks/bench_tui_peers.py publish DB TEMPLATE RUN [--count N] [--gap S]

``tui`` runs the real app headless on the examples list of RUN: it polls the store as every
open TUI does and presses a filter key every ``--pause`` seconds, as a user browsing would. It
prints ``ready`` once its list is filled, and a JSON summary when its stdin closes.

``publish`` publishes a copy of the staged run TEMPLATE into DB ``--count`` times, ``--gap``
seconds apart, printing one JSON line per publish: its wall time, its CPU time, and how long
opening the store took (the wait for readers to let go, plus opening the file). It stops early
when its stdin closes.

Both end when bench_tui.py closes their stdin (also when it dies), and ignore Ctrl-C, which
the terminal sends to the whole process group: bench_tui.py stops them in order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.widgets import DataTable

from engine.store import Store, remove_store_file
from tui.app import EditlensApp
from tui.messages import OpenRun

# What a user browsing the list presses: outcome, prediction, edit kind, layer up and down,
# sort, interpretability metric (tui/screens/examples.py's bindings).
KEYS = ("o", "c", "e", "l", "h", "s", "i")


def stdin_closed() -> threading.Event:
    """Set when the parent closes our stdin (or dies): the signal to stop."""
    closed = threading.Event()

    def watch() -> None:
        sys.stdin.read()
        closed.set()

    threading.Thread(target=watch, daemon=True).start()
    return closed


class WatchedApp(EditlensApp):
    """The real app, counting its reloads (the store changed) and the errors it shows."""

    def __init__(self, db: Path) -> None:
        super().__init__(db)
        self.reloads = 0
        self.errors: list[str] = []

    def reload(self) -> None:
        self.reloads += 1
        super().reload()

    def notify(self, message: str, *, severity: str = "information", **kwargs: object) -> None:
        if severity == "error":
            self.errors.append(str(message))
        super().notify(message, severity=severity, **kwargs)  # type: ignore[arg-type]


async def open_tui(db: Path, run: str, pause: float, stop: threading.Event) -> dict[str, object]:
    app = WatchedApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        app.post_message(OpenRun(run))
        while not (
            app.screen.query("#table") and app.screen.query_one("#table", DataTable).row_count
        ):
            await pilot.pause(0.05)
        print("ready", flush=True)
        keys = 0
        while not stop.is_set():
            await pilot.press(KEYS[keys % len(KEYS)])
            keys += 1
            await pilot.pause(pause)
        return {
            "keys": keys,
            "reloads": app.reloads,
            "runs": [choice[0] for choice in app.run_choices],
            "errors": app.errors,
        }


def publish(
    db: Path, template: Path, run: str, count: int, gap: float, stop: threading.Event
) -> None:
    """``engine.store.publish_run`` step by step, so the wait to open is timed on its own."""
    staging = template.with_name(f"publishing-{run}.duckdb")
    for _ in range(count):
        shutil.copyfile(template, staging)
        if stop.wait(gap):
            break
        heard: list[str] = []
        start, cpu = time.perf_counter(), time.process_time()
        with Store(db, notice=heard.append) as main:
            opened = time.perf_counter()
            main.merge_run(staging, run)
        remove_store_file(staging)
        end = time.perf_counter()
        line = {
            "at": time.time(),
            "open": opened - start,
            "total": end - start,
            "cpu": time.process_time() - cpu,  # all its threads: tells work from waiting for a core
            "heard": heard,
        }
        print(json.dumps(line), flush=True)
    remove_store_file(staging)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)
    tui = roles.add_parser("tui")
    tui.add_argument("db", type=Path)
    tui.add_argument("run")
    tui.add_argument("--pause", type=float, default=1.0)
    pub = roles.add_parser("publish")
    pub.add_argument("db", type=Path)
    pub.add_argument("template", type=Path)
    pub.add_argument("run")
    pub.add_argument("--count", type=int, default=5)
    pub.add_argument("--gap", type=float, default=1.0)
    args = parser.parse_args()
    stop = stdin_closed()
    if args.role == "tui":
        print(json.dumps(asyncio.run(open_tui(args.db, args.run, args.pause, stop))), flush=True)
    else:
        publish(args.db, args.template, args.run, args.count, args.gap, stop)


if __name__ == "__main__":
    main()
