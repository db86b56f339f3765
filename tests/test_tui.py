"""The TUI driven by Pilot on a throwaway store built by the real store code (tests/tui_fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from textual.widgets import DataTable, Input, Label, Static
from tui_fixture import RUNS, build_small, build_staged_run, settle, small_data

from engine.corpus import Example
from engine.store import Store
from tui.app import EditlensApp
from tui.screens.dialogs import HelpScreen, ProblemScreen
from tui.screens.example import ExampleScreen
from tui.screens.examples import SEARCH_DELAY, ExamplesScreen
from tui.screens.runs import RunsScreen
from tui.widgets.sentence import ScoredSentence

FT = RUNS[0][0]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("store") / "store.duckdb")


@pytest.fixture(scope="module")
def data() -> tuple[list[Example], dict]:
    examples, runs = small_data()
    return examples, {run.id: tables for run, tables in runs}


def expected(data, run: str, method: str = "attention", layer: int = 6, metric: str = "top3"):
    """Bucket counts computed in Python from the rows the fixture wrote (no SQL involved).

    ``outcomes`` maps every evaluated example to its metric: True, False, or None when the
    example is not scorable (its outcome row carries no metrics)."""
    _, tables = data
    preds = tables[run]["predictions"].to_pylist()
    outcomes = {
        o["example"]: o[metric]
        for o in tables[run]["outcomes"].to_pylist()
        if o["method"] == method and o["layer"] == layer
    }
    assert len(outcomes) == len(preds)  # one outcome row per evaluated example
    assert {e for e, v in outcomes.items() if v is None} == {
        p["example"] for p in preds if not p["scorable"]
    }
    return preds, outcomes


async def open_examples(pilot) -> ExamplesScreen:
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ExamplesScreen)
    return pilot.app.screen


def status(screen) -> str:
    return str(screen.query_one("#status", Label).render())


def counts_text(screen) -> str:
    return str(screen.query_one("#counts", Static).render())


# -- runs screen ---------------------------------------------------------------------------------


async def test_runs_screen_lists_every_run_with_its_f1(db: Path, data) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        assert table.row_count == len(RUNS)
        first = [str(cell) for cell in table.get_row_at(0)]
        assert first[0] == "minilm+ft:demo" and first[-1] == FT
        _, runs = small_data()
        assert first[5] == f"{runs[0][0].metrics['f1']:.3f}"
        matrix = app.screen.query_one("#matrix", DataTable)
        assert matrix.row_count == len(RUNS)
        assert len(matrix.columns) == 2 + 7  # model, N, every method


async def test_table_metric_key_changes_the_method_matrix(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        assert app.screen.matrix_metric == "hit1"
        title = str(app.screen.query_one("#matrix-title", Label).render())
        assert "hit1" in title


# -- examples screen: counts against the fixture's own rows ---------------------------------------


async def test_examples_counts_match_the_fixture(db: Path, data) -> None:
    preds, outcomes = expected(data, FT)
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        yes = sum(1 for v in outcomes.values() if v is True)
        no = sum(1 for v in outcomes.values() if v is False)
        unscorable = sum(1 for p in preds if not p["scorable"])
        text = counts_text(screen)
        assert f"interpretable {yes:,} · not {no:,} · unscorable {unscorable:,}" in text
        right = sum(p["pred"] == p["label"] for p in preds)
        assert f"right {right} · wrong {len(preds) - right}" in text
        assert f"of {len(preds)}" in status(screen)


async def test_outcome_and_prediction_filters_narrow_to_the_right_rows(db: Path, data) -> None:
    preds, outcomes = expected(data, FT)
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        await pilot.press("o")  # outcome: interpretable
        await settle(pilot)
        interpretable = {e for e, v in outcomes.items() if v}
        assert f"of {len(interpretable)}" in status(screen)
        table = screen.query_one("#table", DataTable)
        assert {str(table.get_row_at(i)[0]) for i in range(table.row_count)} == interpretable
        await pilot.press("c", "c", "c")  # prediction: any → right → wrong → TP
        await settle(pilot)
        assert screen.filters.prediction == "tp"
        tp = {p["example"] for p in preds if p["pred"] and p["label"]} & interpretable
        assert f"of {len(tp)}" in status(screen)


async def test_kind_filter_and_text_search(db: Path, data) -> None:
    examples, _ = data
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        await pilot.press("e")  # edit kind: deleted
        await settle(pilot)
        deleted = [e for e in examples if e.kind == "deleted"]
        assert f"of {len(deleted)}" in status(screen)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"theorem")
        await pilot.pause(SEARCH_DELAY + 0.1)
        await settle(pilot)
        hits = [e for e in deleted if "theorem" in e.text.lower()]
        assert f"of {len(hits)}" in status(screen)


async def test_metric_from_the_palette_reaches_the_examples_screen(db: Path, data) -> None:
    _, outcomes = expected(data, FT, metric="hit1")
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        app.set_metric("hit1")
        await settle(pilot)
        assert screen.filters.metric == "hit1"
        yes = sum(1 for v in outcomes.values() if v)
        assert f"interpretable {yes:,}" in counts_text(screen)


async def test_paging_and_sorting(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        assert "rows 1–50 of 60" in status(screen)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert "rows 51–60 of 60" in status(screen)
        await pilot.press("s")  # sort by confidence, descending; back to the first page
        await settle(pilot)
        table = screen.query_one("#table", DataTable)
        conf = [float(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert conf == sorted(conf, reverse=True)
        assert "rows 1–50" in status(screen)


# -- example screen ------------------------------------------------------------------------------


async def test_example_screen_steps_methods_layers_and_examples(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        examples = await open_examples(pilot)
        first = str(examples.query_one("#table", DataTable).get_row_at(0)[0])
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExampleScreen)
        assert screen.example == first and screen.pair == ("attention", 6)
        await pilot.press("h")
        assert screen.pair == ("attention", 5)
        await pilot.press("m")
        assert screen.pair == ("attention_max", 5)
        await pilot.press("m", "m")  # the registry's order: rollout, then grad
        assert screen.pair == ("grad", 0)
        await settle(pilot)
        sentence = screen.query_one("#sentence", ScoredSentence)
        assert sentence.scores["method"] == "grad"
        await pilot.press("n")
        await settle(pilot)
        second = str(examples.query_one("#table", DataTable).get_row_at(1)[0])
        assert screen.example == second
        await pilot.press("escape")
        assert app.screen is examples


async def test_next_example_crosses_the_page_boundary(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        examples = await open_examples(pilot)
        table = examples.query_one("#table", DataTable)
        table.move_cursor(row=49)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.example == "s0050"
        await pilot.press("n")
        await settle(pilot)
        assert app.screen.example == "s0051"
        await pilot.press("p")
        await settle(pilot)
        assert app.screen.example == "s0050"


# -- conventions ---------------------------------------------------------------------------------


async def test_help_lists_every_binding_of_the_screen(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_examples(pilot)
        wanted = {b.description for b in ExamplesScreen.BINDINGS if b.description}
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        shown = {row[1] for row in app.screen._rows}
        assert wanted <= shown
        assert {"Help", "Save SVG", "Theme", "Quit"} <= shown
        await pilot.press("escape")
        assert isinstance(app.screen, ExamplesScreen)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
async def test_export_writes_the_filtered_examples(db: Path, data, tmp_path: Path, fmt) -> None:
    _, outcomes = expected(data, FT)
    target = tmp_path / f"out.{fmt}"
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        await pilot.press("o")
        await settle(pilot)
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one("#format").value = fmt
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(target)
        assert app.focused is app.screen.query_one("#path", Input)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
    yes = sum(1 for v in outcomes.values() if v)
    if fmt == "csv":
        table = pa_csv.read_csv(target)
    elif fmt == "parquet":
        table = pq.read_table(target)
    else:
        import json

        table = [json.loads(line) for line in target.read_text().splitlines()]
        assert len(table) == yes and all(row["top3"] for row in table)
        return
    assert table.num_rows == yes
    assert all(table.column("top3").to_pylist())


async def test_save_svg_writes_the_screen(db: Path, tmp_path: Path) -> None:
    app = EditlensApp(db, screenshot_dir=tmp_path)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
    (svg,) = tmp_path.glob("*.svg")
    assert "Runs" in svg.read_text()


async def test_theme_toggles_between_light_and_dark(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark


async def test_missing_store_says_how_to_fill_it(tmp_path: Path) -> None:
    app = EditlensApp(tmp_path / "nothing.duckdb")
    async with app.run_test() as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ProblemScreen)
        text = str(app.screen.query_one("#problem", Static).render())
        assert "editlens demo" in text and "editlens ingest" in text
    assert not (tmp_path / "nothing.duckdb").exists()


async def test_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    from engine.store import Store

    Store(tmp_path / "empty.duckdb").close()
    app = EditlensApp(tmp_path / "empty.duckdb")
    async with app.run_test() as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ProblemScreen)
        assert "empty" in str(app.screen.query_one("#problem", Static).render())


def test_engine_never_imports_the_tui() -> None:
    code = "import sys, engine.store, engine.export; print('textual' in sys.modules, 'tui' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# -- evaluation jobs (a fake job stands in for engine.jobs.Job's process) -------------------------


class FakeEvent:
    def __init__(self, kind: str, **fields) -> None:
        self.kind = kind
        self.done = fields.get("done", 0)
        self.total = fields.get("total", 0)
        self.message = fields.get("message", "")
        self.run = fields.get("run", "")
        self.staging = fields.get("staging", "")


class FakeJob:
    def __init__(self, events: list[FakeEvent], code: int) -> None:
        self._events = events
        self._code = code
        self.cancelled = False

    def events(self):
        yield from self._events

    def cancel(self) -> None:
        self.cancelled = True

    def returncode(self) -> int | None:
        return self._code


async def start_job(pilot) -> None:
    await settle(pilot)
    await pilot.press("e")
    await pilot.pause()
    await pilot.press("ctrl+r")
    await settle(pilot)


async def test_a_staged_job_is_published_into_the_store(tmp_path: Path) -> None:
    db = build_small(tmp_path / "store.duckdb")
    staging = build_staged_run(tmp_path / "job.staging.duckdb")
    specs = []

    def factory(spec, path):
        specs.append(spec)
        events = [FakeEvent("progress", done=i, total=3) for i in range(4)]
        return FakeJob([*events, FakeEvent("staged", run="ft-again", staging=str(staging))], 0)

    app = EditlensApp(db, job_factory=factory)
    async with app.run_test() as pilot:
        await start_job(pilot)
        assert specs[0]["model"] == "minilm" and specs[0]["corpus"] == "demo"
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == len(RUNS) + 1


async def test_a_failed_job_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    db = build_small(tmp_path / "store.duckdb")

    def factory(spec, path):
        return FakeJob(
            [
                FakeEvent("progress", done=1, total=9),
                FakeEvent("error", message="CUDA out of memory"),
            ],
            1,
        )

    app = EditlensApp(db, job_factory=factory)
    notes = []
    async with app.run_test() as pilot:
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        screen = app.screen
        screen.notify = app.notify  # type: ignore[method-assign]
        await start_job(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.query_one("#runs", DataTable).row_count == len(RUNS)
    assert any("CUDA out of memory" in n and "unchanged" in n for n in notes)


# -- the list: method and layer first-class, ids, the filter as a command ---------------------


async def test_header_counts_interpretable_at_every_layer_of_the_method(db: Path, data) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_examples(pilot)
        line = str(screen.query_one("#layers", Static).render())
        for layer in range(1, 7):
            _, outcomes = expected(data, FT, layer=layer)
            count = sum(1 for v in outcomes.values() if v)
            mark = "▶" if layer == 6 else ""
            assert f"{mark}L{layer} {count}" in line
        await pilot.press("h")  # the marker follows the layer; the counts stay
        await settle(pilot)
        assert "▶L5" in str(screen.query_one("#layers", Static).render())


async def test_g_opens_an_example_by_its_id(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        await open_examples(pilot)
        await pilot.press("g", *"s0042", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ExampleScreen) and app.screen.example == "s0042"
        assert str(app.screen.query_one("#info", Static).render()).startswith("s0042")


async def test_search_matches_ids_too(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        await pilot.press("slash", *"s004", "enter")
        await settle(pilot)
        table = screen.query_one("#table", DataTable)
        ids = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert ids == [f"s{i:04d}" for i in range(40, 50)]


async def test_the_filter_reads_as_the_equivalent_export_command(db: Path, tmp_path: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        screen = await open_examples(pilot)
        await pilot.press("o", "e", "h", "s")
        await settle(pilot)
        command = str(screen.query_one("#command", Label).render())
        assert command == (
            "editlens export --run ft-minilm --method attention --layer 5 --outcome yes"
            " --sort confidence --kind deleted --descending"
        )
        shown = screen.filters
    # The command works, and writes exactly the list's examples in the list's order.
    import json
    import shlex

    from typer.testing import CliRunner

    from engine import cli

    out = tmp_path / "list.jsonl"
    args = [*shlex.split(command)[1:], "--db", str(db), "--out", str(out)]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    exported = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    with Store(db, read_only=True) as store:
        listed = [r["id"] for b in store.filtered_batches(shown) for r in b.to_pylist()]
    assert exported == listed and exported


async def test_an_open_tui_sees_a_run_published_by_another_process(tmp_path: Path) -> None:
    import asyncio

    db = build_small(tmp_path / "store.duckdb")
    staging = build_staged_run(tmp_path / "job.staging.duckdb")
    app = EditlensApp(db, poll_seconds=0.2)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == len(RUNS)
        code = (
            "import sys; from pathlib import Path; from engine.store import publish_run;"
            " publish_run(Path(sys.argv[1]), Path(sys.argv[2]), 'ft-again')"
        )
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, str(db), str(staging), stderr=asyncio.subprocess.PIPE
        )
        _, errors = await asyncio.wait_for(writer.communicate(), 60)
        assert writer.returncode == 0, errors.decode()
        for _ in range(50):  # no key pressed: the poll notices within a few tenths of a second
            await pilot.pause(0.1)
            await settle(pilot)
            if app.screen.query_one("#runs", DataTable).row_count == len(RUNS) + 1:
                break
        assert app.screen.query_one("#runs", DataTable).row_count == len(RUNS) + 1


# -- user text is shown as it is, never read as markup or sent to the terminal ---------------


async def test_markup_and_escapes_in_user_text_are_shown_literally(tmp_path: Path) -> None:
    from tui_fixture import HOSTILE_ID, HOSTILE_RUNS, build_hostile

    db = build_hostile(tmp_path / "store.duckdb")
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        runs = app.screen.query_one("#runs", DataTable)
        assert [str(runs.get_row_at(i)[0]) for i in range(2)] == [m for _, m, _, _ in HOSTILE_RUNS]
        await pilot.press("enter")
        await settle(pilot)
        table = app.screen.query_one("#table", DataTable)
        assert str(table.get_row_at(0)[0]) == HOSTILE_ID
        text = str(table.get_row_at(0)[9])
        assert "[link=x]y[/link]" in text and "␛[2J" in text and "\x1b" not in text
        await pilot.press("enter")
        await settle(pilot)
        sentence = app.screen.query_one("#sentence", ScoredSentence)
        plain = sentence.render().renderables[0].plain
        assert "[ / bold ]" in plain and "␛" in plain and "\x1b" not in plain
        svg = app.export_screenshot()
        assert "\x1b" not in svg


async def test_g_with_an_unknown_id_says_so(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test() as pilot:
        await open_examples(pilot)
        await pilot.press("g", *"nope", "enter")
        await settle(pilot)
        info = str(app.screen.query_one("#info", Static).render())
        assert info.startswith("nope: not in this run")


async def test_a_failed_store_read_is_a_notification_not_a_crash(db: Path) -> None:
    from contextlib import contextmanager

    from engine.store import StoreError

    app = EditlensApp(db)
    notes = []
    async with app.run_test() as pilot:
        await settle(pilot)
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]

        @contextmanager
        def busy():
            raise StoreError(f"{db}: the store is busy (writer: pid 42)")
            yield

        app.handle.read = busy  # type: ignore[method-assign]
        await pilot.press("r")
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, RunsScreen)
    assert notes == [f"{db}: the store is busy (writer: pid 42)"]


async def test_an_empty_store_shows_its_runs_once_another_process_fills_it(
    tmp_path: Path,
) -> None:
    import asyncio

    from engine.store import Store

    db = tmp_path / "store.duckdb"
    Store(db).close()
    app = EditlensApp(db, poll_seconds=0.2)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ProblemScreen)
        code = (
            "import sys, pathlib, tui_fixture; tui_fixture.build_small(pathlib.Path(sys.argv[1]))"
        )
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            str(db),
            cwd=Path(__file__).parent,
            stderr=asyncio.subprocess.PIPE,
        )
        _, errors = await asyncio.wait_for(writer.communicate(), 60)
        assert writer.returncode == 0, errors.decode()
        for _ in range(50):
            await pilot.pause(0.1)
            await settle(pilot)
            if isinstance(app.screen, RunsScreen):
                break
        await settle(pilot)
        assert app.screen.query_one("#runs", DataTable).row_count == len(RUNS)
