"""The TUI's analysis screens driven through Pilot at 80x24 by the keys a user presses: compare
A/B, charts, run detail, per-head drill-down, minimal pairs, pins; plus their snapshots."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest
from rich.console import Console
from rich.text import Text
from test_store_analysis import cells_in_python, outcomes
from tui_fixture import (
    CORPUS,
    RUNS,
    build_pairs,
    build_small,
    settle,
    small_data,
)

from engine import highlight
from engine.errors import EditlensError
from engine.figures import Side
from engine.metrics import Estimate
from engine.store import StoreReader
from tui.app import EditlensApp
from tui.bookmarks import Bookmarks, pins_path
from tui.screens.charts import ChartsScreen
from tui.screens.compare import CompareScreen
from tui.screens.dialogs import ExportScreen, HelpScreen
from tui.screens.example import ExampleScreen
from tui.screens.examples import ExamplesScreen
from tui.screens.heads import HeadsScreen
from tui.screens.pair import PairScreen
from tui.screens.pinned import PinnedScreen
from tui.screens.run_detail import RunDetailScreen
from tui.widgets.bars import bar_glyphs
from tui.widgets.heads import HeadSentence
from tui.widgets.pair import PairView, align

FT, BASE = RUNS[0][0], RUNS[1][0]
SIZE = (80, 24)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A fresh store per test: pins are written beside it."""
    return build_small(tmp_path / "store.duckdb")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, list[dict]]]:
    _, runs = small_data()
    return {run.id: {name: t.to_pylist() for name, t in tables.items()} for run, tables in runs}


@pytest.fixture(scope="module")
def pair_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pairs(tmp_path_factory.mktemp("pairs"))


def plain(widget) -> str:
    """What a Static-like widget shows, as plain text."""
    rendered = widget.content or widget.render()  # what update() gave, or what render() draws
    if hasattr(rendered, "plain"):  # rich Text, or Textual's Content
        return rendered.plain
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(rendered)
    return console.export_text()


async def open_list(pilot, run: str = FT) -> ExamplesScreen:
    """Runs screen → the first run's examples list (the fine-tuned run, attention L6)."""
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ExamplesScreen)
    assert (screen.filters.run, screen.filters.method, screen.filters.layer) == (
        run,
        "attention",
        6,
    )
    return screen


def cell_text(screen: CompareScreen, row: int, column: int) -> str:
    return str(screen.query_one("#cells").get_cell_at((row, column)))


# -- compare ---------------------------------------------------------------------------------


async def test_compare_shows_interpretable_under_a_but_not_b_and_lists_them(db, rows) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        a, b = Side(FT, "attention", 6), Side(BASE, "attention", 6)  # B: the other run
        assert screen.sides == (a, b)
        cells = cells_in_python(rows, a, b)
        assert cell_text(screen, 0, 1) == str(len(cells[True, True]))
        assert cell_text(screen, 0, 2) == str(len(cells[True, False]))
        assert cell_text(screen, 1, 1) == str(len(cells[False, True]))
        assert cell_text(screen, 1, 2) == str(len(cells[False, False]))
        assert "McNemar p=" in plain(screen.query_one("#summary"))
        await pilot.press("enter")  # the cursor starts on "A interpretable, B not"
        await settle(pilot)
        listed = screen.query_one("#list")
        ids = [str(listed.get_row_at(i)[0]) for i in range(listed.row_count)]
        assert ids == cells[True, False] and ids
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ExampleScreen)
        assert app.screen.example == ids[0]
        await pilot.press("n")  # steps within the cell's examples
        await settle(pilot)
        assert app.screen.example == ids[1 % len(ids)]
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def test_compare_swaps_a_and_b(db, rows) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        a_only = cell_text(screen, 0, 2)
        await pilot.press("s")
        await settle(pilot)
        assert screen.sides == (Side(BASE, "attention", 6), Side(FT, "attention", 6))
        assert cell_text(screen, 1, 1) == a_only


async def test_compare_two_layers_of_one_run_picked_in_bs_drop_downs(db, rows) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        # B's run: shift+tab x3 from the table to B's run drop-down, open it, up to the first run
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "enter", "up", "enter")
        await settle(pilot)
        assert screen.sides[1].run == FT
        await pilot.press("tab", "tab", "enter", "up", "enter")  # B's layer: one up from 6
        await settle(pilot)
        a, b = Side(FT, "attention", 6), Side(FT, "attention", 5)
        assert screen.sides == (a, b)
        cells = cells_in_python(rows, a, b)
        assert cell_text(screen, 0, 2) == str(len(cells[True, False]))


async def test_choosing_the_blank_line_of_a_drop_down_keeps_the_side(db) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        sides = screen.sides
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "enter", "up", "up", "enter")
        await settle(pilot)
        assert screen.sides == sides
        assert screen.query_one("#b-run").value == BASE


# -- charts ----------------------------------------------------------------------------------


