"""Opening the store file, and the one path every query takes: DuckDB's errors become StoreError.

DuckDB lets one process hold a file open for writing, and while it does no other process may
hold it at all; any number of processes may hold it read-only at once. So a process that finds
the file locked waits, with a bounded wait (``EDITLENS_STORE_WAIT`` seconds, 30 by default), says
once for whom it waits (DuckDB's lock error names the holder's PID), and retries. A waiting
writer also announces itself in ``<store>.writers/``, so that readers, which keep the file open
between queries while nobody waits (``engine.store.stores``), let go of it at once.
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from engine.errors import EditlensError

# DuckDB caches pages up to its memory limit (80 % of RAM by default), so without a cap a long
# ingest looks like it grows with the file. Capped, it spills to disk and stays flat.
MEMORY_LIMIT = os.environ.get("EDITLENS_MEMORY_LIMIT", "512MB")
WAIT_SECONDS = float(os.environ.get("EDITLENS_STORE_WAIT", "30"))
_RETRY_SECONDS = (0.02, 0.1)  # between tries: short, jittered, so two waiters do not collide
# A reader of this same process lets go within ~50 ms of a writer's wait: say nothing unless
# that takes longer than this (a job reading then publishing would otherwise always say it waits).
_SAME_PROCESS = "another connection of this process"
_QUIET_SECONDS = 1.0

Notice = Callable[[str], None]


class StoreError(EditlensError):
    """The store file cannot be used as asked."""


def say_on_stderr(message: str) -> None:
    """The default way a waiting process says why it waits."""
    print(message, file=sys.stderr, flush=True)


def connect(
    path: Path,
    *,
    read_only: bool,
    wait: float | None = None,
    notice: Notice | None = say_on_stderr,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``path``; while another process holds the file, wait up to
    ``wait`` seconds (default ``WAIT_SECONDS``), saying once (through ``notice``) for whom.

    A waiting writer announces itself (``writers_waiting``), so readers that keep the file open
    between queries let go of it; a reader does not reopen while a writer waits.
    """
    wait = WAIT_SECONDS if wait is None else wait
    started = time.monotonic()
    deadline = started + wait
    said, announced = False, False
    try:
        while True:
            waiting = writers_waiting(path) if read_only else []
            if waiting:
                holder = f"{waiting[0]}, waiting to write it"
            else:
                try:
                    return duckdb.connect(
                        str(path), read_only=read_only, config={"memory_limit": MEMORY_LIMIT}
                    )
                except duckdb.Error as error:
                    holder = lock_holder(error)
                    if holder is None:
                        raise StoreError(open_problem(path, error)) from None
                except OSError as error:
                    raise StoreError(f"{path}: cannot open the store ({error.strerror})") from None
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{path}: in use by {holder} (waited {wait:.0f} s); try again when it "
                    "finishes (EDITLENS_STORE_WAIT sets the wait) or use another --db"
                )
            if not read_only and not announced:
                _announce(path)
                announced = True
            quiet = holder == _SAME_PROCESS and time.monotonic() - started < _QUIET_SECONDS
            if not said and not quiet and notice is not None:
                notice(f"{path}: in use by {holder}; waiting up to {wait:.0f} s")
                said = True
            time.sleep(random.uniform(*_RETRY_SECONDS))
    finally:
        if announced:
            _withdraw(path)


# A writer that waits leaves a file named by its PID in ``<store>.writers/`` until it has the
# store (or gives up); readers look there before each query.


def _writers_dir(path: Path) -> Path:
    return path.with_name(path.name + ".writers")


def _announce(path: Path) -> None:
    folder = _writers_dir(path)
    try:
        folder.mkdir(exist_ok=True)
        (folder / str(os.getpid())).touch()
    except OSError:
        pass  # a read-only folder: readers will let go when they linger out instead


def _withdraw(path: Path) -> None:
    folder = _writers_dir(path)
    try:
        (folder / str(os.getpid())).unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass  # another writer still waits


