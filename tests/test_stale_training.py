"""A training run is marked stale (or removed) when a re-ingest changes sentences it trained on
(issue 11, class 5), as evaluation runs already are; the runs screen shows the badge."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from textual.widgets import DataTable, Label
from tui_fixture import settle

from engine.ingest import ingest
from engine.store import Run, Store, StoreError
from tui.app import EditlensApp

# The train split (2.1, 10.1) and a test split (3.1) of one corpus; each variant changes one.
TRAIN = """<xml>
<sentence sid="2.1">We show<del>,</del> that the method works.</sentence>
<sentence sid="10.1">The <del>algoritm</del><ins>algorithm</ins> converges.</sentence>
</xml>"""
TEST = '<xml><sentence sid="3.1">We use<ins> the</ins> method.</sentence></xml>'


def training_run(run_id: str, limit: int | None) -> Run:
    when = datetime(2026, 1, 1)
    config = {"epochs": 1, "limit": limit}
    return Run(run_id, "train", "minilm+ft:small", f"checkpoints/{run_id}/best", "small",
               "train", 6, 12, config, {"accuracy": 0.5}, when, when)  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Corpus 'small' (train and test splits) under two training runs: one on the whole train
    split, one limited to its first id, 10.1 (training reads ids in string order)."""
    (tmp_path / "train.xml").write_text(TRAIN)
    (tmp_path / "test.xml").write_text(TEST)
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        ingest(store, tmp_path / "train.xml", corpus="small", split="train")
        ingest(store, tmp_path / "test.xml", corpus="small", split="test")
        store.record_run(training_run("ft-all", None))
        store.record_run(training_run("ft-first", 1))
    return path


def reingest(db: Path, xml: str, split: str, scored: str = "refuse") -> tuple[str, ...]:
    source = db.parent / "changed.xml"
    source.write_text(xml)
    with Store(db) as store:
        return ingest(store, source, corpus="small", split=split, replace_scored=scored).runs


def stale(db: Path) -> dict[str, str]:
    with Store(db, read_only=True) as store:
        return store.stale_runs()


def test_changing_a_trained_on_sentence_is_refused_unless_asked(db: Path) -> None:
    changed = TRAIN.replace("converges", "diverges")  # 10.1: both runs trained on it
    with pytest.raises(StoreError, match=r"2 run\(s\) were scored or trained on \(e.g. ft-all\)"):
        reingest(db, changed, "train")
    assert stale(db) == {}
    assert reingest(db, changed, "train", "stale") == ("ft-all", "ft-first")
    reason = "sentences of corpus small changed after training"
    assert stale(db) == {"ft-all": reason, "ft-first": reason}


def test_a_limited_training_run_is_stale_only_for_the_ids_it_read(db: Path) -> None:
    changed = TRAIN.replace("the method works", "the model works")  # 2.1: past ft-first's limit
    assert reingest(db, changed, "train", "stale") == ("ft-all",)
    assert set(stale(db)) == {"ft-all"}


def test_changing_a_test_sentence_leaves_training_runs_alone(db: Path) -> None:
    assert reingest(db, TEST.replace("method", "model"), "test") == ()
    assert stale(db) == {}


def test_replace_scored_remove_deletes_the_training_run(db: Path) -> None:
    reingest(db, TRAIN.replace("the method works", "the model works"), "train", "remove")
    with Store(db, read_only=True) as store:
        assert [run.id for run in store.runs()] == ["ft-first"]
    assert stale(db) == {}


async def test_the_runs_screen_badges_a_stale_training_run_and_says_why(db: Path) -> None:
    reingest(db, TRAIN.replace("the method works", "the model works"), "train", "stale")
    app = EditlensApp(db)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        kinds = {row.value: str(table.get_row(row)[2]) for row in table.rows}
        title = str(app.screen.query_one("#runs-title", Label).render())
    assert kinds == {"ft-all": "train stale", "ft-first": "train"}
    assert "stale: sentences of corpus small changed after training; rerun it" in title
