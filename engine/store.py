"""The DuckDB store: the only module that speaks SQL. Callers get Arrow tables or dataclasses."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from engine.corpus import Example
from engine.errors import EditlensError

SCHEMA_VERSION = 1
# DuckDB caches pages up to its memory limit (80 % of RAM by default), so without a cap a long
# ingest looks like it grows with the file. Capped, it spills to disk and stays flat.
MEMORY_LIMIT = os.environ.get("EDITLENS_MEMORY_LIMIT", "512MB")
DEFAULT_DB = "editlens.duckdb"

EXAMPLE_SCHEMA = pa.schema(
    [
        ("corpus", pa.string()),
        ("id", pa.string()),
        ("split", pa.string()),
        ("text", pa.string()),
        ("words", pa.list_(pa.string())),
        ("starts", pa.list_(pa.int32())),
        ("ends", pa.list_(pa.int32())),
        ("label", pa.bool_()),
        ("rationale", pa.list_(pa.int32())),
        ("kind", pa.string()),
    ]
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    corpus VARCHAR NOT NULL, id VARCHAR NOT NULL, split VARCHAR NOT NULL, text VARCHAR NOT NULL,
    words VARCHAR[] NOT NULL, starts INTEGER[] NOT NULL, ends INTEGER[] NOT NULL,
    label BOOLEAN NOT NULL, rationale INTEGER[] NOT NULL, kind VARCHAR NOT NULL
);  -- unique (corpus, id) is kept by write_examples; an index would hold every key in memory
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,          -- 'train' or 'evaluate'
    model VARCHAR NOT NULL,         -- what users call the model: 'minilm', 'minilm+ft:demo', ...
    checkpoint VARCHAR NOT NULL,    -- the registry name or directory that was loaded
    corpus VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    layers SMALLINT NOT NULL,
    heads SMALLINT NOT NULL,
    config JSON NOT NULL,
    metrics JSON NOT NULL,          -- classification figures (and training history for 'train')
    started TIMESTAMP NOT NULL,
    finished TIMESTAMP NOT NULL
);
-- Big tables carry no index: rows arrive sorted by run, and DuckDB's zone maps prune on it.
CREATE TABLE IF NOT EXISTS predictions (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL, label BOOLEAN NOT NULL,
    prob DOUBLE NOT NULL,           -- p(needs edit)
    pred BOOLEAN NOT NULL,
    confidence DOUBLE NOT NULL,     -- p(predicted class)
    seen_words INTEGER NOT NULL,    -- words before the model's length cut
    scorable BOOLEAN NOT NULL       -- needs an edit, has a rationale, and all of it was seen
);
CREATE TABLE IF NOT EXISTS scores (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL, method VARCHAR NOT NULL,
    layer SMALLINT NOT NULL,        -- 1..L, or 0 for methods without layers
    scores FLOAT[] NOT NULL         -- one per seen word
);
CREATE TABLE IF NOT EXISTS heads (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL,
    grid FLOAT[] NOT NULL,          -- layers x heads, row-major: share of [CLS] attention on the rationale
    last FLOAT[] NOT NULL           -- heads x seen words, row-major: the last layer's [CLS] rows
);
-- One row per evaluated example x method x layer, carrying what the TUI filters on, so a filter
-- reads one contiguous slice (rows are sorted by run, method, layer) and joins nothing.
CREATE TABLE IF NOT EXISTS outcomes (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL, example VARCHAR NOT NULL,
    label BOOLEAN NOT NULL, pred BOOLEAN NOT NULL, confidence DOUBLE NOT NULL,
    kind VARCHAR NOT NULL, rationale_size SMALLINT NOT NULL, seen_words INTEGER NOT NULL,
    scorable BOOLEAN NOT NULL,      -- the metrics below are NULL when not
    exact BOOLEAN, top3 BOOLEAN, hit1 BOOLEAN, jaccard FLOAT, jaccard50 BOOLEAN, token_f1 FLOAT,
    auprc FLOAT, comprehensiveness FLOAT, sufficiency FLOAT
);
CREATE TABLE IF NOT EXISTS summaries (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL,
    population VARCHAR NOT NULL,    -- 'all' scorable sentences, or those 'flagged' as needing an edit
    n INTEGER NOT NULL,
    exact DOUBLE, top3 DOUBLE, hit1 DOUBLE, jaccard DOUBLE, jaccard50 DOUBLE, token_f1 DOUBLE,
    auprc DOUBLE, comprehensiveness DOUBLE, sufficiency DOUBLE
);
"""
RUN_TABLES = ("predictions", "scores", "heads", "outcomes")
OUTCOME_METRICS = (
    "exact", "top3", "hit1", "jaccard", "jaccard50", "token_f1", "auprc",
    "comprehensiveness", "sufficiency",
)  # fmt: skip
POPULATIONS = ("all", "flagged")
# Row order on publish: outcomes by the TUI's filter keys, so DuckDB's zone maps skip the rest.
_MERGE_ORDER = {"outcomes": "run, method, layer, example", "scores": "run, example, method, layer"}


