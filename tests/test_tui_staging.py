"""Leftover staging files in the TUI (issue 10, defect 7): `s` on the runs screen (or the palette's
"Staging files") lists them with size, age and state, and `c` removes the idle ones after
asking; a file a running job holds (here: a real process) stays."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_store_sharing import HOLD
from test_tui_keys import text_of
from textual.widgets import DataTable, Label
from tui_fixture import build_small, build_staged_run, settle

from engine.store import staged_files, staging_dir
from tui.app import EditlensApp
from tui.screens.staging import age


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The small store with two real staging stores beside it, as evaluation jobs leave them."""
    path = build_small(tmp_path / "store.duckdb")
    staging_dir(path).mkdir()
    build_staged_run(staging_dir(path) / "ft-again.duckdb")
    build_staged_run(staging_dir(path) / "ft-running.duckdb", run_id="ft-running")
    return path


@pytest.fixture
def held(db: Path) -> Iterator[Path]:
    """ft-running.duckdb, held for writing by another process, as a running job holds it."""
    path = staging_dir(db) / "ft-running.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield path
    finally:
        holder.kill()
        holder.wait()


def listed(app: EditlensApp) -> dict[str, list[str]]:
    table = app.screen.query_one("#staged", DataTable)
    return {
        row.value.rsplit("/", 1)[-1]: [str(cell) for cell in table.get_row(row)]
        for row in table.rows
    }


async def test_s_lists_the_staging_files_and_c_removes_only_the_idle_ones(
    db: Path, held: Path
) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert type(app.screen).__name__ == "StagingScreen"
        rows = listed(app)
        assert set(rows) == {"ft-again.duckdb", "ft-running.duckdb"}
        assert rows["ft-again.duckdb"][3] == "idle"
        assert rows["ft-running.duckdb"][3] == "held by a running job"
        assert rows["ft-again.duckdb"][1].endswith(("kB", "MB")) and rows["ft-again.duckdb"][2]
        assert "2 in" in text_of(app.screen.query_one("#note", Label))
        await pilot.press("c")  # asks first; n keeps the file
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        await settle(pilot)
        assert (staging_dir(db) / "ft-again.duckdb").exists()
        await pilot.press("c", "y")
        await settle(pilot)
        assert list(listed(app)) == ["ft-running.duckdb"]
    assert [s.path.name for s in staged_files(db)] == ["ft-running.duckdb"]
    assert not (staging_dir(db) / "ft-again.duckdb").exists() and held.exists()


async def test_the_palette_opens_the_staging_files_and_esc_goes_back(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"staging files")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert set(listed(app)) == {"ft-again.duckdb", "ft-running.duckdb"}
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "RunsScreen"


def test_age_says_how_long_ago_in_the_largest_whole_unit() -> None:
    assert [age(s) for s in (5, 90, 3 * 3600 + 5, 2 * 86400)] == ["5 s", "1 min", "3 h", "2 d"]
