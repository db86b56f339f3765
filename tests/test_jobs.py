"""Engine jobs in their own process, as the TUI starts them: events, publishing, cancelling."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_snapshot import snapshot

from engine.ingest import ingest
from engine.jobs import Job, JobEvent, JobSpec, event_line, parse_event
from engine.store import Store, publish_run

AESW = """<?xml version="1.0" encoding="UTF-8"?>
<xml><text><p pid="1">
<sentence sid="1.0">We show<del>,</del> that the model converges.</sentence>
<sentence sid="1.1">The results are reported in <del>the </del>Table _REF_.</sentence>
<sentence sid="1.2">This is a clean sentence about _MATH_.</sentence>
<sentence sid="1.3">We use <ins>the </ins>method of _CITE_.</sentence>
</p></text></xml>
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    corpus_file = tmp_path / "tiny.xml"
    corpus_file.write_text(AESW, encoding="utf-8")
    path = tmp_path / "editlens.duckdb"
    with Store(path) as store:
        ingest(store, corpus_file, corpus="tiny", split="test")
    return path


def test_event_lines_round_trip() -> None:
    event = parse_event(event_line("progress", done=3, total=7))
    assert (event.kind, event.done, event.total) == ("progress", 3, 7)
    assert parse_event("not json\n").kind == "log"


@pytest.mark.slow
def test_a_job_stages_its_run_and_the_caller_publishes_it(db: Path) -> None:
    before = snapshot(db)
    job = Job(JobSpec(model="minilm", corpus="tiny", methods=("attention", "random")), db)
    events = list(job.events())
    assert job.returncode() == 0
    assert [e.kind for e in events if e.kind != "progress"] == ["staged"]
    assert events[-2] == JobEvent("progress", done=4, total=4)
    assert snapshot(db) == before  # the job never wrote to the main store
    staged = events[-1]
    publish_run(db, Path(staged.staging), staged.run)
    with Store(db, read_only=True) as store:
        assert [run.id for run in store.runs()] == [staged.run]
    assert not Path(staged.staging).exists()


@pytest.mark.slow
def test_a_failing_job_says_why_in_one_line(db: Path) -> None:
    job = Job(JobSpec(model="minilm", corpus="tiny", layers=(9,)), db)
    events = list(job.events())
    assert [e.kind for e in events] == ["error"]
    assert "--layers 9 is out of range" in events[0].message
    assert job.returncode() != 0


@pytest.mark.slow
def test_a_cancelled_job_leaves_the_store_as_it_was(db: Path) -> None:
    before = snapshot(db)
    job = Job(JobSpec(model="minilm", corpus="tiny"), db)
    job.cancel()
    events = list(job.events())
    assert events[-1].kind == "error" and events[-1].message.startswith("cancelled")
    assert snapshot(db) == before