def writers_waiting(path: Path) -> list[str]:
    """The live processes waiting to write ``path`` ("PID 123 (editlens evaluate ...)");
    a few microseconds when there are none. Leftovers of killed writers are removed."""
    try:
        names = os.listdir(_writers_dir(path))
    except OSError:
        return []
    waiting = []
    for name in names:
        if not name.isdigit():
            continue
        pid = int(name)
        if pid != os.getpid() and not _alive(pid):
            (_writers_dir(path) / name).unlink(missing_ok=True)
            continue
        waiting.append(f"PID {pid} ({_command(pid)})")
    return waiting


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command(pid: int) -> str:
    """A process's command line, shortened: ``editlens evaluate ...``; "?" when unknown."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return _short_command(" ".join(a.decode(errors="replace") for a in argv if a))


def lock_holder(error: Exception) -> str | None:
    """Who holds the file, from DuckDB's lock error ("... held in /usr/bin/python (PID 123)"),
    as "PID 123 (editlens tui)"; None when the error is not about a lock. A connection of
    another configuration in this process (a reader, while this thread wants to write) counts."""
    message = str(error)
    if "different configuration" in message:
        return _SAME_PROCESS
    if not re.search(r"\block\b", message, re.IGNORECASE):  # "block": a corrupt file, no lock
        return None
    found = re.search(r"\(PID (\d+)\)", message)
    if found is None:
        return "another process"
    pid = int(found.group(1))
    return f"PID {pid} ({_command(pid)})"


def _short_command(command: str) -> str:
    """``/x/.venv/bin/python /x/.venv/bin/editlens evaluate ...`` -> ``editlens evaluate ...``."""
    words = command.split()
    for i, word in enumerate(words):
        if Path(word).name == "editlens":
            words = ["editlens", *words[i + 1 :]]
            break
    short = " ".join([Path(words[0]).name, *words[1:]]) if words else "?"
    return short if len(short) <= 60 else short[:59] + "…"


def open_problem(path: Path, error: Exception) -> str:
    """One line for a file DuckDB refused to open: what is wrong and what to do."""
    message = str(error)
    if "not a valid DuckDB database" in message:
        return f"{path}: not a DuckDB file; point --db at an editlens store or a new file name"
    if "newer" in message.lower() or "version" in message.lower():
        return f"{path}: written by a newer DuckDB; upgrade editlens or use another --db"
    return f"{path}: cannot open the store ({first_line(message)})"


def first_line(message: object) -> str:
    return str(message).splitlines()[0] if str(message) else type(message).__name__


class Database:
    """One open connection, and the one error path: every query here turns ``duckdb.Error``
    (and ``OSError``) into a one-line ``StoreError`` naming the file. Use from one thread at a
    time; the TUI's threads share a ``StoreReader``, which gives each query a cursor of its own."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self.con = con
        self._doing = ""

    @contextmanager
    def doing(self, what: str) -> Iterator[None]:
        """Name what the block does, for the errors its queries raise ("cannot merge run x")."""
        self._doing, before = what, self._doing
        try:
            yield
        finally:
            self._doing = before

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate DuckDB's (and the file system's) errors raised inside the block."""
        try:
            yield
        except (duckdb.Error, OSError) as error:
            detail = first_line(error)
            if self._doing:
                detail = f"{self._doing} ({detail})"
            raise StoreError(f"{self.path}: {detail}") from None

    def execute(self, query: str, params: object = None) -> None:
        with self.errors():
            self.con.execute(query, params)

    def rows(self, query: str, params: object = None) -> list[tuple[Any, ...]]:
        """Run a query to completion (DuckDB refuses new work while a result is half-read)."""
        with self.errors():
            return self.con.execute(query, params).fetchall()

    def one(self, query: str, params: object = None) -> tuple[Any, ...] | None:
        rows = self.rows(query, params)
        return rows[0] if rows else None

    def table(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        with self.errors():
            return self.con.sql(query, params=params).to_arrow_table()

    def batches(
        self, query: str, params: dict[str, Any] | None = None, rows: int = 8192
    ) -> Iterator[pa.RecordBatch]:
        """Stream a result on a cursor of its own, so other queries may run between batches."""
        cursor = self.con.cursor()
        try:
            with self.errors():
                yield from cursor.sql(query, params=params).to_arrow_reader(rows)
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: any exception rolls every write back."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            # the connection may be gone or the transaction already ended: nothing to undo then
            with suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    @contextmanager
    def registered(self, tables: dict[str, pa.Table]) -> Iterator[None]:
        """Arrow tables visible to SQL under the given names for the block."""
        with self.errors():
            for name, table in tables.items():
                self.con.register(name, table)
        try:
            yield
        finally:  # after any transaction: an aborted one refuses other statements
            for name in tables:
                self.con.unregister(name)

    def cursor(self) -> Database:
        """A connection of its own to the same open file, for another thread; close it after."""
        with self.errors():
            return Database(self.path, self.con.cursor())

    def close(self) -> None:
        self.con.close()
