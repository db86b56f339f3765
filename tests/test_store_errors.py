"""One error path: whatever DuckDB or the file system says, a public store method raises a
one-line StoreError naming the file, never a raw duckdb.Error."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb  # the tests damage and lock store files directly; the engine goes through Store
import pytest
from test_store import RUN_ID, example, make_run, run_tables

from engine.store import Store, StoreError, StoreReader, examples_to_arrow


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        store.write_examples("small", [examples_to_arrow("small", [example("1.1")])])
        store.record_run(make_run())
    return path


def damage(path: Path, sql: str) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(sql)


READS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "summaries": ("DROP TABLE summaries", lambda s: s.summaries()),
    "example_batches": (
        "ALTER TABLE examples RENAME TO gone",
        lambda s: list(s.example_batches("small")),
    ),
    "example_pages": (
        "ALTER TABLE examples RENAME TO gone",
        lambda s: list(s.example_pages("small")),
    ),
    "export_batches": (
        "ALTER TABLE examples RENAME TO gone",
        lambda s: list(s.export_batches("small")),
    ),
    "runs": ("ALTER TABLE runs DROP COLUMN config", lambda s: s.runs()),
    "run_overview": ("DROP TABLE predictions", lambda s: s.run_overview()),
}
WRITES: dict[str, tuple[str, Callable[[Store], object]]] = {
    "write_examples": (
        "DROP TABLE examples",
        lambda s: s.write_examples("small", [examples_to_arrow("small", [example("2.1")])]),
    ),
    "write_chunk": (
        "ALTER TABLE predictions DROP COLUMN prob",
        lambda s: s.write_chunk(run_tables()),
    ),
    "record_run": ("DROP TABLE runs", lambda s: s.record_run(make_run())),
}


def assert_one_line_about(error: pytest.ExceptionInfo[StoreError], path: Path) -> None:
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message


@pytest.mark.parametrize("name", READS)
@pytest.mark.parametrize("opener", [Store, StoreReader], ids=["Store", "StoreReader"])
def test_a_read_of_a_damaged_store_is_a_store_error(
    db: Path, name: str, opener: Callable[..., Any]
) -> None:
    sql, call = READS[name]
    damage(db, sql)
    store = opener(db, read_only=True) if opener is Store else opener(db)
    with store, pytest.raises(StoreError) as caught:
        call(store)
    assert_one_line_about(caught, db)


@pytest.mark.parametrize("name", WRITES)
def test_a_write_to_a_damaged_store_is_a_store_error(db: Path, name: str) -> None:
    sql, call = WRITES[name]
    damage(db, sql)
    with Store(db) as store, pytest.raises(StoreError) as caught:
        call(store)
    assert_one_line_about(caught, db)


@contextmanager
def held_for_writing(db: Path) -> Iterator[int]:
    """Another process holding the store open for writing (as DuckDB's own CLI would), which
    never lets go: its PID."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(db)!r})\n"
            "print('holding', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_opening_a_store_another_process_writes_waits_then_names_that_process(db: Path) -> None:
    heard: list[str] = []
    openers = (
        lambda: Store(db, wait=0.5, notice=heard.append),
        lambda: Store(db, read_only=True, wait=0.5, notice=heard.append),
        lambda: StoreReader(db, wait=0.5, notice=heard.append),
    )
    with held_for_writing(db) as pid:
        for opener in openers:
            start = time.monotonic()
            with pytest.raises(StoreError) as caught:
                opener()
            assert time.monotonic() - start >= 0.5
            assert_one_line_about(caught, db)
            assert f"in use by PID {pid} (python" in str(caught.value)
    assert len(heard) == 3
    assert all(f"in use by PID {pid}" in line and "waiting" in line for line in heard)


def test_a_reader_whose_file_was_taken_between_queries_says_so_per_method(db: Path) -> None:
    reader = StoreReader(db, wait=0.3, notice=None)
    reader.runs()
    reader.close()  # lets go of the file: now a writer may take it
    with held_for_writing(db) as pid:
        for _sql, call in READS.values():
            with pytest.raises(StoreError) as caught:
                call(reader)
            assert f"in use by PID {pid}" in str(caught.value)


def test_an_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.duckdb"
    folder.mkdir()
    with pytest.raises(StoreError) as caught:
        Store(folder)
    assert_one_line_about(caught, folder)
    with pytest.raises(StoreError, match="no store here"):
        StoreReader(tmp_path / "missing.duckdb")


def test_filters_are_checked_when_made_not_inside_sql() -> None:
    from engine.store import ExampleFilter

    with pytest.raises(ValueError, match="unknown metric 'jaccard'"):
        ExampleFilter(run=RUN_ID, metric="jaccard")  # not a yes/no metric
    with pytest.raises(ValueError, match="unknown sort"):
        ExampleFilter(run=RUN_ID, sort="text; DROP TABLE runs")
