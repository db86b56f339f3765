"""Corpora: writing examples (``editlens ingest``) and reading them back (jobs, export, info)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from engine.corpus import Example
from engine.store.connection import Database, StoreError
from engine.store.records import CorpusSummary
from engine.store.schema import EXAMPLE_SCHEMA

# What a re-ingest may do to runs scored on sentences it changes (``editlens ingest
# --replace-scored``): refuse (the default), keep them marked stale, or remove them.
SCORED_POLICIES = ("refuse", "stale", "remove")
# Kept in ``meta``: a corpus' content version, and the runs whose sentences changed under them.
VERSION_KEY = "corpus-version:"
STALE_KEY = "stale-run:"
# What a sentence is to a run that scored it (its split is not: moving it scores nothing anew).
_CONTENT = ("text", "words", "starts", "ends", "label", "rationale", "kind")
CHANGED = " OR ".join(f"e.{c} IS DISTINCT FROM i.{c}" for c in _CONTENT)


@dataclass(frozen=True)
class Replacement:
    """What one ingest did to a corpus that may already hold its ids."""

    written: int
    replaced: int  # ids the corpus held already
    changed: int  # of those, how many now read differently
    runs: tuple[str, ...]  # runs scored on changed sentences: marked stale, or removed
    version: int  # the corpus' content version after the write


class CorpusReads:
    """What a corpus holds; every read-only store has these."""

    _db: Database

    def corpora(self) -> list[CorpusSummary]:
        rows = self._db.rows(
            """
            SELECT corpus, count(*), count(*) FILTER (label),
                   histogram(split), histogram(kind),
                   count(*) FILTER (label AND len(rationale) > 0)
            FROM examples GROUP BY corpus ORDER BY corpus
            """
        )
        return [
            CorpusSummary(name, n, edits, dict(splits), dict(kinds), scorable)
            for name, n, edits, splits, kinds, scorable in rows
        ]

    def corpus_version(self, corpus: str) -> int:
        """Bumped by each ingest that adds or changes a sentence of the corpus (0: never)."""
        found = self._db.one("SELECT value FROM meta WHERE key = ?", [VERSION_KEY + corpus])
        return int(found[0]) if found else 0

    def stale_runs(self) -> dict[str, str]:
        """Run id -> why its figures no longer describe the sentences in the store."""
        rows = self._db.rows(
            "SELECT key, value FROM meta WHERE starts_with(key, ?) ORDER BY key", [STALE_KEY]
        )
        return {key.removeprefix(STALE_KEY): why for key, why in rows}

    def has_corpus(self, corpus: str) -> bool:
        found = self._db.one("SELECT 1 FROM examples WHERE corpus = ? LIMIT 1", [corpus])
        return found is not None

    def count_examples(self, corpus: str, splits: Sequence[str] | None = None) -> int:
        query = "SELECT count(*) FROM examples WHERE corpus = $corpus"
        params: dict[str, Any] = {"corpus": corpus}
        if splits is not None:
            query += " AND list_contains($splits, split)"
            params["splits"] = list(splits)
        return self._db.rows(query, params)[0][0]

    def example_batches(
        self,
        corpus: str,
        *,
        splits: Sequence[str] | None = None,
        limit: int | None = None,
        batch_rows: int = 8192,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a corpus in id order without holding it all in memory."""
        query = "SELECT * FROM examples WHERE corpus = $corpus"
        params: dict[str, Any] = {"corpus": corpus}
        if splits is not None:
            query += " AND list_contains($splits, split)"
            params["splits"] = list(splits)
        query += " ORDER BY id"
        if limit is not None:
            query += " LIMIT $limit"
            params["limit"] = limit
        yield from self._db.batches(query, params, batch_rows)

    def example_pages(
        self,
        corpus: str,
        *,
        splits: Sequence[str] | None = None,
        limit: int | None = None,
        rows: int = 8192,
    ) -> Iterator[pa.Table]:
        """The examples ``example_batches`` streams, ``rows`` at a time (the last page may be
        shorter), each page its own keyset queries: a read-only store holds the file only while
        a page is read, so a long job (training) can stream a corpus while others write.

        A page's last id is found on the id column alone, then the page is read by id range:
        sorting whole rows to take the first ``rows`` costs memory that grows with the corpus.
        """
        where = "corpus = $corpus AND id > $after"
        params: dict[str, Any] = {"corpus": corpus}
        if splits is not None:
            where += " AND list_contains($splits, split)"
            params["splits"] = list(splits)
        boundary = (
            f"SELECT max(id) FROM (SELECT id FROM examples WHERE {where} ORDER BY id LIMIT $rows)"
        )
        page_query = f"SELECT * FROM examples WHERE {where} AND id <= $last ORDER BY id"
        after, left = "", limit
        while left is None or left > 0:
            size = rows if left is None else min(rows, left)
            last = self._db.rows(boundary, {**params, "after": after, "rows": size})[0][0]
            if last is None:
                return
            page = self._db.table(page_query, {**params, "after": after, "last": last})
            yield page
            after = last
            left = None if left is None else left - page.num_rows

    def export_batches(self, corpus: str) -> Iterator[pa.RecordBatch]:
        """One record per example, in the shape users get from ``editlens export``."""
        yield from self._db.batches(
            """
            SELECT id, split, text, label, kind, words, rationale
            FROM examples WHERE corpus = $corpus ORDER BY id
            """,
            {"corpus": corpus},
        )