class StoreError(EditlensError):
    """The store file cannot be used as asked."""


@dataclass(frozen=True)
class Run:
    """A finished training or evaluation run, as the runs table holds it."""

    id: str
    kind: str
    model: str
    checkpoint: str
    corpus: str
    split: str
    layers: int
    heads: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    started: datetime
    finished: datetime


@dataclass(frozen=True)
class CorpusSummary:
    """What one corpus in the store holds."""

    name: str
    examples: int
    needs_edit: int
    by_split: dict[str, int]
    by_kind: dict[str, int]
    scorable: int  # needs an edit and has a non-empty rationale


class Store:
    """One DuckDB file. Writes go through Arrow in one transaction, so a failure changes nothing."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StoreError(
                f"{self.path}: no store here; run `editlens demo` or `editlens ingest`"
            )
        try:
            self._con = duckdb.connect(
                str(self.path), read_only=read_only, config={"memory_limit": MEMORY_LIMIT}
            )
        except duckdb.Error as error:
            raise StoreError(_open_problem(self.path, error)) from None
        try:
            self._check_version(read_only)
        except BaseException:
            self._con.close()  # a refused store must not stay locked
            raise

    def _rows(self, query: str, params: object = None) -> list[tuple[Any, ...]]:
        """Run a query to completion (DuckDB refuses new work while a result is half-read)."""
        try:
            return self._con.execute(query, params).fetchall()
        except duckdb.Error as error:
            raise StoreError(f"{self.path}: {str(error).splitlines()[0]}") from None

    def _one(self, query: str, params: object = None) -> tuple[Any, ...] | None:
        rows = self._rows(query, params)
        return rows[0] if rows else None

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_version(self, read_only: bool) -> None:
        tables = {row[0] for row in self._rows("SELECT table_name FROM duckdb_tables()")}
        if "meta" in tables:
            row = self._one("SELECT value FROM meta WHERE key = 'schema_version'")
            found = int(row[0]) if row else 0
            if found > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: store schema {found} is newer than this editlens understands "
                    f"({SCHEMA_VERSION}); upgrade editlens or use another --db"
                )
            if found == SCHEMA_VERSION and read_only:
                return
        elif tables:
            raise StoreError(
                f"{self.path}: a DuckDB file but not an editlens store; use another --db"
            )
        if read_only:
            raise StoreError(
                f"{self.path}: store is empty; run `editlens demo` or `editlens ingest`"
            )
        with self.transaction():
            self._con.execute(_SCHEMA)
            self._con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: any exception rolls every write back."""
        self._con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    # -- examples -------------------------------------------------------------------------------

    def write_examples(self, corpus: str, batches: Iterable[pa.Table]) -> int:
        """Insert or replace a corpus' examples; duplicate ids in the input are refused."""
        written = 0
        with self.transaction():
            self._con.execute("CREATE OR REPLACE TABLE incoming AS FROM examples LIMIT 0")
            for batch in batches:
                self._con.execute("INSERT INTO incoming SELECT * FROM batch")
                written += batch.num_rows
            duplicate = self._one(
                "SELECT id FROM incoming GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 1"
            )
            if duplicate:
                raise StoreError(
                    f"corpus {corpus}: sentence id {duplicate[0]} occurs twice in the input; "
                    "ids must be unique, fix the file"
                )
            self._con.execute(
                "DELETE FROM examples WHERE corpus = $corpus AND id IN (SELECT id FROM incoming)",
                {"corpus": corpus},
            )
            self._con.execute("INSERT INTO examples SELECT * FROM incoming")
            self._con.execute("DROP TABLE incoming")
        return written

    def corpora(self) -> list[CorpusSummary]:
        rows = self._rows(
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
        return self._one("SELECT 1 FROM examples WHERE corpus = ? LIMIT 1", [corpus]) is not None

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
        yield from self._con.sql(query, params=params).to_arrow_reader(batch_rows)

    def examples_after(self, corpus: str, after: str, rows: int) -> pa.Table:
        """The next ``rows`` examples by id after ``after``: keyset paging that never holds a cursor."""
        return self._con.sql(
            "SELECT * FROM examples WHERE corpus = $corpus AND id > $after ORDER BY id LIMIT $rows",
            params={"corpus": corpus, "after": after, "rows": rows},
        ).to_arrow_table()

    def run_labels(self, run_id: str) -> tuple[list[bool], list[bool]]:
        """Gold labels and predictions of a run, for its classification figures."""
        rows = self._rows(
            "SELECT label, pred FROM predictions WHERE run = ? ORDER BY example", [run_id]
        )
        return [row[0] for row in rows], [row[1] for row in rows]

    def count_examples(self, corpus: str, splits: Sequence[str] | None = None) -> int:
        query = "SELECT count(*) FROM examples WHERE corpus = $corpus"
        params: dict[str, Any] = {"corpus": corpus}
        if splits is not None:
            query += " AND list_contains($splits, split)"
            params["splits"] = list(splits)
        return self._rows(query, params)[0][0]

    def export_batches(self, corpus: str) -> Iterator[pa.RecordBatch]:
        """One record per example, in the shape users get from ``editlens export``."""
        yield from self._con.sql(
            """
            SELECT id, split, text, label, kind, words, rationale
            FROM examples WHERE corpus = $corpus ORDER BY id
            """,
            params={"corpus": corpus},
        ).to_arrow_reader(8192)

    # -- runs -----------------------------------------------------------------------------------

    def write_chunk(self, tables: dict[str, pa.Table]) -> None:
        """Append one chunk of a run's rows (table name -> Arrow) in one transaction."""
        unknown = set(tables) - set(RUN_TABLES)
        if unknown:
            raise ValueError(f"not run tables: {sorted(unknown)}")
        for name, rows in tables.items():
            self._con.register(f"chunk_{name}", rows)
        try:
            with self.transaction():
                for name in tables:
                    self._con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM chunk_{name}")
        finally:  # after the transaction: an aborted one refuses any other statement
            for name in tables:
                self._con.unregister(f"chunk_{name}")

    def done_examples(self, run_id: str) -> set[str]:
        """Examples a run already has predictions for: what a resumed job may skip."""
        return {
            row[0] for row in self._rows("SELECT example FROM predictions WHERE run = ?", [run_id])
        }

    def record_run(self, run: Run) -> None:
        """Add the run row; in a store that users see, call only through ``merge_run``."""
        values = list(astuple(run))
        values[8], values[9] = dumps(run.config), dumps(run.metrics)
        with self.transaction():
            self._con.execute("DELETE FROM runs WHERE id = ?", [run.id])
            self._con.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(values))})", values)

    def merge_run(self, staging: Path, run_id: str) -> None:
        """Publish a run written to a staging store: all its rows appear at once, or none do."""
        try:
            self._con.execute(f"ATTACH '{_quote(staging)}' AS staging (READ_ONLY)")
        except duckdb.Error as error:
            raise StoreError(
                f"{staging}: cannot open the staging store ({str(error).splitlines()[0]}); rerun the job"
            ) from None
        try:
            with self.transaction():
                self._delete_run_rows(run_id)
                for name in (*RUN_TABLES, "runs"):
                    key = "id" if name == "runs" else "run"
                    self._con.execute(
                        f"INSERT INTO {name} BY NAME SELECT * FROM staging.{name} "
                        f"WHERE {key} = ? ORDER BY {_MERGE_ORDER.get(name, 'ALL')}",
                        [run_id],
                    )
                self._summarise(run_id)
        except duckdb.Error as error:
            raise StoreError(f"{staging}: cannot merge run {run_id} ({error})") from None
        finally:
            self._con.execute("DETACH staging")

    def _delete_run_rows(self, run_id: str) -> None:
        for name in (*RUN_TABLES, "summaries"):
            self._con.execute(f"DELETE FROM {name} WHERE run = ?", [run_id])
        self._con.execute("DELETE FROM runs WHERE id = ?", [run_id])

    def _summarise(self, run_id: str) -> None:
        """Per method x layer x population means, with N, so reports need no pass over outcomes."""
        means = ", ".join(f"avg({m}::DOUBLE)" for m in OUTCOME_METRICS)
        self._con.execute(
            f"""
            INSERT INTO summaries
            SELECT o.run, o.method, o.layer, population, count(*), {means}
            FROM outcomes o
            CROSS JOIN (VALUES ('all'), ('flagged')) populations(population)
            WHERE o.run = $run AND o.scorable AND (population = 'all' OR o.pred)
            GROUP BY o.run, o.method, o.layer, population
            """,
            {"run": run_id},
        )

    def runs(self, kind: str | None = None) -> list[Run]:
        query = "SELECT * FROM runs" + (" WHERE kind = $kind" if kind else "") + " ORDER BY started"
        return [_run(row) for row in self._rows(query, {"kind": kind} if kind else None)]

    def get_run(self, run_id: str) -> Run:
        row = self._one("SELECT * FROM runs WHERE id = ?", [run_id])
        if row is None:
            raise StoreError(f"run {run_id!r} is not in {self.path}; see `editlens info`")
        return _run(row)

    def summaries(self, run_ids: Sequence[str] | None = None) -> pa.Table:
        """Aggregated plausibility and faithfulness rows joined with their run's description."""
        query = """
            SELECT r.id AS run, r.model, r.corpus, r.split, s.* EXCLUDE (run)
            FROM summaries s JOIN runs r ON r.id = s.run
        """
        params: dict[str, Any] = {}
        if run_ids is not None:
            query += " WHERE list_contains($runs, s.run)"
            params["runs"] = list(run_ids)
        query += " ORDER BY r.started, s.population, s.method, s.layer"
        return self._con.sql(query, params=params).to_arrow_table()

    def outcome_values(
        self, run_id: str, method: str, layer: int, population: str, metric: str
    ) -> list[float]:
        """Per-example values of one metric, for bootstrap confidence intervals."""
        if metric not in OUTCOME_METRICS or population not in POPULATIONS:
            raise ValueError(f"unknown metric {metric!r} or population {population!r}")
        rows = self._rows(
            f"""
            SELECT o.{metric}::DOUBLE FROM outcomes o
            WHERE o.run = $run AND o.method = $method AND o.layer = $layer AND o.scorable
              AND ($population = 'all' OR o.pred) AND o.{metric} IS NOT NULL
            """,
            {"run": run_id, "method": method, "layer": layer, "population": population},
        )
        return [row[0] for row in rows]

    # -- browsing (the TUI's queries) -----------------------------------------------------------
    # Read-only queries for the TUI. Each opens its own cursor, so the TUI's worker threads may
    # query at once. User input reaches SQL only as $parameters; column names and conditions
    # come from the allow-lists below.

    BROWSE_METRICS = ("top3", "hit1", "exact", "jaccard50")
    BROWSE_OUTCOMES = ("any", "yes", "no", "unscorable")
    BROWSE_PREDICTIONS = {  # noqa: RUF012 (read-only allow-list)
        "any": "TRUE",
        "right": "o.pred = o.label",
        "wrong": "o.pred <> o.label",
        "tp": "o.pred AND o.label",
        "fp": "o.pred AND NOT o.label",
        "fn": "NOT o.pred AND o.label",
        "tn": "NOT o.pred AND NOT o.label",
    }
    BROWSE_SORTS = {  # noqa: RUF012 (read-only allow-list)
        "id": "o.example",
        "confidence": "o.confidence",
        # p(needs edit) from the slice: the predicted class's confidence, or its complement
        # (equal to predictions.prob up to float rounding; joining predictions costs ~150 ms)
        "prob": "CASE WHEN o.pred THEN o.confidence ELSE 1 - o.confidence END",
        "jaccard": "o.jaccard",
        "auprc": "o.auprc",
        "length": "o.seen_words",
    }

    def _browse(self, query: str, params: dict[str, Any] | None = None) -> pa.Table:
        cursor = self._con.cursor()
        try:
            return cursor.sql(query, params=params).to_arrow_table()
        except duckdb.Error as error:
            raise StoreError(f"{self.path}: {str(error).splitlines()[0]}") from None
        finally:
            cursor.close()

    def run_overview(self) -> pa.Table:
        """One row per run: description, classification figures, N and its best method by top-3."""
        return self._browse(
            """
            WITH best AS (
                SELECT run, arg_max(method, top3) AS best_method, arg_max(layer, top3) AS best_layer,
                       max(top3) AS best_top3
                FROM summaries WHERE population = 'all' GROUP BY run
            ), counted AS (SELECT run, count(*) AS n FROM predictions GROUP BY run)
            SELECT r.id, r.kind, r.model, r.corpus, r.split, r.layers, r.heads,
                   coalesce(c.n, 0) AS n,
                   TRY_CAST(json_extract(r.metrics, '$.accuracy') AS DOUBLE) AS accuracy,
                   TRY_CAST(json_extract(r.metrics, '$.f1') AS DOUBLE) AS f1,
                   b.best_method, b.best_layer, b.best_top3, r.started, r.finished
            FROM runs r LEFT JOIN best b ON b.run = r.id LEFT JOIN counted c ON c.run = r.id
            ORDER BY r.started, r.id
            """
        )

    def method_matrix(self, metric: str = "top3", population: str = "all") -> pa.Table:
        """Per run and method, the best layer's mean of ``metric`` (the study's table)."""
        if metric not in OUTCOME_METRICS or population not in POPULATIONS:
            raise ValueError(f"unknown metric {metric!r} or population {population!r}")
        return self._browse(
            f"""
            SELECT run, method, arg_max(layer, {metric}) AS layer, max({metric}) AS value,
                   arg_max(n, {metric}) AS n
            FROM summaries WHERE population = $population
            GROUP BY run, method ORDER BY run, method
            """,
            {"population": population},
        )

    def run_methods(self, run_id: str) -> pa.Table:
        """The (method, layer) pairs a run has outcomes for, as summarised at merge time."""
        return self._browse(
            """
            SELECT DISTINCT method, layer FROM summaries WHERE run = $run ORDER BY method, layer
            """,
            {"run": run_id},
        )

    def _browse_parts(
        self,
        *,
        run: str,
        method: str,
        layer: int,
        metric: str = "top3",
        outcome: str = "any",
        prediction: str = "any",
        kind: str | None = None,
        rationale: tuple[int, int] | None = None,
        search: str = "",
    ) -> dict[str, Any]:
        """The pieces of a filtered query over one (run, method, layer) slice of ``outcomes``.

        ``where`` selects the slice and the example filters (kind, rationale size, text); the
        outcome and prediction conditions come apart so that bucket counts can vary one of them.
        Only the text search reads ``examples``: a semi-join of the texts that match.
        """
        if metric not in self.BROWSE_METRICS:
            raise ValueError(f"unknown outcome metric {metric!r}")
        if outcome not in self.BROWSE_OUTCOMES or prediction not in self.BROWSE_PREDICTIONS:
            raise ValueError(f"unknown outcome {outcome!r} or prediction {prediction!r}")
        params: dict[str, Any] = {"run": run, "method": method, "layer": layer}
        where = ["o.run = $run", "o.method = $method", "o.layer = $layer"]
        if kind:
            where.append("o.kind = $kind")
            params["kind"] = kind
        if rationale is not None:
            where.append("o.rationale_size BETWEEN $rmin AND $rmax")
            params["rmin"], params["rmax"] = rationale
        if search.strip():
            where.append(
                "o.example IN (SELECT id FROM examples WHERE corpus = $corpus"
                " AND contains(lower(text), $search))"
            )
            params["corpus"] = self._run_corpus(run)
            params["search"] = search.strip().lower()
        return {
            "params": params,
            "metric": metric,
            "where": " AND ".join(where),
            "outcome": {
                "any": "TRUE",
                "yes": f"o.{metric} IS TRUE",
                "no": f"o.{metric} IS FALSE",
                "unscorable": "NOT o.scorable",
            }[outcome],
            "prediction": self.BROWSE_PREDICTIONS[prediction],
        }

    def _run_corpus(self, run: str) -> str:
        corpus = self._browse("SELECT corpus FROM runs WHERE id = $run", {"run": run})
        return corpus.column(0)[0].as_py() if corpus.num_rows else ""

    def bucket_counts(self, **filters: Any) -> dict[str, int]:
        """Counts per outcome bucket and per prediction bucket under the other filters, in one
        pass over the slice.

        Outcome buckets honour the prediction filter and vice versa, so each count says what
        choosing that bucket would show; ``total`` is the number of rows the filter shows.
        """
        parts = self._browse_parts(**filters)
        metric, outcome, prediction = parts["metric"], parts["outcome"], parts["prediction"]
        counts = {
            "interpretable": f"o.{metric} IS TRUE AND {prediction}",
            "not_interpretable": f"o.{metric} IS FALSE AND {prediction}",
            "unscorable": f"NOT o.scorable AND {prediction}",
            **{
                name: f"{outcome} AND {condition}"
                for name, condition in self.BROWSE_PREDICTIONS.items()
                if name != "any"
            },
            "total": f"{outcome} AND {prediction}",
        }
        select = ", ".join(f"count(*) FILTER (WHERE {c}) AS {n}" for n, c in counts.items())
        table = self._browse(
            f"SELECT {select} FROM outcomes o WHERE {parts['where']}", parts["params"]
        )
        return {name: int(table.column(name)[0].as_py() or 0) for name in counts}

    def example_page(
        self,
        *,
        sort: str = "id",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
        **filters: Any,
    ) -> pa.Table:
        """One page of the filtered examples of a run, in a stable order (ties broken by id).

        The page is cut from the outcomes slice alone; then only its rows fetch their
        probability (from predictions) and text (from examples), by id."""
        if sort not in self.BROWSE_SORTS:
            raise ValueError(f"unknown sort {sort!r}")
        parts = self._browse_parts(**filters)
        params, metric = dict(parts["params"]), parts["metric"]
        key = self.BROWSE_SORTS[sort]
        order = f"{'DESC' if descending else 'ASC'} NULLS LAST"
        keys = self._browse(
            f"""
            SELECT o.example AS id, o.kind, o.rationale_size::INTEGER AS rationale, o.label,
                   o.pred, o.confidence, o.scorable, o.{metric} AS interpretable, o.jaccard,
                   o.auprc
            FROM outcomes o
            WHERE {parts["where"]} AND {parts["outcome"]} AND {parts["prediction"]}
            ORDER BY {key} {order}, o.example
            LIMIT $limit OFFSET $offset
            """,
            {**params, "limit": int(limit), "offset": int(offset)},
        )
        ids = keys.column("id").to_pylist()
        if not ids:
            empty = pa.table({"id": pa.array([], pa.string())})
            return self._page(keys, empty, empty, ids)
        run = filters["run"]
        probs = self._browse(
            """
            SELECT example AS id, prob FROM predictions
            WHERE run = $run AND example IN (SELECT unnest($ids))
            """,
            {"run": run, "ids": ids},
        )
        # Two steps: matching ids reads the id column alone; fetching by rowid then reads the
        # words and text of those rows only (one join would read them for every example).
        rowids = self._browse(
            "SELECT rowid FROM examples WHERE corpus = $corpus AND id IN (SELECT unnest($ids))",
            {"corpus": self._run_corpus(run), "ids": ids},
        )
        texts = self._browse(
            """
            SELECT id, len(words) AS length, text FROM examples
            WHERE rowid IN (SELECT unnest($rowids))
            """,
            {"rowids": rowids.column(0).to_pylist()},
        )
        return self._page(keys, probs, texts, ids)

    @staticmethod
    def _page(keys: pa.Table, probs: pa.Table, texts: pa.Table, ids: list[str]) -> pa.Table:
        """The page in the keys' order, with the probability, length and text fetched by id."""
        found: dict[str, dict[str, Any]] = {i: {} for i in ids}
        for row in [*probs.to_pylist(), *texts.to_pylist()]:
            found[row["id"]].update(row)
        fetched = {
            "prob": pa.array([found.get(i, {}).get("prob") for i in ids], pa.float64()),
            "length": pa.array([found.get(i, {}).get("length") for i in ids], pa.int64()),
            "text": pa.array([found.get(i, {}).get("text") for i in ids], pa.string()),
        }
        ordered = [
            "id", "kind", "length", "rationale", "label", "pred", "prob", "confidence",
            "scorable", "interpretable", "jaccard", "auprc", "text",
        ]  # fmt: skip
        return pa.table({n: fetched[n] if n in fetched else keys.column(n) for n in ordered})

    def filtered_batches(
        self, *, batch_rows: int = 8192, **filters: Any
    ) -> Iterator[pa.RecordBatch]:
        """Every example the filter shows, with its prediction and outcomes, streamed for export."""
        parts = self._browse_parts(**filters)
        params = {**parts["params"], "corpus": self._run_corpus(filters["run"])}
        cursor = self._con.cursor()
        try:
            reader = cursor.sql(
                f"""
                SELECT o.example AS id, o.kind, e.text, e.words, e.rationale, o.label, o.pred,
                       p.prob, o.confidence, o.scorable, o.method, o.layer,
                       o.exact, o.top3, o.hit1, o.jaccard, o.jaccard50, o.token_f1, o.auprc,
                       o.comprehensiveness, o.sufficiency
                FROM outcomes o
                JOIN predictions p ON p.run = $run AND p.example = o.example
                JOIN examples e ON e.corpus = $corpus AND e.id = o.example
                WHERE {parts["where"]} AND {parts["outcome"]} AND {parts["prediction"]}
                ORDER BY o.example
                """,
                params=params,
            ).to_arrow_reader(batch_rows)
            yield from reader
        except duckdb.Error as error:
            raise StoreError(f"{self.path}: {str(error).splitlines()[0]}") from None
        finally:
            cursor.close()

    def example_detail(self, run_id: str, example: str) -> dict[str, Any] | None:
        """One example under one run: its words, rationale, prediction, heads grid and outcomes,
        plus a table of its word scores for every method and layer. None when not evaluated.

        Every table is filtered by the constant run and example, so each scan prunes to the row
        groups that can hold them."""
        rows = self._browse(
            """
            SELECT e.id, e.corpus, e.split, e.text, e.words, e.rationale, e.kind, e.label,
                   p.prob, p.pred, p.confidence, p.seen_words, p.scorable,
                   h.grid, r.model, r.layers, r.heads
            FROM runs r
            JOIN predictions p ON p.run = $run AND p.example = $example
            JOIN examples e ON e.corpus = r.corpus AND e.id = $example
            LEFT JOIN heads h ON h.run = $run AND h.example = $example
            WHERE r.id = $run
            """,
            {"run": run_id, "example": example},
        ).to_pylist()
        if not rows:
            return None
        detail = rows[0]
        detail["scores"] = self._browse(
            """
            SELECT s.method, s.layer, s.scores, o.top3, o.hit1, o.exact, o.jaccard50, o.jaccard,
                   o.auprc
            FROM scores s
            LEFT JOIN outcomes o ON o.run = $run AND o.example = $example
                 AND o.method = s.method AND o.layer = s.layer
            WHERE s.run = $run AND s.example = $example
            ORDER BY s.method, s.layer
            """,
            {"run": run_id, "example": example},
        )
        return detail

    def example_across_runs(self, corpus: str, example: str, method: str, layer: int) -> pa.Table:
        """The same sentence under every evaluate run of its corpus: prediction and word scores
        for ``method`` at ``layer`` (or the run's last layer when it has fewer)."""
        return self._browse(
            """
            SELECT r.id AS run, r.model, p.prob, p.pred, p.confidence, p.seen_words,
                   s.layer, s.scores, o.top3, o.hit1, o.exact, o.jaccard50
            FROM runs r
            JOIN predictions p ON p.run = r.id AND p.example = $example
            LEFT JOIN scores s ON s.run = r.id AND s.example = $example AND s.method = $method
                 AND s.layer = least($layer, r.layers)
            LEFT JOIN outcomes o ON o.run = r.id AND o.example = $example
                 AND o.method = $method AND o.layer = s.layer
            WHERE r.corpus = $corpus AND r.kind = 'evaluate'
            ORDER BY r.started, r.id
            """,
            {"corpus": corpus, "example": example, "method": method, "layer": layer},
        )


