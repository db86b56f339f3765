"""What training and evaluation jobs write: rows into a staging store of their own, then one
publish that merges a finished run into the main store, all at once or not at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import astuple
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from engine.store.connection import Database, StoreError
from engine.store.ingest import CHANGED, STALE_KEY
from engine.store.records import Run, dumps
from engine.store.schema import RUN_TABLES, SUMMARISE_SLICES, natural_key, quote
from engine.vocabulary import METRIC_NAMES, POPULATIONS

# Examples per query of pending_example_batches. Each query scans the ids after the last one
# read, so fewer queries cost less; but past a few thousand rows DuckDB sorts every candidate
# instead of keeping a top-N heap (measured at 1 M examples: 40 ms at 2,048, 2 s at 8,192).
_PENDING_READ_ROWS = 2048
# Row order on publish: outcomes by the TUI's filter keys, so DuckDB's zone maps skip the rest.
_MERGE_ORDER = {"outcomes": "run, method, layer, example", "scores": "run, example, method, layer"}
# What publish reads: outcomes gain their id's sort key (staging stores leave it NULL).
_MERGE_COLUMNS = {
    "outcomes": f"COLUMNS(lambda c: c <> 'sort_key'), {natural_key('example')} AS sort_key"
}


def _write_chunk(db: Database, tables: dict[str, pa.Table]) -> None:
    unknown = set(tables) - set(RUN_TABLES)
    if unknown:
        raise ValueError(f"not run tables: {sorted(unknown)}")
    chunks = {f"chunk_{name}": rows for name, rows in tables.items()}
    with db.registered(chunks), db.transaction():
        for name in tables:
            db.execute(f"INSERT INTO {name} BY NAME SELECT * FROM chunk_{name}")


class JobWrites:
    """A job's staging store: chunks of rows, resume, the run row; and the main store's merge."""

    _db: Database

    def write_chunk(self, tables: dict[str, pa.Table]) -> None:
        """Append one chunk of a run's rows (table name -> Arrow) in one transaction."""
        _write_chunk(self._db, tables)

    @contextmanager
    def chunks_written_behind(self) -> Iterator[Callable[[dict[str, pa.Table]], None]]:
        """``write(tables)`` that returns at once: the chunk is written on a thread, on a
        connection of its own, while the caller computes the next one (reads on this store may
        go on meanwhile). One write is in flight at a time and chunks land in order; leaving the
        block waits for the last one, and a failed write raises in the caller at its next call
        or there. An interrupted caller still lets the write in flight commit or roll back whole.
        """
        writer = self._db.cursor()
        in_flight: Future[None] | None = None
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="editlens-write") as pool:

                def write(tables: dict[str, pa.Table]) -> None:
                    nonlocal in_flight
                    if in_flight is not None:
                        in_flight.result()
                    in_flight = pool.submit(_write_chunk, writer, tables)

                yield write
                if in_flight is not None:
                    in_flight.result()
        finally:
            writer.close()

    def count_done(self, run_id: str) -> int:
        """How many examples a run already has predictions for: a resumed job's head start."""
        return self._db.one("SELECT count(*) FROM predictions WHERE run = ?", [run_id])[0]

    def pending_example_batches(
        self,
        corpus: str,
        run_id: str,
        *,
        splits: Sequence[str] | None = None,
        limit: int | None = None,
        rows: int = 512,
    ) -> Iterator[pa.Table]:
        """The examples of ``corpus`` that run ``run_id`` has no prediction for yet, in id
        order, ``rows`` at a time; ``splits`` and ``limit`` choose the examples as
        ``example_batches`` does (the first ``limit`` by id), done ones are then skipped.

        Tables are cut from keyset queries (ids after the last one read) anti-joined in SQL with
        the run's predictions past that id, so the caller may write chunks between tables and no
        id list is built in Python.
        """
        chosen: dict[str, Any] = {"corpus": corpus}  # what picks the examples
        where = ["e.corpus = $corpus"]
        if splits is not None:
            where.append("list_contains($splits, e.split)")
            chosen["splits"] = list(splits)
        if limit is not None:
            (last,) = self._db.rows(
                f"SELECT max(id) FROM (SELECT e.id FROM examples e WHERE {' AND '.join(where)}"
                " ORDER BY e.id LIMIT $limit)",
                {**chosen, "limit": limit},
            )[0]
            if last is None:
                return
            where.append("e.id <= $last")
            chosen["last"] = last
        query = f"""
            SELECT e.* FROM examples e
            WHERE {" AND ".join(where)} AND e.id > $after
              AND e.id NOT IN (SELECT example FROM predictions WHERE run = $run AND example > $after)
            ORDER BY e.id LIMIT $rows
        """
        # read _PENDING_READ_ROWS at once, hand them out ``rows`` at a time
        params = {**chosen, "run": run_id, "rows": max(rows, _PENDING_READ_ROWS)}
        after = ""
        while (page := self._db.table(query, {**params, "after": after})).num_rows:
            after = page.column("id")[-1].as_py()
            for start in range(0, page.num_rows, rows):
                yield page.slice(start, rows)

    def run_labels(self, run_id: str) -> tuple[list[bool], list[bool]]:
        """Gold labels and predictions of a run, for its classification figures."""
        rows = self._db.rows(
            "SELECT label, pred FROM predictions WHERE run = ? ORDER BY example", [run_id]
        )
        return [row[0] for row in rows], [row[1] for row in rows]

    def record_run(self, run: Run) -> None:
        """Add the run row; in a store that users see, call only through ``merge_run``."""
        values = list(astuple(run))
        values[8], values[9] = dumps(run.config), dumps(run.metrics)
        db = self._db
        with db.transaction():
            db.execute("DELETE FROM runs WHERE id = ?", [run.id])
            db.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(values))})", values)

    @contextmanager
    def _attached(self, staging: Path, alias: str) -> Iterator[None]:
        """Another staging store, read-only, as schema ``alias`` for the block."""
        db = self._db
        try:
            db.con.execute(f"ATTACH '{quote(staging)}' AS {alias} (READ_ONLY)")
        except (duckdb.Error, OSError) as error:  # the staging file is unusable
            raise StoreError(
                f"{staging}: cannot open the staging store ({str(error).splitlines()[0]}); "
                "rerun the job"
            ) from None
        try:
            yield
        finally:
            db.execute(f"DETACH {alias}")

    def add_shard(self, shard: Path, run_id: str) -> None:
        """Add a run's rows from ``shard`` (one process's part of an evaluation run by several)
        to this staging store, in one transaction; rows of examples this store already has a
        prediction for are skipped, so adding the same shard twice adds nothing the second time."""
        db = self._db
        # predictions last: every table's filter reads the predictions as they were before
        tables = sorted(RUN_TABLES, key=lambda name: name == "predictions")
        with (
            self._attached(shard, "shard"),
            db.doing(f"cannot add {shard} to run {run_id}"),
            db.transaction(),
        ):
            for name in tables:
                db.execute(
                    f"INSERT INTO {name} BY NAME SELECT * FROM shard.{name} "
                    "WHERE run = $run AND example NOT IN "
                    "(SELECT example FROM predictions WHERE run = $run)",
                    {"run": run_id},
                )

    def merge_run(self, staging: Path, run_id: str) -> None:
        """Publish a run written to a staging store: all its rows appear at once, or none do."""
        db = self._db
        with (
            self._attached(staging, "staging"),
            db.doing(f"cannot merge run {run_id} from {staging}"),
            db.transaction(),
        ):
            self._delete_run_rows(run_id)
            for name in (*RUN_TABLES, "runs"):
                key = "id" if name == "runs" else "run"
                db.execute(
                    f"INSERT INTO {name} BY NAME SELECT {_MERGE_COLUMNS.get(name, '*')} "
                    f"FROM staging.{name} WHERE {key} = ? "
                    f"ORDER BY {_MERGE_ORDER.get(name, 'ALL')}",
                    [run_id],
                )
            self._summarise(run_id)
            self._mark_if_text_changed(run_id)

    def _mark_if_text_changed(self, run_id: str) -> None:
        """A run staged before its corpus was re-ingested scored the old text: published, it is
        marked stale (as ``ingest --replace-scored stale`` marks runs already published)."""
        db = self._db  # any earlier mark went with the run's old rows (_delete_run_rows)
        staged = db.one(
            "SELECT 1 FROM duckdb_tables() WHERE database_name = 'staging' "
            "AND table_name = 'examples'"
        )
        if not staged:
            return
        (changed,) = db.rows(
            f"""
            SELECT count(*) FROM staging.predictions p
            JOIN staging.runs r ON r.id = p.run
            JOIN staging.examples i ON i.corpus = r.corpus AND i.id = p.example
            JOIN examples e ON e.corpus = r.corpus AND e.id = p.example
            WHERE p.run = ? AND ({CHANGED})
            """,
            [run_id],
        )[0]
        if changed:
            db.execute(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    STALE_KEY + run_id,
                    f"scored {changed} sentences that changed before it was published",
                ],
            )

    def _delete_run_rows(self, run_id: str) -> None:
        for name in (*RUN_TABLES, "summaries", "slices"):
            self._db.execute(f"DELETE FROM {name} WHERE run = ?", [run_id])
        self._db.execute("DELETE FROM runs WHERE id = ?", [run_id])
        self._db.execute("DELETE FROM meta WHERE key = ?", [STALE_KEY + run_id])

    def _summarise(self, run_id: str) -> None:
        """Per method x layer x population means, with N, so reports need no pass over
        outcomes; and the run's (method, layer) slices, scorable or not."""
        means = ", ".join(f"avg({m}::DOUBLE)" for m in METRIC_NAMES)
        populations = ", ".join(f"('{p}')" for p in POPULATIONS)
        self._db.execute(
            f"""
            INSERT INTO summaries
            SELECT o.run, o.method, o.layer, population, count(*), {means}
            FROM outcomes o
            CROSS JOIN (VALUES {populations}) populations(population)
            WHERE o.run = $run AND o.scorable AND (population = 'all' OR o.pred)
            GROUP BY o.run, o.method, o.layer, population
            """,
            {"run": run_id},
        )
        self._db.execute(SUMMARISE_SLICES.format(where="run = $run"), {"run": run_id})


def remove_store_file(path: Path) -> None:
    """A DuckDB file and its write-ahead log."""
    for name in (path, path.with_name(path.name + ".wal")):
        name.unlink(missing_ok=True)
