"""SVG snapshots of the TUI's screens at 80x24 and at a larger size (pytest-textual-snapshot)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_fixture import build_small, build_staged_run, build_training_run, settle

from engine.store import staging_dir
from tui.app import EditlensApp

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("snap") / "store.duckdb")


def app_for(db: Path) -> EditlensApp:
    app = EditlensApp(db)
    app.theme = "textual-dark"
    return app


@pytest.mark.parametrize("size", SIZES)
def test_runs_screen(snap_compare, db: Path, size: str) -> None:
    assert snap_compare(app_for(db), terminal_size=SIZES[size], run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_examples_screen(snap_compare, db: Path, size: str) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("s")  # by confidence, most confident first
        await settle(pilot)

    assert snap_compare(app_for(db), terminal_size=SIZES[size], run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_example_screen(snap_compare, db: Path, size: str) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app_for(db), terminal_size=SIZES[size], run_before=before)


def test_help_screen(snap_compare, db: Path) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app_for(db), terminal_size=(80, 24), run_before=before)


def test_examples_screen_after_method_and_layer_keys(snap_compare, db: Path) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("m", "m", "h", "o")  # rollout, layer 5, interpretable only
        await settle(pilot)

    assert snap_compare(app_for(db), terminal_size=(80, 24), run_before=before)


def test_training_screen(snap_compare, tmp_path: Path) -> None:
    db = build_training_run(build_small(tmp_path / "store.duckdb"))

    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot)

    assert snap_compare(app_for(db), terminal_size=(80, 24), run_before=before)


def still_cursors(pilot) -> None:
    """Stop every input's cursor blinking (it is then hidden), so a snapshot does not depend on
    when it is taken: on a loaded machine the form's snapshot fell in the blink's off phase."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


def test_evaluate_form(snap_compare, db: Path) -> None:
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        still_cursors(pilot)
        await pilot.pause()

    assert snap_compare(app_for(db), terminal_size=(80, 24), run_before=before)


def test_export_dialog(snap_compare, db: Path, monkeypatch) -> None:
    monkeypatch.chdir("/")  # the dialog shows the full path it will write

    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+e")
        await settle(pilot)
        still_cursors(pilot)
        await pilot.pause()

    app = app_for(db)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_missing_store_screen(snap_compare, tmp_path: Path) -> None:
    app = EditlensApp(Path("missing.duckdb"))
    app.theme = "textual-dark"
    assert snap_compare(app, terminal_size=(80, 24))


def test_staging_screen(snap_compare, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative store: the screen shows its staging folder
    db = build_small(Path("store.duckdb"))
    staging_dir(db).mkdir()
    staged = build_staged_run(staging_dir(db) / "ft-again.duckdb")
    three_days_ago = time.time() - 3 * 86400 - 60
    os.utime(staged, (three_days_ago, three_days_ago))

    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)

    assert snap_compare(app_for(db), terminal_size=(80, 24), run_before=before)
