"""Read-only queries behind the TUI's analysis screens: compare two (run, method, layer) slices,
metric values grouped for charts, a run's populations, per-head rows, minimal pairs, and
examples by id (pins).

A mixin of ``Store`` and ``StoreReader``, like ``browse.ResultReads``: every query goes through
``self._db``, so connection handling (a reader holds the file only per query) and the one error
path stay in ``engine.store.connection``. User input reaches SQL only as $parameters; metric and
grouping names come from the allow-lists here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from engine.corpus import EDITED_SUFFIX
from engine.store.connection import Database
from engine.vocabulary import BROWSE_METRICS, METRIC_NAMES, POPULATIONS

# What a chart groups one slice's outcomes by: (SQL expression, column name) pairs. Never user text.
GROUPINGS = {
    "layer": (("method", "method"), ("layer", "layer")),
    "kind": (("kind", "kind"),),
    "rationale": (("least(rationale_size, 3)::INTEGER", "rationale"),),
}


@dataclass(frozen=True)
class Side:
    """One arm of a comparison: a run's outcomes under one method at one layer."""

    run: str
    method: str
    layer: int


def _check_metric(metric: str) -> None:
    if metric not in BROWSE_METRICS:
        raise ValueError(f"unknown yes/no metric {metric!r}; use one of {BROWSE_METRICS}")


_PAIRED = """
    FROM outcomes a JOIN outcomes b
      ON b.run = $brun AND b.method = $bmethod AND b.layer = $blayer AND b.example = a.example
    WHERE a.run = $arun AND a.method = $amethod AND a.layer = $alayer
      AND a.{metric} IS NOT NULL AND b.{metric} IS NOT NULL
"""


def _paired_params(a: Side, b: Side) -> dict[str, Any]:
    return {
        "arun": a.run, "amethod": a.method, "alayer": a.layer,
        "brun": b.run, "bmethod": b.method, "blayer": b.layer,
    }  # fmt: skip


def twin_id(example: str) -> str:
    """The other half of a minimal pair: ``<id>/edited`` for a sentence, ``<id>`` for a twin."""
    if example.endswith(EDITED_SUFFIX):
        return example[: -len(EDITED_SUFFIX)]
    return example + EDITED_SUFFIX


