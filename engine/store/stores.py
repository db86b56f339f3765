"""The two ways to hold the store file: ``Store`` (a job or command, read-write or read-only)
and ``StoreReader`` (the TUI, ``serve``, reports: read-only, shared by threads).

Sharing the file (DESIGN.md, Store; issue 10 item 5). DuckDB lets one process hold a file for
writing, and no other process may hold it at all meanwhile; any number may hold it read-only.

Decision: readers keep the file open between queries only while no writer waits.

- Opening per query was measured first and is too slow on the 1 M-example benchmark store:
  opening costs ~50 ms and closing ~10 ms, and every query then starts with a cold buffer cache
  (one filter count: 95 ms cold against 25 ms warm); a filter change took 667 ms (median) and
  a next example 467 ms, against targets of 100 ms and 50 ms.
- So a read-only store (``StoreReader``, ``Store(read_only=True)``) keeps one read-only
  connection per process, each query on a cursor of its own (threads query at once; ~0.1 ms
  over a bare cursor). It lets go of the file when a writer waits (checked before each query
  and every 50 ms while idle) and after ``EDITLENS_READER_LINGER`` (10 s) without a query, so
  writers that do not announce themselves (DuckDB's own CLI) get it too.
- A writer that finds the file held announces itself in ``<store>.writers/`` (its PID), waits
  up to ``EDITLENS_STORE_WAIT`` (30 s) retrying every 20-100 ms, and says once for whom
  (DuckDB's lock error names the holder's PID; its command line is read from /proc). Readers
  do not reopen while a writer waits. Measured with two polling reader processes: a publish
  waited 0.3 s (tests/test_store_sharing.py).
- A job never fails after doing its work: it writes to a staging file of its own; if the main
  store stays busy past the wait, its run stays staged and a rerun publishes it.
- ``changed_token()`` (size and mtime of the file and its WAL) tells a reader that a writer
  committed, without opening the file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from engine.store import schema
from engine.store.analysis import AnalysisReads
from engine.store.browse import ResultReads
from engine.store.connection import (
    WAIT_SECONDS,
    Database,
    Notice,
    StoreError,
    connect,
    say_on_stderr,
    writers_waiting,
)
from engine.store.ingest import CorpusReads, CorpusWrites
from engine.store.jobs import JobWrites, remove_store_file

# How long a reader keeps the file open after its last query when no writer waits: a burst of
# queries (a filter change, stepping through examples) reuses one warm connection; after that
# the file is let go even for writers that do not announce themselves (DuckDB's own CLI).
LINGER_SECONDS = float(os.environ.get("EDITLENS_READER_LINGER", "10"))
_WATCH_SECONDS = 0.05  # how often an idle reader looks for a waiting writer


def _missing(path: Path) -> StoreError:
    return StoreError(f"{path}: no store here; run `editlens demo` or `editlens ingest`")


class ReadOnlyFile(Database):
    """A ``Database`` for readers: one read-only connection per process, kept between queries
    only while no writer waits and for at most ``LINGER_SECONDS`` of idleness; each query runs
    on a cursor of its own, so threads may query at once. Its schema is checked once."""

    def __init__(self, path: Path, *, wait: float, notice: Notice | None) -> None:
        self.path, self._wait, self._notice = path, wait, notice
        self._doing = ""
        self._local = threading.local()  # the cursor of this thread's current query or session
        self._lock = threading.Lock()
        self._shared: duckdb.DuckDBPyConnection | None = None
        self._users = 0
        self._last_used = 0.0
        self._checked = False

    @property
    def con(self) -> Any:  # type: ignore[override]
        current = getattr(self._local, "db", None)
        if current is None:
            raise StoreError(f"{self.path}: read-only store used outside a query; use session()")
        return current.con

    @contextmanager
    def held(self) -> Iterator[Database]:
        """A cursor for the block, on this thread (nested blocks share it)."""
        current = getattr(self._local, "db", None)
        if current is not None:
            yield current
            return
        db = Database(self.path, self._acquire())
        db._doing = self._doing
        self._local.db = db
        try:
            if not self._checked:
                schema.check(db, read_only=True)
                self._checked = True
            yield db
        finally:
            self._local.db = None
            db.con.close()
            self._release()
            if not self._checked:
                self.close()  # a refused file must not stay held

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the shared connection; while a writer waits, none is handed out: the
        connection is closed as soon as no query runs, and reopened after the writer."""
        with self._lock:
            if self._shared is not None and not writers_waiting(self.path):
                return self._cursor(self._shared)
            if self._users == 0:
                self._close_shared()
        if not self.path.exists():
            raise _missing(self.path)
        # Outside the lock: this may wait (for a writer), while other threads finish queries.
        con = connect(self.path, read_only=True, wait=self._wait, notice=self._notice)
        with self._lock:
            if self._shared is None:
                self._shared = con
                threading.Thread(target=self._let_go_when_idle, daemon=True).start()
            else:
                con.close()  # another thread opened it meanwhile: the same DuckDB instance
            return self._cursor(self._shared)

    def _cursor(self, shared: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Under the lock: a cursor of the shared connection, counted as a running query."""
        cursor = shared.cursor()
        self._users += 1
        return cursor

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            self._last_used = time.monotonic()
            if self._users == 0 and writers_waiting(self.path):
                self._close_shared()

    def _let_go_when_idle(self) -> None:
        """Close the shared connection when idle and a writer waits, or after the linger."""
        while True:
            time.sleep(_WATCH_SECONDS)
            with self._lock:
                if self._shared is None:
                    return
                idle = self._users == 0
                lingered = time.monotonic() - self._last_used > LINGER_SECONDS
                if idle and (lingered or writers_waiting(self.path)):
                    self._close_shared()
                    return

    def _close_shared(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def execute(self, query: str, params: object = None) -> None:
        with self.held() as db:
            db.execute(query, params)

    def rows(self, query: str, params: object = None) -> list[tuple[Any, ...]]:
        with self.held() as db:
            return db.rows(query, params)

    def table(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        with self.held() as db:
            return db.table(query, params)

    def batches(
        self, query: str, params: dict[str, Any] | None = None, rows: int = 8192
    ) -> Iterator[pa.RecordBatch]:
        with self.held() as db:  # the file stays held until the stream is read or closed
            yield from db.batches(query, params, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.held() as db, db.transaction():
            yield

    @contextmanager
    def registered(self, tables: dict[str, pa.Table]) -> Iterator[None]:
        with self.held() as db, db.registered(tables):
            yield

    def close(self) -> None:
        """Let go of the file now (queries still running keep it until they end)."""
        with self._lock:
            if self._users == 0:
                self._close_shared()


class StoreReader(CorpusReads, ResultReads, AnalysisReads):
    """Read-only access for processes that stay open while others write (every TUI, every
    ``serve`` tab): it lets go of the file whenever a writer waits (see the top of this
    module). Safe to share between threads; has no method that writes."""

    def __init__(
        self,
        path: Path | str,
        *,
        wait: float | None = None,
        notice: Notice | None = say_on_stderr,
    ) -> None:
        self.path = Path(path)
        self._file = ReadOnlyFile(
            self.path, wait=WAIT_SECONDS if wait is None else wait, notice=notice
        )
        self._db: Database = self._file
        with self.session():  # a missing, foreign, older or newer file fails here
            pass

    @contextmanager
    def session(self) -> Iterator[StoreReader]:
        """Hold one connection for a short group of queries on this thread."""
        with self._file.held():
            yield self

    def changed_token(self) -> tuple[int, ...]:
        """Changes whenever a writer commits to the file (size and mtime of it and its WAL);
        cheap, and it never opens the file."""
        return changed_token(self.path)

    def close(self) -> None:
        """Let go of the file now."""
        self._file.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Store(CorpusWrites, CorpusReads, JobWrites, ResultReads, AnalysisReads):
    """One DuckDB file. Writes go through Arrow in one transaction, so a failure changes nothing.

    Read-write, the store holds the file until ``close`` (one process at a time can); a busy
    file is waited for (``wait`` seconds). Read-only, it lets go of the file whenever a writer
    waits, like ``StoreReader``. Use from one thread at a time (the TUI's threads share a
    StoreReader).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        read_only: bool = False,
        wait: float | None = None,
        notice: Notice | None = say_on_stderr,
    ) -> None:
        self.path = Path(path)
        wait = WAIT_SECONDS if wait is None else wait
        if read_only:
            self._db = ReadOnlyFile(self.path, wait=wait, notice=notice)
            with self._db.held():
                return
        self._db = Database(
            self.path, connect(self.path, read_only=False, wait=wait, notice=notice)
        )
        try:
            schema.check(self._db, read_only=False)
        except BaseException:
            self._db.close()  # a refused store must not stay locked
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def publish_run(
    db: Path,
    staging: Path,
    run_id: str,
    *,
    wait: float | None = None,
    notice: Notice | None = say_on_stderr,
) -> None:
    """Merge a finished staging store into the main store, then delete the staging file.

    The main store may be busy (a TUI's query, another job's publish): wait for it up to
    ``wait`` seconds, saying once for whom. If it stays busy, the staged run stays where it is
    and the error says so.
    """
    try:
        main = Store(db, wait=wait, notice=notice)
    except StoreError as error:
        raise StoreError(
            f"{error}; the finished run stays staged in {staging}: rerun the command to publish it"
        ) from None
    with main:
        main.merge_run(staging, run_id)
    remove_store_file(staging)


