"""Engine jobs in their own process, as the TUI starts them: events, publishing, cancelling."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import duckdb  # the test reads a staging file directly, to see what a cancelled job left
import pytest
from store_snapshot import snapshot

from engine.evaluate import CHUNK_ROWS
from engine.jobs import Job, JobEvent, JobSpec, event_line, parse_event
from engine.specs import default
from engine.store import Store, publish_run, staging_dir
from engine.train import TrainSpec

AESW = """<?xml version="1.0" encoding="UTF-8"?>
<xml><text><p pid="1">
<sentence sid="1.0">We show<del>,</del> that the model converges.</sentence>
<sentence sid="1.1">The results are reported in <del>the </del>Table _REF_.</sentence>
<sentence sid="1.2">This is a clean sentence about _MATH_.</sentence>
<sentence sid="1.3">We use <ins>the </ins>method of _CITE_.</sentence>
</p></text></xml>
"""
# More examples than one staged chunk (512), so a job can be cancelled between two chunks.
MANY = 600
SHORT = "".join(
    f'<sentence sid="{i}.1">Result {i} holds<del>,</del> as shown.</sentence>' for i in range(MANY)
)
MANY_XML = f"<xml>{SHORT}</xml>"
QUICK = JobSpec(model="minilm", corpus="many", methods=("attention", "random"), layers=(6,))


@pytest.fixture
def db(tmp_path: Path, store_with) -> Path:
    return store_with(tmp_path, AESW, "tiny", split="test")


def test_event_lines_round_trip() -> None:
    event = parse_event(event_line("progress", done=3, total=7))
    assert (event.kind, event.done, event.total) == ("progress", 3, 7)
    assert parse_event("not json\n").kind == "log"


def test_a_job_that_trains_first_trains_as_long_as_the_cli_would() -> None:
    args = JobSpec(model="minilm", corpus="tiny", train_first=True).command(Path("s.duckdb"))
    assert args[args.index("--epochs") + 1] == str(default(TrainSpec, "epochs"))


def events_within(job: Job, seconds: float) -> list[JobEvent]:
    """The job's events, failing (instead of hanging the suite) if they do not end in time."""
    events: list[JobEvent] = []
    reader = threading.Thread(target=lambda: events.extend(job.events()), daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        job.cancel()
        pytest.fail(f"the job's events did not end within {seconds} s")
    return events


def test_a_job_that_floods_stderr_still_ends_with_its_last_line_as_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 kB on stderr is more than a pipe holds: read after stdout, the job never ended."""
    child = (
        "import sys\n"
        "sys.stderr.write('noise\\n' * 40_000)\n"
        'print(\'{"event": "progress", "done": 1, "total": 2}\', flush=True)\n'
        "sys.exit('error: the disk is full')\n"
    )
    monkeypatch.setattr(JobSpec, "command", lambda self, db: [sys.executable, "-c", child])
    events = events_within(Job(JobSpec(model="minilm", corpus="tiny"), tmp_path / "x"), 60)
    assert events == [
        JobEvent("progress", done=1, total=2),
        JobEvent("error", message="the disk is full"),
    ]


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


def finished_run(db: Path) -> dict[str, list]:
    """A job run to the end and published: the main store's content, minus wall-clock times."""
    events = list(Job(QUICK, db).events())
    staged = events[-1]
    assert staged.kind == "staged", events
    publish_run(db, Path(staged.staging), staged.run)
    content = snapshot(db)
    with duckdb.connect(str(db), read_only=True) as con:
        content["runs"] = con.execute("SELECT id, config, metrics FROM runs").fetchall()
    return content


@pytest.mark.slow
def test_a_job_cancelled_between_chunks_resumes_to_the_uninterrupted_result(
    tmp_path: Path, store_with
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    interrupted = store_with(tmp_path / "a", MANY_XML, "many", split="test")
    before = snapshot(interrupted)
    job = Job(QUICK, interrupted)
    for event in job.events():
        if event.kind == "progress" and CHUNK_ROWS < event.done < event.total:
            job.cancel()  # in the second chunk: the first is staged, the second is not
        elif event.kind != "progress":
            assert event.message.startswith("cancelled"), event
    assert snapshot(interrupted) == before  # nothing published
    (staging,) = staging_dir(interrupted).glob("*.duckdb")
    with duckdb.connect(str(staging), read_only=True) as con:
        (kept,) = con.execute("SELECT count(*) FROM predictions").fetchone()
    assert 0 < kept < MANY  # a partial run waits to be resumed

    resumed = finished_run(interrupted)
    uninterrupted = finished_run(store_with(tmp_path / "b", MANY_XML, "many", split="test"))
    assert resumed == uninterrupted
    assert len(resumed["predictions"]) == MANY
