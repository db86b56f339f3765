"""Reading results: runs and their summaries (``report``, ``info``) and the TUI's browsing
queries over one (run, method, layer) slice of ``outcomes`` under an ``ExampleFilter``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from engine.store.connection import Database, StoreError
from engine.store.filters import PREDICTIONS, SORTS, ExampleFilter
from engine.store.records import RUN_COLUMNS, Run, run_from_row
from engine.vocabulary import HEADLINE_METRIC, METHOD_NAMES, METRIC_NAMES, POPULATIONS, metric_info

# The order ties are broken in: methods as the vocabulary lists them (unknown ones after, by
# name), then the lower layer.
_METHOD_RANK = "coalesce(list_position($methods, method), 1000), method, layer"


class ResultReads:
    """Runs, their summaries, and the TUI's browsing queries; all read-only."""

    _db: Database
    path: Path

    # -- runs and reports -------------------------------------------------------------------

    def runs(self, kind: str | None = None) -> list[Run]:
        query = f"SELECT {RUN_COLUMNS} FROM runs"
        query += (" WHERE kind = $kind" if kind else "") + " ORDER BY started"
        return [run_from_row(row) for row in self._db.rows(query, {"kind": kind} if kind else None)]

    def get_run(self, run_id: str) -> Run:
        row = self._db.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", [run_id])
        if row is None:
            raise StoreError(f"run {run_id!r} is not in {self.path}; see `editlens info`")
        return run_from_row(row)

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
        return self._db.table(query, params)

    def outcome_values(
        self, run_id: str, method: str, layer: int, population: str, metric: str
    ) -> list[float]:
        """Per-example values of one metric, for bootstrap confidence intervals."""
        _check_metric(metric, population)
        rows = self._db.rows(
            f"""
            SELECT o.{metric}::DOUBLE FROM outcomes o
            WHERE o.run = $run AND o.method = $method AND o.layer = $layer AND o.scorable
              AND ($population = 'all' OR o.pred) AND o.{metric} IS NOT NULL
            """,
            {"run": run_id, "method": method, "layer": layer, "population": population},
        )
        return [row[0] for row in rows]

    def run_overview(self) -> pa.Table:
        """One row per run: description, classification figures, N, and its best (method,
        layer) by the headline metric, both from the same summary row (ties: the method first
        in the vocabulary, then the lower layer)."""
        metric = HEADLINE_METRIC
        return self._db.table(
            f"""
            WITH best AS (
                SELECT run, method AS best_method, layer AS best_layer, {metric} AS best_{metric}
                FROM summaries WHERE population = 'all' AND {metric} IS NOT NULL
                QUALIFY row_number() OVER (
                    PARTITION BY run ORDER BY {metric} DESC, {_METHOD_RANK}) = 1
            ), counted AS (SELECT run, count(*) AS n FROM predictions GROUP BY run)
            SELECT r.id, r.kind, r.model, r.corpus, r.split, r.layers, r.heads,
                   coalesce(c.n, 0) AS n,
                   TRY_CAST(json_extract(r.metrics, '$.accuracy') AS DOUBLE) AS accuracy,
                   TRY_CAST(json_extract(r.metrics, '$.f1') AS DOUBLE) AS f1,
                   b.best_method, b.best_layer, b.best_{metric}, r.started, r.finished
            FROM runs r LEFT JOIN best b ON b.run = r.id LEFT JOIN counted c ON c.run = r.id
            ORDER BY r.started, r.id
            """,
            {"methods": list(METHOD_NAMES)},
        )

    def method_matrix(self, metric: str = HEADLINE_METRIC, population: str = "all") -> pa.Table:
        """Per run and method, the best layer's mean of ``metric`` (the study's table): the
        highest, or the lowest where lower is better; ties go to the lower layer. ``n`` is that
        row's number of examples."""
        _check_metric(metric, population)
        direction = "ASC" if metric_info(metric).lower_is_better else "DESC"
        return self._db.table(
            f"""
            SELECT run, method, layer, {metric} AS value, n
            FROM summaries WHERE population = $population AND {metric} IS NOT NULL
            QUALIFY row_number() OVER (
                PARTITION BY run, method ORDER BY {metric} {direction}, layer) = 1
            ORDER BY run, method
            """,
            {"population": population},
        )

    def run_methods(self, run_id: str) -> pa.Table:
        """The (method, layer) pairs a run has outcomes for, scorable or not."""
        return self._db.table(
            "SELECT method, layer FROM slices WHERE run = $run ORDER BY method, layer",
            {"run": run_id},
        )

    # -- browsing: the TUI's examples list ---------------------------------------------------

    def _slice(self, f: ExampleFilter, *, every_layer: bool = False) -> dict[str, Any]:
        """The pieces of a filtered query over one (run, method, layer) slice of ``outcomes``
        (with ``every_layer``, over all the method's layers).

        ``where`` selects the slice and the example filters (kind, rationale size, text); the
        outcome and prediction conditions come apart so that bucket counts can vary one of them.
        Only the search reads ``examples``: a semi-join of the texts (or ids) that match.
        """
        params: dict[str, Any] = {"run": f.run, "method": f.method}
        where = ["o.run = $run", "o.method = $method"]
        if not every_layer:
            where.append("o.layer = $layer")
            params["layer"] = f.layer
        if f.kind:
            where.append("o.kind = $kind")
            params["kind"] = f.kind
        if f.rationale_range is not None:
            where.append("o.rationale_size BETWEEN $rmin AND $rmax")
            params["rmin"], params["rmax"] = f.rationale_range
        if f.search.strip():
            where.append(
                "o.example IN (SELECT id FROM examples WHERE corpus = $corpus"
                " AND (contains(lower(text), $search) OR contains(lower(id), $search)))"
            )
            params["corpus"] = self._run_corpus(f.run)
            params["search"] = f.search.strip().lower()
        return {
            "params": params,
            "where": " AND ".join(where),
            "outcome": {
                "any": "TRUE",
                "yes": f"o.{f.metric} IS TRUE",
                "no": f"o.{f.metric} IS FALSE",
                "unscorable": "NOT o.scorable",
            }[f.outcome],
            "prediction": PREDICTIONS[f.prediction],
        }

    def _run_corpus(self, run: str) -> str:
        row = self._db.one("SELECT corpus FROM runs WHERE id = $run", {"run": run})
        return row[0] if row else ""

    def bucket_counts(self, f: ExampleFilter) -> dict[str, int]:
        """Counts per outcome bucket and per prediction bucket under the other filters, in one
        pass over the slice.

        Outcome buckets honour the prediction filter and vice versa, so each count says what
        choosing that bucket would show; ``total`` is the number of rows the filter shows.
        """
        parts = self._slice(f)
        outcome, prediction = parts["outcome"], parts["prediction"]
        counts = {
            "interpretable": f"o.{f.metric} IS TRUE AND {prediction}",
            "not_interpretable": f"o.{f.metric} IS FALSE AND {prediction}",
            "unscorable": f"NOT o.scorable AND {prediction}",
            **{
                name: f"{outcome} AND {condition}"
                for name, condition in PREDICTIONS.items()
                if name != "any"
            },
            "total": f"{outcome} AND {prediction}",
        }
        select = ", ".join(f"count(*) FILTER (WHERE {c}) AS {n}" for n, c in counts.items())
        row = self._db.one(
            f"SELECT {select} FROM outcomes o WHERE {parts['where']}", parts["params"]
        )
        return {name: int(value or 0) for name, value in zip(counts, row or (), strict=True)}

    def interpretable_by_layer(self, f: ExampleFilter) -> dict[int, int]:
        """Interpretable examples at every layer of the filter's method, under its example and
        prediction filters (its layer, outcome and order aside), in one pass: the TUI list's
        per-layer line."""
        parts = self._slice(f, every_layer=True)
        rows = self._db.rows(
            f"""
            SELECT o.layer, count(*) FILTER (WHERE o.{f.metric} IS TRUE AND {parts["prediction"]})
            FROM outcomes o WHERE {parts["where"]} GROUP BY o.layer ORDER BY o.layer
            """,
            parts["params"],
        )
        return {int(layer): int(count) for layer, count in rows}

    def example_page(self, f: ExampleFilter, *, limit: int = 50, offset: int = 0) -> pa.Table:
        """One page of the filtered examples of a run, in the filter's order (ties by id).

        The page is cut from the outcomes slice alone; then only its rows fetch their
        probability (from predictions) and text (from examples), by id."""
        parts = self._slice(f)
        order = f"{'DESC' if f.descending else 'ASC'} NULLS LAST"
        keys = self._db.table(
            f"""
            SELECT o.example AS id, o.kind, o.rationale_size::INTEGER AS rationale, o.label,
                   o.pred, o.confidence, o.scorable, o.{f.metric} AS interpretable, o.jaccard,
                   o.auprc
            FROM outcomes o
            WHERE {parts["where"]} AND {parts["outcome"]} AND {parts["prediction"]}
            ORDER BY {SORTS[f.sort]} {order}, o.example
            LIMIT $limit OFFSET $offset
            """,
            {**parts["params"], "limit": int(limit), "offset": int(offset)},
        )
        ids = keys.column("id").to_pylist()
        if not ids:
            empty = pa.table({"id": pa.array([], pa.string())})
            return _page(keys, empty, empty, ids)
        probs = self._db.table(
            """
            SELECT example AS id, prob FROM predictions
            WHERE run = $run AND example IN (SELECT unnest($ids))
            """,
            {"run": f.run, "ids": ids},
        )
        # Two steps: matching ids reads the id column alone; fetching by rowid then reads the
        # words and text of those rows only (one join would read them for every example).
        rowids = self._db.table(
            "SELECT rowid FROM examples WHERE corpus = $corpus AND id IN (SELECT unnest($ids))",
            {"corpus": self._run_corpus(f.run), "ids": ids},
        )
        texts = self._db.table(
            """
            SELECT id, len(words) AS length, text FROM examples
            WHERE rowid IN (SELECT unnest($rowids))
            """,
            {"rowids": rowids.column(0).to_pylist()},
        )
        return _page(keys, probs, texts, ids)

    def filtered_batches(
        self, f: ExampleFilter, *, batch_rows: int = 8192
    ) -> Iterator[pa.RecordBatch]:
        """Every example the filter shows, with its run and model, prediction, outcomes, word
        scores and the model's top-k words (k = |R|, at least 1; ties to the earlier word, as
        the metrics rank), streamed for export in the filter's order."""
        parts = self._slice(f)
        params = {**parts["params"], "corpus": self._run_corpus(f.run)}
        metrics = ", ".join(f"o.{m}" for m in METRIC_NAMES)
        order = f"{'DESC' if f.descending else 'ASC'} NULLS LAST"
        ranked = "list_sort(list_transform(range(len(s.scores)), lambda i: {'key': -s.scores[i + 1], 'i': i}))"
        yield from self._db.batches(
            f"""
            SELECT o.run, r.model, o.example AS id, o.kind, e.text, e.words, e.rationale,
                   o.label, o.pred, p.prob, o.confidence, o.scorable, o.method, o.layer,
                   {metrics}, s.scores AS word_scores,
                   list_transform(list_slice({ranked}, 1, greatest(len(e.rationale), 1)),
                                  lambda x: e.words[x.i + 1]) AS top_k_words
            FROM outcomes o
            JOIN runs r ON r.id = $run
            JOIN predictions p ON p.run = $run AND p.example = o.example
            JOIN examples e ON e.corpus = $corpus AND e.id = o.example
            LEFT JOIN scores s ON s.run = $run AND s.example = o.example
                AND s.method = o.method AND s.layer = o.layer
            WHERE {parts["where"]} AND {parts["outcome"]} AND {parts["prediction"]}
            ORDER BY {SORTS[f.sort]} {order}, o.example
            """,
            params,
            batch_rows,
        )

    # -- one example -------------------------------------------------------------------------

    def example_detail(self, run_id: str, example: str) -> dict[str, Any] | None:
        """One example under one run: its words, rationale, prediction, heads grid and outcomes,
        plus a table of its word scores for every method and layer. None when not evaluated.

        Every table is filtered by the constant run and example, so each scan prunes to the row
        groups that can hold them."""
        params = {"run": run_id, "example": example}
        rows = self._db.table(
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
            params,
        ).to_pylist()
        if not rows:
            return None
        detail = rows[0]
        detail["scores"] = self._db.table(
            """
            SELECT s.method, s.layer, s.scores, o.top3, o.hit1, o.exact, o.jaccard50, o.jaccard,
                   o.auprc
            FROM scores s
            LEFT JOIN outcomes o ON o.run = $run AND o.example = $example
                 AND o.method = s.method AND o.layer = s.layer
            WHERE s.run = $run AND s.example = $example
            ORDER BY s.method, s.layer
            """,
            params,
        )
        return detail

    def example_across_runs(self, corpus: str, example: str, method: str, layer: int) -> pa.Table:
        """The same sentence under every evaluate run of its corpus: prediction and word scores
        for ``method`` at ``layer`` (or the run's last layer when it has fewer)."""
        return self._db.table(
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


def _check_metric(metric: str, population: str) -> None:
    if metric not in METRIC_NAMES or population not in POPULATIONS:
        raise ValueError(f"unknown metric {metric!r} or population {population!r}")


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