def changed_token(path: Path) -> tuple[int, ...]:
    """Size and mtime of a store file and of its write-ahead log; zeros for what is missing."""
    token: list[int] = []
    for name in (path, path.with_name(path.name + ".wal")):
        try:
            stat = os.stat(name)
            token += [stat.st_size, stat.st_mtime_ns]
        except OSError:
            token += [0, 0]
    return tuple(token)


def staging_dir(db: Path) -> Path:
    """Where unfinished evaluation jobs keep their work, beside the store they publish to."""
    return db.parent / f".{db.name}.staging"


@dataclass(frozen=True)
class StagedFile:
    """An evaluation job's staging store: a run that was never published."""

    path: Path
    bytes: int
    in_use: bool  # a running job holds it: never remove it
    modified: float  # when a job last wrote to it, in seconds since the epoch


def staged_files(db: Path) -> list[StagedFile]:
    """The staging stores left beside ``db``; rerunning the same evaluation resumes from one."""
    folder = staging_dir(Path(db))
    found = []
    for path in sorted(folder.glob("*.duckdb")) if folder.is_dir() else []:
        try:  # read-only: never creates a file that a publish removed meanwhile
            duckdb.connect(str(path), read_only=True).close()  # fails while a job writes it
            in_use = False
        except duckdb.Error:
            in_use = True
        try:
            stat = path.stat()
        except FileNotFoundError:  # published or removed since the listing
            continue
        found.append(StagedFile(path, stat.st_size, in_use, stat.st_mtime))
    return found


def remove_staged(staged: StagedFile) -> None:
    """Delete an idle staging store (its unfinished run is lost); refuse one in use."""
    if staged.in_use:
        raise StoreError(f"{staged.path}: a running job holds it; cancel the job first")
    remove_store_file(staged.path)