async def test_choosing_a_kind_bar_filters_the_list_to_that_kind(db) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        listing = await open_list(pilot)
        await pilot.press("G")
        await settle(pilot)
        assert isinstance(app.screen, ChartsScreen)
        await pilot.press("2")  # by edit kind: deleted, inserted, mixed, spelling
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.screen is listing
        assert listing.filters.kind == "inserted"
        table = listing.query_one("#table")
        kinds = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        assert kinds == {"inserted"}


async def test_choosing_a_layer_bar_sets_the_lists_method_and_layer(db) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        listing = await open_list(pilot)
        await pilot.press("G")
        await settle(pilot)
        bars = app.screen.query_one("#bars")
        first = str(bars.get_option_at_index(1).prompt)
        assert first.startswith("L1") and "N=" in first
        for _ in range(8):  # attention L1..L6, then attention_max's heading is skipped
            await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot)
        assert (listing.filters.method, listing.filters.layer) == ("attention_max", 3)


async def test_charts_population_toggle_shrinks_n_to_the_flagged(db, rows) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot)
        await pilot.press("G")
        await settle(pilot)
        n_all = len(outcomes(rows, FT, "attention", 1))
        bars = app.screen.query_one("#bars")
        assert f"N={n_all}" in str(bars.get_option_at_index(1).prompt)
        await pilot.press("f")
        await settle(pilot)
        flagged = {p["example"] for p in rows[FT]["predictions"] if p["pred"]}
        n_flagged = len(outcomes(rows, FT, "attention", 1).keys() & flagged)
        assert f"N={n_flagged}" in str(bars.get_option_at_index(1).prompt)


def test_bar_glyphs_draw_the_interval_around_the_mean() -> None:
    assert bar_glyphs(0.5, 0.3, 0.7, 10) == "███▓▓░░   "
    assert bar_glyphs(0.5, float("nan"), float("nan"), 10) == "█████     "


# -- run detail ------------------------------------------------------------------------------


async def test_run_detail_badges_the_baseline_whose_head_is_untrained(db) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, RunDetailScreen)
        text = plain(app.screen.query_one("#facts"))
        assert "minilm+ft:demo" in text and "fine-tuned" in text and "UNTRAINED" not in text
        assert "N all" in text and "none (the whole split)" in text
        await pilot.press("escape", "down", "d")
        await settle(pilot)
        text = plain(app.screen.query_one("#facts"))
        assert "minilm-random" in text and "UNTRAINED HEAD" in text


# -- heads and pairs -------------------------------------------------------------------------


async def test_heads_drill_down_shows_the_chosen_heads_words(db, rows) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot)
        await pilot.press("enter")
        await settle(pilot)
        example = app.screen.example
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HeadsScreen) and screen.cursor == (6, 1)
        await pilot.press("l")  # head 2 of the last layer
        await settle(pilot)
        head = next(h for h in rows[FT]["heads"] if h["example"] == example)
        seen = len(head["last"]) // 12
        sentence = next(e for e in small_data()[0] if e.id == example)

        def coloured_by(index: int) -> Text:
            row = head["last"][index * seen : (index + 1) * seen]
            return highlight.sentence(sentence.words, sentence.rationale, row, seen)

        shown = screen.query_one("#words", HeadSentence).render()
        assert shown.renderables[0].plain.startswith("L6 H2")
        assert shown.renderables[1] == coloured_by(1) != coloured_by(0)  # head 2's row, not 1's
        await pilot.press("k")  # layer 5: its words are not stored
        await settle(pilot)
        assert "last layer (L6) only" in plain(screen.query_one("#words", HeadSentence))


@pytest.mark.parametrize(
    ("last", "layer", "says"),
    [
        ([], 6, "no per-word head attention stored for this example"),  # e.g. an unscorable one
        ([0.5, 0.5] * 2, 3, "last layer (L6) only"),
    ],
)
def test_head_sentence_says_why_there_are_no_words(last, layer, says) -> None:
    detail = {"words": ["a", "b"], "rationale": [1], "seen_words": 2, "layers": 6, "heads": 2}
    widget = HeadSentence()
    widget.set_reactive(HeadSentence.view, ({**detail, "last": last}, layer, 1))
    assert says in widget.render().plain


async def test_minimal_pair_sets_the_sentence_over_its_twin_word_by_word(pair_db) -> None:
    app = EditlensApp(pair_db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, "pairs-run")
        await pilot.press("enter")
        await settle(pilot)
        example = app.screen.example
        assert not example.endswith("/edited")
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, PairScreen)
        shown = plain(app.screen.query_one("#pair", PairView))
        assert example in shown and f"{example}/edited" in shown
        assert "·" in shown  # the deleted words face a gap in the twin
        await pilot.press("h", "m")  # layer 5, then the next method at the same layer
        await settle(pilot)
        assert app.screen.pair == ("attention_max", 5)
        expected = StoreReader(pair_db).pair_rows("pairs-run", example, "attention_max", 5)
        shown_rows = app.screen.query_one("#pair", PairView).rows
        assert [r["scores"] for r in shown_rows] == [r["scores"] for r in expected]


