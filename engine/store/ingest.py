"""Corpora: writing examples (``editlens ingest``) and reading them back (jobs, export, info)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from engine.corpus import Example
from engine.store.connection import Database, StoreError
from engine.store.records import CorpusSummary
from engine.store.schema import EXAMPLE_SCHEMA


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
        shorter), each page its own keyset query: a read-only store holds the file only while
        a page is read, so a long job (training) can stream a corpus while others write."""
        where = "corpus = $corpus AND id > $after"
        params: dict[str, Any] = {"corpus": corpus}
        if splits is not None:
            where += " AND list_contains($splits, split)"
            params["splits"] = list(splits)
        query = f"SELECT * FROM examples WHERE {where} ORDER BY id LIMIT $rows"
        after, left = "", limit
        while left is None or left > 0:
            size = rows if left is None else min(rows, left)
            page = self._db.table(query, {**params, "after": after, "rows": size})
            if not page.num_rows:
                return
            yield page
            after = page.column("id")[-1].as_py()
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

    def write_examples(self, corpus: str, batches: Iterable[pa.Table]) -> int:
        """Insert or replace a corpus' examples; duplicate ids in the input are refused."""
        db, written = self._db, 0
        with db.transaction():
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
            db.execute(
                "DELETE FROM examples WHERE corpus = $corpus AND id IN (SELECT id FROM incoming)",
                {"corpus": corpus},
            )
            db.execute("INSERT INTO examples SELECT * FROM incoming")
            db.execute("DROP TABLE incoming")
        return written


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
