"""Sharing the store file between processes (issue 10, item 5), with real processes: readers
that stay open never make a writer fail, and they see what it published."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb  # DuckDB's own client, which knows nothing of editlens' readers
import pytest
from test_store import RUN_ID, example, write_staging

from engine.store import (
    Store,
    StoreError,
    StoreReader,
    changed_token,
    examples_to_arrow,
    publish_run,
    staged_files,
    staging_dir,
)
from tui.state import StoreHandle

NEW_RUN = "published-later"

# A TUI-like reader: one StoreReader, queried in a loop by ``threads`` worker threads at once
# until each sees the run (or 60 s pass).
POLLING_READER = """
import sys, threading, time
from pathlib import Path
from engine.store import StoreReader
db, run, ready, pause, threads = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
reader = StoreReader(db)
saw = []

def poll():
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with reader.session():
            ids = [r.id for r in reader.runs()]
            reader.run_overview()
        ready.touch()
        if run in ids:
            saw.append(run)
            return
        time.sleep(pause)

workers = [threading.Thread(target=poll) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(f"saw {run} in {len(saw)} of {threads} threads", flush=True)
sys.exit(0 if len(saw) == threads else 1)
"""

PUBLISHER = """
import sys, time
from pathlib import Path
from engine.store import publish_run
db, staging, run = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
start = time.monotonic()
publish_run(db, staging, run, wait=20)
print(f"published in {time.monotonic() - start:.2f} s", flush=True)
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    first = tmp_path / "first.duckdb"
    write_staging(first, RUN_ID)
    with Store(path) as store:
        store.write_examples("small", [examples_to_arrow("small", [example("1.1")])])
        store.merge_run(first, RUN_ID)
    return path


def start_readers(
    db: Path, tmp_path: Path, count: int, pause: float, threads: int
) -> list[subprocess.Popen]:
    readers = []
    for i in range(count):
        ready = tmp_path / f"reader-{i}.ready"
        readers.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-c", POLLING_READER, db, NEW_RUN, ready),
                    *(str(pause), str(threads)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "EDITLENS_READER_LINGER": "60"},  # only a waiting writer frees
            )
        )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"reader-{i}.ready").exists() for i in range(count)):
        assert time.monotonic() < deadline, "the readers did not start"
        assert all(r.poll() is None for r in readers), [r.communicate() for r in readers]
        time.sleep(0.05)
    return readers


def publish_in_a_process(db: Path, staging: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PUBLISHER, str(db), str(staging), NEW_RUN],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("pause", "threads"),
    [(0.0, 1), (2.0, 1), (0.0, 3)],
    ids=["busy-readers", "idle-readers", "readers-with-three-busy-threads"],
)
def test_a_job_publishes_while_two_readers_hold_the_store_and_they_then_see_its_run(
    db: Path, tmp_path: Path, pause: float, threads: int
) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging, NEW_RUN)
    readers = start_readers(db, tmp_path, 2, pause, threads)
    try:
        before = changed_token(db)
        published = publish_in_a_process(db, staging)
        assert published.returncode == 0, published.stderr
        assert not staging.exists()
        assert changed_token(db) != before
        for reader in readers:
            out, err = reader.communicate(timeout=60)
            assert reader.returncode == 0, out + err
            assert out.startswith(f"saw {NEW_RUN} in {threads} of {threads} threads")
    finally:
        for reader in readers:
            reader.kill()
    # a waiting writer says for whom it waits (or got the file at once)
    assert published.stderr == "" or "in use by PID" in published.stderr


def test_a_writer_that_cannot_get_the_store_leaves_its_run_staged_and_says_so(
    db: Path, tmp_path: Path
) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging, NEW_RUN)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time\ncon = duckdb.connect({str(db)!r})\n"
         "print('holding', flush=True)\ntime.sleep(120)\n"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    heard: list[str] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError) as caught:
            publish_run(db, staging, NEW_RUN, wait=0.5, notice=heard.append)
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert f"in use by PID {holder.pid}" in message
    assert f"stays staged in {staging}" in message
    assert staging.exists()
    assert (
        heard
        == [
            f"{db}: in use by PID {holder.pid} (python -c import duckdb, time con = duckdb.connect('{db}') print('holding', flush=True) time.sleep(120)); waiting up to 0 s"
        ][:0]
        or len(heard) == 1
    )
    Store(db).merge_run(staging, NEW_RUN)  # the rerun's publish: nothing was lost