class AnalysisReads:
    """The analysis screens' queries; all read-only."""

    _db: Database

    def _same_corpus(self, a: Side, b: Side) -> bool:
        corpora = self._db.table(
            "SELECT count(DISTINCT corpus) AS corpora, count(*) AS runs FROM runs"
            " WHERE id IN ($a, $b)",
            {"a": a.run, "b": b.run},
        ).to_pylist()[0]
        return corpora["corpora"] == 1 and corpora["runs"] == (1 if a.run == b.run else 2)

    def compare_cells(self, a: Side, b: Side, metric: str) -> dict[tuple[bool, bool], int]:
        """Counts of the examples scorable under both sides, by (yes under A, yes under B).

        Two runs of different corpora share no examples (ids mean nothing across corpora): all 0."""
        _check_metric(metric)
        cells = {(x, y): 0 for x in (True, False) for y in (True, False)}
        if not self._same_corpus(a, b):
            return cells
        rows = self._db.table(
            f"SELECT a.{metric} AS a, b.{metric} AS b, count(*) AS n "
            + _PAIRED.format(metric=metric)
            + " GROUP BY ALL",
            _paired_params(a, b),
        ).to_pylist()
        for row in rows:
            cells[(row["a"], row["b"])] = row["n"]
        return cells

    def paired_values(self, a: Side, b: Side, metric: str) -> tuple[list[float], list[float]]:
        """One metric under both sides on the examples scorable under both, in id order: what
        a paired bootstrap or McNemar test takes (booleans as 0/1)."""
        if metric not in METRIC_NAMES:
            raise ValueError(f"unknown metric {metric!r}; use one of {METRIC_NAMES}")
        if not self._same_corpus(a, b):
            return [], []
        rows = self._db.rows(
            f"SELECT a.{metric}::DOUBLE, b.{metric}::DOUBLE "
            + _PAIRED.format(metric=metric)
            + " ORDER BY a.example",
            _paired_params(a, b),
        )
        return [row[0] for row in rows], [row[1] for row in rows]

    def compare_page(
        self,
        a: Side,
        b: Side,
        metric: str,
        cell: tuple[bool, bool],
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> pa.Table:
        """One page (by id) of the examples in one cell: id, kind, rationale size, gold label, the
        two sides' predictions, and the text."""
        _check_metric(metric)
        if not self._same_corpus(a, b):
            return pa.table({"id": pa.array([], pa.string())})
        return self._db.table(
            f"""
            WITH cell AS (
                SELECT a.example AS id, a.kind, a.rationale_size::INTEGER AS rationale, a.label,
                       a.pred AS a_pred, b.pred AS b_pred, a.sort_key
                {_PAIRED.format(metric=metric)}
                  AND a.{metric} = $ayes AND b.{metric} = $byes
                ORDER BY a.sort_key, a.example LIMIT $limit OFFSET $offset
            )
            SELECT cell.* EXCLUDE (sort_key), e.text FROM cell
            JOIN examples e ON e.corpus = (SELECT corpus FROM runs WHERE id = $arun) AND e.id = cell.id
            ORDER BY cell.sort_key, cell.id
            """,
            {
                **_paired_params(a, b),
                "ayes": cell[0],
                "byes": cell[1],
                "limit": int(limit),
                "offset": int(offset),
            },
        )

    def grouped_values(
        self,
        run: str,
        metric: str,
        population: str,
        by: str,
        *,
        method: str | None = None,
        layer: int | None = None,
        cap: int = 20_000,
    ) -> list[dict[str, Any]]:
        """Per group of one run's scorable outcomes: N, the mean of ``metric``, and the values
        themselves when N <= ``cap`` (for a bootstrap; a larger group gives the mean alone).

        ``by`` is "layer" (every method and layer of the run), "kind" or "rationale" (size, 3 = 3 or
        more) within one ``method`` and ``layer``."""
        _check_metric(metric)
        if population not in POPULATIONS or by not in GROUPINGS:
            raise ValueError(f"unknown population {population!r} or grouping {by!r}")
        params: dict[str, Any] = {"run": run, "population": population}
        where = (
            f"run = $run AND scorable AND {metric} IS NOT NULL AND ($population = 'all' OR pred)"
        )
        if by != "layer":
            where += " AND method = $method AND layer = $layer"
            params.update(method=method, layer=layer)
        grouping = GROUPINGS[by]
        columns = ", ".join(f"{expression} AS {name}" for expression, name in grouping)
        groups = self._db.table(
            f"""
            SELECT {columns}, count(*) AS n, avg({metric}::DOUBLE) AS mean
            FROM outcomes WHERE {where}
            GROUP BY ALL ORDER BY ALL
            """,
            params,
        ).to_pylist()
        # Then the values, of the groups within the cap only: listing a million values per
        # group would take longer than the counting, for nothing.
        names = [name for _, name in grouping]
        small = ["/".join(str(row[name]) for name in names) for row in groups if row["n"] <= cap]
        found: dict[str, list[float]] = {}
        if small:
            key = "concat_ws('/', " + ", ".join(e for e, _ in grouping) + ")"
            found = {
                row["key"]: row["values"]
                for row in self._db.table(
                    f"""
                    SELECT {key} AS key, list({metric}::DOUBLE) AS "values"
                    FROM outcomes WHERE {where} AND list_contains($small, {key})
                    GROUP BY ALL
                    """,
                    {**params, "small": small},
                ).to_pylist()
            }
        for row in groups:
            row["values"] = found.get("/".join(str(row[name]) for name in names))
        return groups

    def run_populations(self, run: str) -> dict[str, int]:
        """How many examples a run evaluated, how many need an edit, how many are scorable, and how
        many of those the model flags (the 'flagged' population)."""
        row = self._db.table(
            """
            SELECT count(*) AS evaluated, count(*) FILTER (WHERE label) AS needs_edit,
                   count(*) FILTER (WHERE scorable) AS all,
                   count(*) FILTER (WHERE scorable AND pred) AS flagged,
                   count(*) FILTER (WHERE pred) AS predicted_edit
            FROM predictions WHERE run = $run
            """,
            {"run": run},
        ).to_pylist()[0]
        return {name: int(value or 0) for name, value in row.items()}

    def head_rows(self, run: str, example: str) -> dict[str, Any] | None:
        """An example's words and rationale with the run's per-head attention: the layer x head
        grid (share on the rationale) and the last layer's [CLS] row of every head over the words
        (``last``: heads x seen words, row-major). None when the run did not evaluate it."""
        rows = self._db.table(
            """
            SELECT e.id, e.words, e.rationale, p.seen_words, r.layers, r.heads, r.model,
                   h.grid, h.last
            FROM runs r
            JOIN predictions p ON p.run = $run AND p.example = $example
            JOIN examples e ON e.corpus = r.corpus AND e.id = $example
            LEFT JOIN heads h ON h.run = $run AND h.example = $example
            WHERE r.id = $run
            """,
            {"run": run, "example": example},
        ).to_pylist()
        return rows[0] if rows else None

    def pair_rows(self, run: str, example: str, method: str, layer: int) -> list[dict[str, Any]]:
        """A sentence and its edited twin (original first) under one run: words, rationale, gold
        label, prediction and the word scores of ``method`` at ``layer``. Either may be missing."""
        ids = sorted({example, twin_id(example)}, key=lambda i: i.endswith(EDITED_SUFFIX))
        return self._db.table(
            """
            SELECT e.id, e.words, e.rationale, e.label, e.kind, p.pred, p.prob, p.seen_words,
                   s.scores
            FROM runs r
            JOIN examples e ON e.corpus = r.corpus AND e.id IN (SELECT unnest($ids))
            LEFT JOIN predictions p ON p.run = $run AND p.example = e.id
            LEFT JOIN scores s ON s.run = $run AND s.example = e.id AND s.method = $method
                 AND s.layer = $layer
            WHERE r.id = $run
            ORDER BY e.id LIKE '%' || $suffix
            """,
            {"run": run, "ids": ids, "method": method, "layer": layer, "suffix": EDITED_SUFFIX},
        ).to_pylist()

    def examples_by_id(self, run: str, method: str, layer: int, ids: Sequence[str]) -> pa.Table:
        """The given examples under one run, method and layer, in the order of ``ids`` (ids the run
        did not evaluate are left out): one record each, as an export writes it (text, words, gold
        rationale, prediction, every outcome metric, word scores). For short id lists (pins)."""
        metrics = ", ".join(f"o.{name}" for name in METRIC_NAMES)
        return self._db.table(
            f"""
            SELECT o.example AS id, r.model, o.kind, e.text, e.words, e.rationale, o.label, o.pred,
                   p.prob, o.confidence, o.scorable, o.method, o.layer, {metrics}, s.scores
            FROM runs r
            JOIN outcomes o ON o.run = r.id AND o.method = $method AND o.layer = $layer
                 AND o.example IN (SELECT unnest($ids))
            JOIN examples e ON e.corpus = r.corpus AND e.id = o.example
            JOIN predictions p ON p.run = r.id AND p.example = o.example
            LEFT JOIN scores s ON s.run = r.id AND s.example = o.example AND s.method = $method
                 AND s.layer = $layer
            WHERE r.id = $run
            ORDER BY list_position($ids, o.example)
            """,
            {"run": run, "method": method, "layer": layer, "ids": list(ids)},
        )