class CorpusWrites:
    """Replacing a corpus' examples, all or nothing."""

    _db: Database
    _delete_run_rows: Any  # JobWrites': every row of a run

    def ingest_examples(
        self, corpus: str, batches: Iterable[pa.Table], *, scored: str = "refuse"
    ) -> Replacement:
        """``write_examples`` for a user's file: sentences that runs were scored on may change
        only as ``scored`` says (one of SCORED_POLICIES), so no run shows old scores over new
        text; the corpus' content version is bumped when anything was added or changed."""
        if scored not in SCORED_POLICIES:
            raise StoreError(f"unknown --replace-scored {scored!r}; use stale or remove")
        db = self._db
        with db.transaction():
            written = self._load_incoming(corpus, batches)
            join = "FROM incoming i JOIN examples e ON e.corpus = $corpus AND e.id = i.id"
            replaced, changed = db.rows(
                f"SELECT count(*), count(*) FILTER (WHERE {CHANGED}) {join}", {"corpus": corpus}
            )[0]
            affected = self._runs_on_changed(corpus) if changed else {}
            runs = sorted(affected)
            if runs and scored == "refuse":
                raise StoreError(
                    f"corpus {corpus}: the file changes sentences that {len(runs)} run(s) were "
                    f"scored or trained on (e.g. {runs[0]}); pass --replace-scored stale to keep "
                    "those runs marked stale, or --replace-scored remove to delete them"
                )
            for run in runs:
                if scored == "remove":
                    self._delete_run_rows(run)
                else:
                    why = "scoring" if affected[run] == "evaluate" else "training"
                    db.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        [STALE_KEY + run, f"sentences of corpus {corpus} changed after {why}"],
                    )
            found = db.one("SELECT value FROM meta WHERE key = ?", [VERSION_KEY + corpus])
            version = int(found[0]) if found else 0
            if changed or written > replaced:
                version += 1
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [VERSION_KEY + corpus, str(version)],
                )
            self._swap_in(corpus)
        return Replacement(written, replaced, changed, tuple(runs), version)

    def _runs_on_changed(self, corpus: str) -> dict[str, str]:
        """Run id -> kind of the runs that read a sentence the scratch table changes: evaluation
        runs that scored it, and training runs that trained (or chose their epoch) on it.

        A training run reads what ``engine.train`` reads: the first ``limit`` ids of the
        corpus' train split and of its dev split (all of them without a limit); the store
        keeps no list of its examples, so their positions are found here, before the swap."""
        rows = self._db.rows(
            f"""
            WITH changed AS (
                SELECT e.id, e.split FROM incoming i
                JOIN examples e ON e.corpus = $corpus AND e.id = i.id WHERE {CHANGED}
            ), placed AS (
                SELECT id, row_number() OVER (PARTITION BY split ORDER BY id) AS position
                FROM examples WHERE corpus = $corpus AND split IN ('train', 'dev')
            ), trained AS (
                SELECT min(p.position) AS first FROM changed c JOIN placed p ON p.id = c.id
            )
            SELECT DISTINCT r.id, r.kind FROM changed c
            JOIN predictions p ON p.example = c.id
            JOIN runs r ON r.id = p.run AND r.corpus = $corpus
            UNION
            SELECT r.id, r.kind FROM runs r, trained t
            WHERE r.kind = 'train' AND r.corpus = $corpus AND t.first IS NOT NULL
              AND t.first <= coalesce(TRY_CAST(json_extract(r.config, '$.limit') AS BIGINT),
                                      t.first)
            """,
            {"corpus": corpus},
        )
        return dict(rows)

    def write_examples(self, corpus: str, batches: Iterable[pa.Table]) -> int:
        """Insert or replace a corpus' examples (a job's staging store, fixtures): no run is
        checked; a user's file goes through ``ingest_examples``."""
        with self._db.transaction():
            written = self._load_incoming(corpus, batches)
            self._swap_in(corpus)
        return written

    def _load_incoming(self, corpus: str, batches: Iterable[pa.Table]) -> int:
        """The input into a scratch table; duplicate ids in it are refused."""
        db, written = self._db, 0
        db.execute("CREATE OR REPLACE TABLE incoming AS FROM examples LIMIT 0")
        for batch in batches:
            with db.registered({"batch": batch}):
                db.execute("INSERT INTO incoming SELECT * FROM batch")
            written += batch.num_rows
        duplicate = db.one(
            "SELECT id FROM incoming GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 1"
        )
        if duplicate:
            raise StoreError(
                f"corpus {corpus}: sentence id {duplicate[0]} occurs twice in the input; "
                "ids must be unique, fix the file"
            )
        return written

    def _swap_in(self, corpus: str) -> None:
        """The scratch table's rows replace the corpus' rows with the same ids."""
        db = self._db
        db.execute(
            "DELETE FROM examples WHERE corpus = $corpus AND id IN (SELECT id FROM incoming)",
            {"corpus": corpus},
        )
        db.execute("INSERT INTO examples SELECT * FROM incoming")
        db.execute("DROP TABLE incoming")


def examples_to_arrow(corpus: str, examples: Sequence[Example]) -> pa.Table:
    """Column-wise Arrow table of examples, ready for one bulk insert."""
    return pa.table(
        {
            "corpus": [corpus] * len(examples),
            "id": [e.id for e in examples],
            "split": [e.split for e in examples],
            "text": [e.text for e in examples],
            "words": [list(e.words) for e in examples],
            "starts": [list(e.starts) for e in examples],
            "ends": [list(e.ends) for e in examples],
            "label": [e.label for e in examples],
            "rationale": [list(e.rationale) for e in examples],
            "kind": [e.kind for e in examples],
        },
        schema=EXAMPLE_SCHEMA,
    )
