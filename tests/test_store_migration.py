"""Schema upgrades: an older store opened for writing gains what this version adds, keeps its
data and is stamped; opened read-only it is refused with what to run, never called empty."""

from __future__ import annotations

from pathlib import Path

import duckdb  # the fixture is written with the old DDL, not through Store
import pytest
from store_snapshot import snapshot

from engine.store import SCHEMA_VERSION, Store, StoreError, StoreReader, schema
from engine.vocabulary import METRICS, MetricInfo

# The schema as editlens 1 wrote it (engine/store.py at 22e38ff), copied so the test does not
# depend on today's code.
V1_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    corpus VARCHAR NOT NULL, id VARCHAR NOT NULL, split VARCHAR NOT NULL, text VARCHAR NOT NULL,
    words VARCHAR[] NOT NULL, starts INTEGER[] NOT NULL, ends INTEGER[] NOT NULL,
    label BOOLEAN NOT NULL, rationale INTEGER[] NOT NULL, kind VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, model VARCHAR NOT NULL,
    checkpoint VARCHAR NOT NULL, corpus VARCHAR NOT NULL, split VARCHAR NOT NULL,
    layers SMALLINT NOT NULL, heads SMALLINT NOT NULL, config JSON NOT NULL,
    metrics JSON NOT NULL, started TIMESTAMP NOT NULL, finished TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL, label BOOLEAN NOT NULL,
    prob DOUBLE NOT NULL, pred BOOLEAN NOT NULL, confidence DOUBLE NOT NULL,
    seen_words INTEGER NOT NULL, scorable BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL, method VARCHAR NOT NULL,
    layer SMALLINT NOT NULL, scores FLOAT[] NOT NULL
);
CREATE TABLE IF NOT EXISTS heads (
    run VARCHAR NOT NULL, example VARCHAR NOT NULL, grid FLOAT[] NOT NULL, last FLOAT[] NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL, example VARCHAR NOT NULL,
    label BOOLEAN NOT NULL, pred BOOLEAN NOT NULL, confidence DOUBLE NOT NULL,
    kind VARCHAR NOT NULL, rationale_size SMALLINT NOT NULL, seen_words INTEGER NOT NULL,
    scorable BOOLEAN NOT NULL,
    exact BOOLEAN, top3 BOOLEAN, hit1 BOOLEAN, jaccard FLOAT, jaccard50 BOOLEAN, token_f1 FLOAT,
    auprc FLOAT, comprehensiveness FLOAT, sufficiency FLOAT
);
CREATE TABLE IF NOT EXISTS summaries (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL,
    population VARCHAR NOT NULL, n INTEGER NOT NULL,
    exact DOUBLE, top3 DOUBLE, hit1 DOUBLE, jaccard DOUBLE, jaccard50 DOUBLE, token_f1 DOUBLE,
    auprc DOUBLE, comprehensiveness DOUBLE, sufficiency DOUBLE
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO examples VALUES
    ('small', '1.1', 'test', 'A b.', ['A', 'b', '.'], [0, 2, 3], [1, 3, 4], true, [1], 'deleted'),
    ('small', '1.2', 'test', 'C d.', ['C', 'd', '.'], [0, 2, 3], [1, 3, 4], true, [], 'none');
INSERT INTO runs VALUES ('r1', 'evaluate', 'minilm', 'minilm', 'small', 'test', 6, 12,
    '{"methods": ["attention", "grad"]}', '{"accuracy": 0.5}',
    '2024-01-01 12:00:00', '2024-01-01 12:05:00');
INSERT INTO predictions VALUES ('r1', '1.1', true, 0.9, true, 0.9, 3, true),
                               ('r1', '1.2', true, 0.2, false, 0.8, 3, false);
INSERT INTO outcomes (run, method, layer, example, label, pred, confidence, kind,
                      rationale_size, seen_words, scorable, top3, sufficiency) VALUES
    ('r1', 'attention', 6, '1.1', true, true, 0.9, 'deleted', 1, 3, true, true, 0.25),
    ('r1', 'attention', 6, '1.2', true, false, 0.8, 'none', 0, 3, false, NULL, NULL),
    ('r1', 'grad', 0, '1.2', true, false, 0.8, 'none', 0, 3, false, NULL, NULL);
INSERT INTO summaries (run, method, layer, population, n, top3, sufficiency) VALUES
    ('r1', 'attention', 6, 'all', 1, 1.0, 0.25), ('r1', 'attention', 6, 'flagged', 1, 1.0, 0.25);
"""


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(V1_DDL)
    return path


def columns(path: Path, table: str) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
        ).fetchall()
    return [row[0] for row in rows]


def test_an_older_store_opened_for_writing_is_upgraded_and_keeps_its_data(v1_store: Path) -> None:
    before = snapshot(v1_store)
    Store(v1_store).close()
    after = snapshot(v1_store)
    assert after["meta"] == [("schema_version", str(SCHEMA_VERSION))]
    for table, rows in before.items():  # added columns come last, empty
        if table != "meta":
            assert [row[: len(rows[0])] for row in after[table]] == rows
    assert columns(v1_store, "slices") == ["run", "method", "layer", "examples", "scorable"]
    # filled from outcomes: a method with no scorable example is listed too
    assert after["slices"] == [("r1", "attention", 6, 2, 1), ("r1", "grad", 0, 1, 0)]
    with StoreReader(v1_store) as reader:
        assert reader.run_methods("r1").to_pylist() == [
            {"method": "attention", "layer": 6},
            {"method": "grad", "layer": 0},
        ]
        assert [c.name for c in reader.corpora()] == ["small"]


def test_an_older_store_opened_read_only_says_how_to_upgrade_and_is_left_alone(
    v1_store: Path,
) -> None:
    before = snapshot(v1_store)
    for open_it in (lambda: StoreReader(v1_store), lambda: Store(v1_store, read_only=True)):
        with pytest.raises(StoreError) as caught:
            open_it()
        message = str(caught.value)
        assert message.startswith(f"{v1_store}: store schema 1 is older than this editlens")
        assert "editlens info --upgrade" in message
        assert "empty" not in message
    assert snapshot(v1_store) == before
    Store(v1_store).close()  # a refused reader did not keep the file locked


def test_a_metric_added_to_the_vocabulary_adds_its_columns_to_an_existing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.duckdb"
    Store(path).close()
    assert "deletion_auc" not in columns(path, "outcomes")
    added = MetricInfo("deletion_auc", "deletion AUC", "faithfulness", False, lower_is_better=True)
    monkeypatch.setattr(schema, "METRICS", (*METRICS, added))
    with pytest.raises(StoreError, match="no column for the metrics deletion_auc"):
        StoreReader(path)
    Store(path).close()
    assert columns(path, "outcomes")[-1] == "deletion_auc"
    assert columns(path, "summaries")[-1] == "deletion_auc"
    StoreReader(path).close()
    with duckdb.connect(str(path), read_only=True) as con:
        kinds = con.execute(
            "SELECT table_name, data_type FROM duckdb_columns() WHERE column_name = 'deletion_auc'"
            " ORDER BY table_name"
        ).fetchall()
    assert kinds == [("outcomes", "FLOAT"), ("summaries", "DOUBLE")]


def test_the_schema_has_a_column_for_every_metric_of_the_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    Store(path).close()
    for table in ("outcomes", "summaries"):
        assert set(columns(path, table)) >= {m.name for m in METRICS}


def test_editlens_info_upgrade_is_the_way_out_that_the_refusal_names(
    v1_store: Path, editlens
) -> None:
    refused = editlens("info", "--db", v1_store)
    assert refused.returncode != 0
    assert "editlens info --upgrade" in refused.stderr
    upgraded = editlens("info", "--db", v1_store, "--upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "small" in upgraded.stdout
    assert snapshot(v1_store)["meta"] == [("schema_version", str(SCHEMA_VERSION))]
