"""The DuckDB store: schema version, idempotent ingest, refusals, all-or-nothing writes, runs."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import duckdb  # tests read and tamper with store files directly; the engine goes through Store
import pyarrow as pa
import pytest
from store_snapshot import snapshot

from engine.corpus import Example
from engine.ingest import ingest
from engine.store import SCHEMA_VERSION, Run, Store, StoreError, examples_to_arrow

XML = """<xml>
<sentence sid="1.1">We show<del>,</del> that the method works.</sentence>
<sentence sid="1.2">The <del>algoritm</del><ins>algorithm</ins> converges.</sentence>
<sentence sid="1.3">We use<ins> the</ins> method.</sentence>
<sentence sid="1.4">Nothing to change here.</sentence>
</xml>
"""


def example(id: str, text: str = "A b.", split: str = "train") -> Example:
    return Example(
        id=id,
        text=text,
        words=("A", "b", "."),
        starts=(0, 2, 3),
        ends=(1, 3, 4),
        label=True,
        rationale=(1,),
        kind="deleted",
        split=split,
    )


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.xml"
    path.write_text(XML, encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


def test_a_new_store_records_its_schema_version(db: Path) -> None:
    Store(db).close()
    assert snapshot(db)["meta"] == [("schema_version", str(SCHEMA_VERSION))]


def test_a_store_can_be_reopened_read_only(db: Path, corpus_file: Path) -> None:
    with Store(db) as store:
        ingest(store, corpus_file)
    with Store(db, read_only=True) as store:
        assert [c.name for c in store.corpora()] == ["small"]


def test_reingesting_the_same_file_is_idempotent(db: Path, corpus_file: Path) -> None:
    with Store(db) as store:
        first = ingest(store, corpus_file)
    before = snapshot(db)
    with Store(db) as store:
        second = ingest(store, corpus_file)
        assert store.count_examples("small") == 4
    assert first.rows == second.rows == 4
    assert snapshot(db) == before


def test_the_ingested_rows_hold_what_the_reader_made(db: Path, corpus_file: Path) -> None:
    with Store(db) as store:
        ingest(store, corpus_file, split="dev")
        rows = [r for batch in store.example_batches("small") for r in batch.to_pylist()]
    assert [(r["id"], r["split"], r["label"], r["kind"], r["rationale"]) for r in rows] == [
        ("1.1", "dev", True, "deleted", [2]),
        ("1.2", "dev", True, "spelling", [1]),
        ("1.3", "dev", True, "inserted", [1, 2]),
        ("1.4", "dev", False, "none", []),
    ]
    assert rows[0]["words"] == ["We", "show", ",", "that", "the", "method", "works", "."]
    assert rows[0]["starts"][:3] == [0, 3, 7]


def test_a_second_corpus_lives_beside_the_first(db: Path, corpus_file: Path) -> None:
    with Store(db) as store:
        ingest(store, corpus_file)
        ingest(store, corpus_file, corpus="again")
        corpora = {c.name: c for c in store.corpora()}
        assert store.count_examples("small") == store.count_examples("again") == 4
    assert sorted(corpora) == ["again", "small"]
    assert corpora["small"].needs_edit == 3
    assert corpora["small"].by_kind == {"deleted": 1, "spelling": 1, "inserted": 1, "none": 1}
    assert corpora["again"] == dataclasses.replace(corpora["small"], name="again")


def test_a_store_with_a_newer_schema_is_refused_with_a_clear_error(db: Path) -> None:
    Store(db).close()
    con = duckdb.connect(str(db))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    before = snapshot(db)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="newer than this editlens understands") as caught:
            Store(db, read_only=read_only)
        assert str(db) in str(caught.value)
    assert snapshot(db) == before


def test_a_file_that_is_not_duckdb_is_refused_and_left_alone(db: Path) -> None:
    db.write_bytes(b"these are not the bytes of a database\n" * 100)
    before = db.read_bytes()
    with pytest.raises(StoreError, match="not a DuckDB file") as caught:
        Store(db)
    assert str(caught.value).startswith(str(db))
    assert db.read_bytes() == before


def test_a_duckdb_file_of_another_program_is_refused(db: Path) -> None:
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE other (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not an editlens store"):
        Store(db)
    assert snapshot(db) == {"other": []}


def test_opening_a_missing_store_read_only_says_what_to_do(db: Path) -> None:
    with pytest.raises(StoreError, match="no store here"):
        Store(db, read_only=True)
    assert not db.exists()


def test_a_duplicate_id_is_refused_and_leaves_the_store_as_it_was(
    db: Path, corpus_file: Path
) -> None:
    with Store(db) as store:
        ingest(store, corpus_file)
    before = snapshot(db)
    batches = [
        examples_to_arrow("small", [example("9.1"), example("1.1", "changed.")]),
        examples_to_arrow("small", [example("9.2"), example("9.1")]),
    ]
    with Store(db) as store, pytest.raises(StoreError, match=r"9\.1 occurs twice"):
        store.write_examples("small", batches)
    assert snapshot(db) == before


def test_a_failure_half_way_through_the_batches_writes_nothing(db: Path, corpus_file: Path) -> None:
    with Store(db) as store:
        ingest(store, corpus_file)
    before = snapshot(db)

    def batches():
        yield examples_to_arrow("small", [example("1.1", "changed."), example("8.1")])
        raise RuntimeError("the reader failed")

    with Store(db) as store, pytest.raises(RuntimeError):
        store.write_examples("small", batches())
    assert snapshot(db) == before


# -- runs --------------------------------------------------------------------------------------

RUN_ID = "eval-1"


def make_run(run_id: str = RUN_ID) -> Run:
    return Run(
        id=run_id,
        kind="evaluate",
        model="minilm",
        checkpoint="minilm",
        corpus="small",
        split="test",
        layers=6,
        heads=12,
        config={"batch": 8},
        metrics={"accuracy": 0.5},
        started=datetime(2024, 1, 1, 12, 0, 0),
        finished=datetime(2024, 1, 1, 12, 5, 0),
    )


def run_tables(run_id: str = RUN_ID) -> dict[str, pa.Table]:
    examples = ["1.1", "1.2", "1.3"]
    return {
        "predictions": pa.table(
            {
                "run": [run_id] * 3,
                "example": examples,
                "label": [True, True, True],
                "prob": [0.9, 0.8, 0.2],
                "pred": [True, True, False],
                "confidence": [0.9, 0.8, 0.8],
                "seen_words": [8, 4, 4],
                "scorable": [True, True, True],
            }
        ),
        "scores": pa.table(
            {
                "run": [run_id] * 3,
                "example": examples,
                "method": ["attention"] * 3,
                "layer": pa.array([6, 6, 6], pa.int16()),
                "scores": [[0.1] * 8, [0.2] * 4, [0.3] * 4],
            }
        ),
        "outcomes": pa.table(
            {
                "run": [run_id] * 3,
                "example": examples,
                "method": ["attention"] * 3,
                "layer": pa.array([6, 6, 6], pa.int16()),
                "label": [True, True, True],
                "pred": [True, True, False],
                "confidence": [0.9, 0.8, 0.8],
                "kind": ["deleted"] * 3,
                "rationale_size": pa.array([1, 1, 2], pa.int16()),
                "seen_words": [8, 4, 4],
                "scorable": [True, True, True],
                "top3": [True, False, True],
                "jaccard": [1.0, 0.0, 0.5],
            }
        ),
    }


def write_staging(path: Path, run_id: str = RUN_ID) -> None:
    with Store(path) as staging:
        staging.write_chunk(run_tables(run_id))
        staging.record_run(make_run(run_id))


def test_merge_run_publishes_every_row_of_a_staged_run_at_once(tmp_path: Path, db: Path) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging)
    with Store(db) as store:
        assert store.runs() == []
        store.merge_run(staging, RUN_ID)
        assert store.runs() == [make_run()]
        assert store.count_done(RUN_ID) == 3
    content = snapshot(db)
    assert len(content["predictions"]) == len(content["scores"]) == len(content["outcomes"]) == 3


def test_merging_a_run_writes_its_summaries_by_population(tmp_path: Path, db: Path) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging)
    with Store(db) as store:
        store.merge_run(staging, RUN_ID)
        rows = store.summaries().to_pylist()
    by_population = {row["population"]: row for row in rows}
    assert sorted(by_population) == ["all", "flagged"]
    every, flagged = by_population["all"], by_population["flagged"]
    assert (every["run"], every["model"], every["method"], every["layer"]) == (
        RUN_ID, "minilm", "attention", 6,
    )  # fmt: skip
    assert (every["n"], flagged["n"]) == (3, 2)
    assert every["top3"] == pytest.approx(2 / 3)
    assert flagged["top3"] == pytest.approx(1 / 2)
    assert flagged["jaccard"] == pytest.approx(0.5)
    assert every["exact"] is None


def test_merging_the_same_run_twice_replaces_it(tmp_path: Path, db: Path) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging)
    with Store(db) as store:
        store.merge_run(staging, RUN_ID)
    once = snapshot(db)
    with Store(db) as store:
        store.merge_run(staging, RUN_ID)
    assert snapshot(db) == once


def test_merge_run_takes_only_the_named_run(tmp_path: Path, db: Path) -> None:
    staging = tmp_path / "staging.duckdb"
    with Store(staging) as store:
        for run_id in ("a", "b"):
            store.write_chunk(run_tables(run_id))
            store.record_run(make_run(run_id))
    with Store(db) as store:
        store.merge_run(staging, "b")
        assert [run.id for run in store.runs()] == ["b"]
        assert store.count_done("a") == 0


def test_a_merge_that_fails_half_way_publishes_nothing(tmp_path: Path, db: Path) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging)
    con = duckdb.connect(str(staging))
    con.execute("DROP TABLE outcomes")  # predictions and scores copy, then outcomes fails
    con.close()
    with Store(db) as store:
        store.write_chunk({})
    before = snapshot(db)
    with Store(db) as store, pytest.raises(StoreError, match="cannot merge run"):
        store.merge_run(staging, RUN_ID)
    assert snapshot(db) == before


def test_write_chunk_refuses_a_table_that_is_not_a_run_table(db: Path) -> None:
    with Store(db) as store, pytest.raises(ValueError, match="not run tables"):
        store.write_chunk({"examples": pa.table({"x": [1]})})


def test_chunks_written_behind_land_as_written_in_front_while_reads_go_on(
    tmp_path: Path, db: Path
) -> None:
    in_front, behind = tmp_path / "front.duckdb", tmp_path / "behind.duckdb"
    with Store(in_front) as store:
        for run_id in ("a", "b", "c"):
            store.write_chunk(run_tables(run_id))
    with Store(behind) as store:
        with store.chunks_written_behind() as write:
            for run_id in ("a", "b", "c"):
                write(run_tables(run_id))
                store.count_done(run_id)  # this connection reads while the chunk is written
        assert [store.count_done(run_id) for run_id in ("a", "b", "c")] == [3, 3, 3]
    assert snapshot(behind) == snapshot(in_front)


def test_a_chunk_written_behind_that_fails_is_a_store_error_in_the_caller(db: Path) -> None:
    broken = run_tables("a")
    broken["scores"] = broken["scores"].drop_columns(["layer"])  # NOT NULL: the insert fails
    with Store(db) as store:
        with pytest.raises(StoreError, match=str(db)), store.chunks_written_behind() as write:
            write(run_tables("ok"))
            write(broken)
        assert store.count_done("ok") == 3  # the chunk before it landed
        assert store.count_done("a") == 0  # the failed one left nothing


@pytest.mark.parametrize("content", [None, b"not a database\n"], ids=["missing", "not-duckdb"])
def test_merging_from_an_unusable_staging_file_is_a_store_error(
    tmp_path: Path, db: Path, content: bytes | None
) -> None:
    staging = tmp_path / "staging.duckdb"
    if content is not None:
        staging.write_bytes(content)
    with Store(db) as store:
        before = store.runs()
        with pytest.raises(StoreError, match="staging"):
            store.merge_run(staging, RUN_ID)
        assert store.runs() == before


# -- resuming a job ----------------------------------------------------------------------------


def pending_ids(store: Store, **options: object) -> list[list[str]]:
    return [
        t.column("id").to_pylist()
        for t in store.pending_example_batches("small", RUN_ID, **options)  # type: ignore[arg-type]
    ]


def test_pending_examples_skip_the_done_ones_page_by_page(db: Path) -> None:
    ids = [f"1.{i}" for i in range(1, 8)]
    with Store(db) as store:
        store.write_examples("small", [examples_to_arrow("small", [example(i) for i in ids])])
        assert pending_ids(store, rows=3) == [["1.1", "1.2", "1.3"], ["1.4", "1.5", "1.6"], ["1.7"]]
        store.write_chunk({"predictions": run_tables()["predictions"]})  # 1.1, 1.2, 1.3 done
        assert pending_ids(store, rows=3) == [["1.4", "1.5", "1.6"], ["1.7"]]
        assert pending_ids(store, rows=3, limit=5) == [["1.4", "1.5"]]


def test_pending_examples_see_chunks_written_between_pages_as_done(db: Path) -> None:
    ids = ["1.1", "1.2", "1.3", "1.4"]
    with Store(db) as store:
        store.write_examples(
            "small",
            [
                examples_to_arrow(
                    "small", [example(i, split="test" if i != "1.2" else "dev") for i in ids]
                )
            ],
        )
        pages = []
        for page in store.pending_example_batches("small", RUN_ID, splits=["test"], rows=2):
            pages.append(page.column("id").to_pylist())
            store.write_chunk({"predictions": run_tables()["predictions"].slice(0, 1)})
    assert pages == [["1.1", "1.3"], ["1.4"]]


# -- best method and layer ---------------------------------------------------------------------


def store_with_summaries(db: Path, rows: list[tuple[str, int, float, float]]) -> None:
    """One run whose 'all' summaries are (method, layer, top3, sufficiency), inserted in this
    order (aggregates that keep the first row they meet would pick by insertion order)."""
    with Store(db) as store:
        store.record_run(make_run())
    con = duckdb.connect(str(db))
    for method, layer, top3, sufficiency in rows:
        con.execute(
            "INSERT INTO summaries (run, method, layer, population, n, top3, sufficiency) "
            "VALUES (?, ?, ?, 'all', 10, ?, ?)",
            [RUN_ID, method, layer, top3, sufficiency],
        )
    con.close()


def test_the_best_method_and_layer_come_from_one_row_ties_going_to_vocabulary_order(
    db: Path,
) -> None:
    store_with_summaries(
        db, [("rollout", 2, 0.8, 0.0), ("attention", 5, 0.8, 0.0), ("attention", 3, 0.8, 0.0)]
    )
    with Store(db, read_only=True) as store:
        best = store.run_overview().to_pylist()[0]
    assert (best["best_method"], best["best_layer"], best["best_top3"]) == ("attention", 3, 0.8)


def test_the_method_matrix_takes_the_lowest_sufficiency_and_the_lower_layer_on_ties(
    db: Path,
) -> None:
    store_with_summaries(
        db,
        [("attention", 4, 0.5, 0.5), ("attention", 2, 0.5, 0.1), ("attention", 1, 0.25, 0.5)],
    )
    with Store(db, read_only=True) as store:
        sufficiency = store.method_matrix("sufficiency").to_pylist()
        top3 = store.method_matrix("top3").to_pylist()
    assert [(r["method"], r["layer"], r["value"]) for r in sufficiency] == [("attention", 2, 0.1)]
    assert [(r["method"], r["layer"], r["value"]) for r in top3] == [("attention", 2, 0.5)]


def test_a_run_without_scorable_examples_still_lists_its_methods(tmp_path: Path, db: Path) -> None:
    staging = tmp_path / "staging.duckdb"
    tables = run_tables()
    outcomes = tables["outcomes"]
    tables["outcomes"] = outcomes.set_column(
        outcomes.schema.get_field_index("scorable"), "scorable", pa.array([False] * 3)
    )
    with Store(staging) as store:
        store.write_chunk(tables)
        store.record_run(make_run())
    with Store(db) as store:
        store.merge_run(staging, RUN_ID)
        assert store.summaries().num_rows == 0
        assert store.run_methods(RUN_ID).to_pylist() == [{"method": "attention", "layer": 6}]