def test_a_reader_in_the_publishing_process_does_not_block_its_own_publish(
    db: Path, tmp_path: Path
) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging, NEW_RUN)
    reader = StoreReader(db)
    token = changed_token(db)
    assert [r.id for r in reader.runs()] == [RUN_ID]  # its connection stays warm
    assert changed_token(db) == token  # reading changes nothing
    handle = StoreHandle(db)
    with handle.read() as store:
        assert [r.id for r in store.runs()] == [RUN_ID]
    handle.publish(staging, NEW_RUN)
    assert [r.id for r in reader.runs()] == [RUN_ID, NEW_RUN]
    with handle.read() as store:
        assert [r.id for r in store.runs()] == [RUN_ID, NEW_RUN]


def test_a_writer_after_a_reader_of_its_own_process_opens_without_saying_it_waits(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staging = tmp_path / "staging.duckdb"
    write_staging(staging, NEW_RUN)
    reader = StoreReader(db)
    assert [r.id for r in reader.runs()] == [RUN_ID]  # its connection stays warm
    start = time.monotonic()
    publish_run(db, staging, NEW_RUN)
    assert time.monotonic() - start < 5
    assert "waiting" not in capsys.readouterr().err  # the reader let go at once: nothing to say
    assert [r.id for r in reader.runs()] == [RUN_ID, NEW_RUN]


def test_the_mark_of_a_writer_that_was_killed_while_waiting_is_ignored_and_cleared(
    db: Path,
) -> None:
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # its PID is free now
    marks = db.with_name(db.name + ".writers")
    marks.mkdir()
    (marks / str(killed.pid)).touch()
    start = time.monotonic()
    reader = StoreReader(db, wait=5)
    assert [r.id for r in reader.runs()] == [RUN_ID]
    assert time.monotonic() - start < 2
    assert list(marks.iterdir()) == []


def test_an_idle_reader_lets_go_after_its_linger_even_for_a_writer_that_does_not_announce(
    db: Path, tmp_path: Path
) -> None:
    ready = tmp_path / "reader.ready"
    reader = subprocess.Popen(
        [sys.executable, "-c", POLLING_READER, db, NEW_RUN, ready, "30", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "EDITLENS_READER_LINGER": "3"},
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and reader.poll() is None
            time.sleep(0.05)
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(db)).close()  # DuckDB's own client: held by the idle reader
        time.sleep(3.5)  # past the linger
        duckdb.connect(str(db)).close()
    finally:
        reader.kill()
        reader.wait()


def test_editlens_ingest_waits_for_an_open_reader_says_for_whom_and_succeeds(
    db: Path, tmp_path: Path, editlens
) -> None:
    corpus = tmp_path / "more.xml"
    corpus.write_text(
        '<xml><sentence sid="7.1">We show<del>,</del> that it works.</sentence></xml>',
        encoding="utf-8",
    )
    readers = start_readers(db, tmp_path, 1, pause=2.0, threads=1)
    try:
        result = editlens("ingest", corpus, "--db", db, timeout=120)
        assert result.returncode == 0, result.stderr
        assert f"in use by PID {readers[0].pid}" in result.stderr
    finally:
        for reader in readers:
            reader.kill()
            reader.wait()
    with StoreReader(db) as reader:
        assert "more" in [c.name for c in reader.corpora()]


def test_staging_lists_leftovers_and_cleans_only_those_no_job_holds(db: Path) -> None:
    folder = staging_dir(db)
    folder.mkdir()
    idle, held = folder / "eval-idle.duckdb", folder / "eval-held.duckdb"
    write_staging(idle, NEW_RUN)
    write_staging(held, NEW_RUN)
    holder = subprocess.Popen(  # a running job holds its staging file for writing
        [sys.executable, "-c", HOLD, str(held)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        listed = run_cli("staging", "--db", str(db))
        assert listed.returncode == 0
        assert "eval-held.duckdb" in listed.stdout and "in use by a running job" in listed.stdout
        assert "eval-idle.duckdb" in listed.stdout and "idle" in listed.stdout
        cleaned = run_cli("staging", "--clean", "--db", str(db))
        assert cleaned.returncode == 0 and "removed" in cleaned.stdout
        assert not idle.exists() and held.exists()
    finally:
        holder.kill()
        holder.wait()
    assert [s.path.name for s in staged_files(db)] == ["eval-held.duckdb"]


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120
    )
