"""The id sort is natural (issue 10, defect 12): numbers in ids compare as numbers, so the list
reads 2.1, 10.1, 10.2, 10.2/edited, 101.0 and not 10.1, 101.0, ..., 16.3. The key is stored with
each outcome row (schema 3), so sorting reads one column, as every other sort does."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb  # the v2 fixture is written with the old DDL, not through Store
import pytest
from test_store_migration import V1_DDL, columns
from test_tui_keys import open_examples, status
from textual.widgets import DataTable
from tui_fixture import RUNS, build_with_ids, settle

from engine.figures import Side
from engine.store import SCHEMA_VERSION, ExampleFilter, Store, StoreReader
from tui.app import EditlensApp

RUN = RUNS[0][0]
# In the order a reader expects; deliberately not lexical order, nor the order of ingest.
NATURAL = [
    "2.1",
    "5.1",
    "5.1/edited",
    "10.1",
    "10.2",
    "10.2/edited",
    "16.3",
    "101.0",
    "29865.6",
    "29865.6/edited",
    "a9",
    "a10",
    "b",
]
INGESTED = sorted(NATURAL, key=lambda i: (len(i) % 3, i[::-1]))  # a scrambled order


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert sorted(NATURAL) != NATURAL and INGESTED != NATURAL  # the test could fail
    return build_with_ids(tmp_path_factory.mktemp("natural") / "store.duckdb", INGESTED)


def listed(db: Path, **changes: object) -> list[str]:
    with StoreReader(db) as reader:
        page = reader.example_page(ExampleFilter(run=RUN, **changes), limit=100)
    return page.column("id").to_pylist()


def test_ids_sort_naturally_numbers_as_numbers_and_a_twin_after_its_original(db: Path) -> None:
    assert listed(db) == NATURAL
    assert listed(db, descending=True) == NATURAL[::-1]


def test_a_compare_cell_lists_its_examples_in_the_same_natural_order(db: Path) -> None:
    a, b = Side(RUN, "attention", 6), Side(RUN, "attention", 1)
    with StoreReader(db) as reader:
        for cell in ((True, True), (True, False), (False, True), (False, False)):
            ids = reader.compare_page(a, b, "top3", cell, limit=100).column("id").to_pylist()
            assert ids == [i for i in NATURAL if i in ids]


def test_ids_that_differ_only_in_leading_zeros_tie_and_the_id_breaks_the_tie(
    tmp_path: Path,
) -> None:
    ids = ["7.10", "7.010", "7.9", "7.0010"]
    sorted_ids = listed(build_with_ids(tmp_path / "zeros.duckdb", ids))
    assert sorted_ids == ["7.9", "7.0010", "7.010", "7.10"]


async def test_the_tui_list_sorted_by_id_shows_the_natural_order(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_examples(pilot)
        table = screen.query_one("#table", DataTable)
        await pilot.press("s")  # away from the id sort, then round the cycle back to it
        await settle(pilot)
        assert screen.filters.sort != "id"
        while screen.filters.sort != "id":
            await pilot.press("s")
            await settle(pilot)
        assert "sort id ↑" in status(screen)
        assert [key.value for key in table.rows] == NATURAL
        await pilot.press("S")
        await settle(pilot)
        assert "sort id ↓" in status(screen)
        assert [key.value for key in table.rows] == NATURAL[::-1]


def test_export_sorted_by_id_gives_the_lists_order(db: Path, tmp_path: Path, editlens) -> None:
    out = tmp_path / "sorted.jsonl"
    done = editlens("export", "--run", RUN, "--sort", "id", "--out", out, "--db", db)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == NATURAL


# -- the upgrade from schema 2 --------------------------------------------------------------

# Schema 2 is schema 1 and the slices table (engine/store/schema.py's version history).
V2_DDL = (
    V1_DDL.replace("'schema_version', '1'", "'schema_version', '2'")
    + """
CREATE TABLE slices (
    run VARCHAR NOT NULL, method VARCHAR NOT NULL, layer SMALLINT NOT NULL,
    examples INTEGER NOT NULL, scorable INTEGER NOT NULL
);
INSERT INTO slices VALUES ('r1', 'attention', 6, 2, 1), ('r1', 'grad', 0, 1, 0);
UPDATE examples SET id = '10.1' WHERE id = '1.2';
UPDATE predictions SET example = '10.1' WHERE example = '1.2';
UPDATE outcomes SET example = '10.1' WHERE example = '1.2';
INSERT INTO examples VALUES
    ('small', '9.1', 'test', 'E f.', ['E', 'f', '.'], [0, 2, 3], [1, 3, 4], true, [1], 'deleted');
INSERT INTO predictions VALUES ('r1', '9.1', true, 0.7, true, 0.7, 3, true);
INSERT INTO outcomes (run, method, layer, example, label, pred, confidence, kind,
                      rationale_size, seen_words, scorable, top3) VALUES
    ('r1', 'attention', 6, '9.1', true, true, 0.7, 'deleted', 1, 3, true, false);
"""
)


def test_upgrading_a_schema_2_store_fills_the_sort_key_of_every_outcome(tmp_path: Path) -> None:
    path = tmp_path / "v2.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(V2_DDL)
    assert "sort_key" not in columns(path, "outcomes")
    Store(path).close()
    with duckdb.connect(str(path), read_only=True) as con:
        keys = con.execute("SELECT example, method, sort_key FROM outcomes ORDER BY ALL").fetchall()
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),) and SCHEMA_VERSION == 3
    assert keys == [
        ("1.1", "attention", "011.011"),
        ("10.1", "attention", "0210.011"),
        ("10.1", "grad", "0210.011"),
        ("9.1", "attention", "019.011"),
    ]
    with StoreReader(path) as reader:  # 9.1 before 10.1, where lexical order had it last
        page = reader.example_page(ExampleFilter(run="r1", method="attention", layer=6))
    assert page.column("id").to_pylist() == ["1.1", "9.1", "10.1"]