def test_align_pairs_equal_words_and_leaves_gaps_for_deletions() -> None:
    first = ["we", "do", "the", "the", "test", "."]
    second = ["we", "do", "the", "test", "."]
    assert align(first, second) == [(0, 0), (1, 1), (2, 2), (3, None), (4, 3), (5, 4)]
    assert align(["a", "b"], ["a", "c"]) == [(0, 0), (1, 1)]  # a replacement faces its twin


# -- pins ------------------------------------------------------------------------------------


async def test_pins_from_list_and_example_show_in_pinned_only_and_export(db, tmp_path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        listing = await open_list(pilot)
        first = str(listing.query_one("#table").get_row_at(0)[0])
        await pilot.press("b")
        await settle(pilot)
        assert Bookmarks(db).pinned(CORPUS) == [first]
        await pilot.press("down", "enter")
        await settle(pilot)
        second = app.screen.example
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("escape", "B")
        await settle(pilot)
        assert isinstance(app.screen, PinnedScreen)
        table = app.screen.query_one("#table")
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [first, second]
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert isinstance(app.screen, ExportScreen)
        assert app.screen.query_one("Vertical").border_title == "Export the pinned examples"
        out = tmp_path / "pinned.csv"
        app.screen.query_one("#path").value = str(out)
        await pilot.press("enter")
        await settle(pilot)
        exported = pa_csv.read_csv(out).to_pylist()
        assert [r["id"] for r in exported] == [first, second]
        assert {r["model"] for r in exported} == {"minilm+ft:demo"}
        await pilot.press("b")  # unpin the first
        await settle(pilot)
        assert Bookmarks(db).pinned(CORPUS) == [second]


def test_pins_are_written_atomically_beside_the_store(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    pins = Bookmarks(db)
    assert pins.toggle("c", "1.1") is True
    assert pins.toggle("c", "2.1") is True
    assert pins.toggle("c", "1.1") is False
    assert json.loads(pins_path(db).read_text())["pins"] == {"c": ["2.1"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.duckdb.pins.json"]  # no temp file
    assert Bookmarks(db).pinned("c") == ["2.1"]


def test_two_holders_of_the_pins_file_do_not_lose_each_others_pins(tmp_path: Path) -> None:
    """Two screens (or two TUIs) each hold a Bookmarks read before the other's change."""
    db = tmp_path / "x.duckdb"
    first, second = Bookmarks(db), Bookmarks(db)
    first.toggle("c", "1.1")
    second.toggle("c", "2.1")
    assert Bookmarks(db).pinned("c") == ["1.1", "2.1"]


def test_a_damaged_pins_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    pins_path(db).write_text("{not json")
    with pytest.raises(EditlensError, match="pins"):
        Bookmarks(db)
    assert pins_path(db).read_text() == "{not json"


# -- help --------------------------------------------------------------------------------------


async def test_help_lists_the_new_keys(db) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        described = {description for _, description, _ in app.screen._rows}
        assert {"Compare A/B", "Charts", "Run detail", "Pin/unpin", "Pinned only"} <= described


def test_user_text_is_never_read_as_markup() -> None:
    from engine.figures import Bar
    from tui.widgets.bars import bar_line

    line = bar_line(Bar("kind", "[bold]x", "[bold]x", Estimate(3, 0.5, 0.2, 0.8)), 10)
    assert line.plain.startswith("[bold]x")
    escape = bar_line(Bar("kind", "a\x1b[2J", "a\x1b[2J", Estimate(3, 0.5, 0.2, 0.8)), 10)
    assert "\x1b" not in escape.plain  # a control character is shown, never sent


# -- snapshots (80x24) -------------------------------------------------------------------------


def _snap_app(path: Path) -> EditlensApp:
    app = EditlensApp(path)
    app.theme = "textual-dark"
    return app


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("compare", ["v", "enter"]),
        ("charts", ["G"]),
        ("run_detail", ["escape", "down", "d"]),  # the baseline, with its badge
        ("heads", ["enter", "a"]),
        ("pinned", ["b", "B"]),
    ],
)
def test_snapshot(snap_compare, db: Path, name: str, keys: list[str]) -> None:
    async def before(pilot) -> None:
        await open_list(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(_snap_app(db), terminal_size=SIZE, run_before=before)


def test_snapshot_pair(snap_compare, pair_db: Path) -> None:
    async def before(pilot) -> None:
        await open_list(pilot, "pairs-run")
        for key in ("enter", "t"):
            await pilot.press(key)
            await settle(pilot)

    assert snap_compare(_snap_app(pair_db), terminal_size=SIZE, run_before=before)