def publish_run(db: Path, staging: Path, run_id: str) -> None:
    """Merge a finished staging store into the main store, then delete the staging file."""
    with Store(db) as main:
        main.merge_run(staging, run_id)
    remove_store_file(staging)


def remove_store_file(path: Path) -> None:
    """A DuckDB file and its write-ahead log."""
    for name in (path, path.with_name(path.name + ".wal")):
        name.unlink(missing_ok=True)


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


def _open_problem(path: Path, error: duckdb.Error) -> str:
    message = str(error)
    if "not a valid DuckDB database" in message:
        return f"{path}: not a DuckDB file; point --db at an editlens store or a new file name"
    if "lock" in message.lower():
        return (
            f"{path}: in use by another process (the TUI or a job?); close it or use another --db"
        )
    if "newer" in message.lower() or "version" in message.lower():
        return f"{path}: written by a newer DuckDB; upgrade editlens or use another --db"
    return f"{path}: cannot open the store ({message.splitlines()[0]})"


def _run(row: tuple[Any, ...]) -> Run:
    values = list(row)
    values[8], values[9] = json.loads(values[8]), json.loads(values[9])
    return Run(*values)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def dumps(value: Any) -> str:
    """JSON for config and metric columns, stable key order so equal configs compare equal."""
    return json.dumps(value, sort_keys=True)
