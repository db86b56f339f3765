"""Regression tests for the TUI defects of issue 10: each replays the keys the issue gives, through
Pilot, and checks what the screen then shows (on a store built by tests/tui_fixture).

They import only what the TUI had before the fixes, so they run (and fail) on that code too.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Label, Select, Static
from tui_fixture import RUNS, build_small, build_staged_run, build_training_run, settle

from tui.app import EditlensApp

FT, BASE = RUNS[0][0], RUNS[1][0]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("keys") / "store.duckdb")


async def open_examples(pilot):
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    assert type(pilot.app.screen).__name__ == "ExamplesScreen"
    return pilot.app.screen


def text_of(widget) -> str:
    return str(widget.render())


def status(screen) -> str:
    return text_of(screen.query_one("#status", Label))


# -- 1. method, layer and run drop-downs keep what was picked ---------------------------------


async def test_method_picked_from_its_drop_down_stays_picked(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_examples(pilot)
        await pilot.press("tab", "tab")  # from the table: run, then method
        method = screen.query_one("#method", Select)
        assert app.focused is method
        await pilot.press("enter", *["down"] * 6, "enter")  # the seventh method
        await settle(pilot)
        seventh = [value for _, value in method._options][6]
        assert method.value == seventh and screen.filters.method == seventh
        await pilot.press("enter", "home", "enter")  # and back to the first: attention
        await settle(pilot)
        await pilot.press("enter", "down", "down", "enter")  # attention → attention_max → …
        await settle(pilot)
        third = [value for _, value in method._options][2]
        assert screen.filters.method == third and method.value == third
        assert screen.filters.layer == 6  # a layered method keeps the layer


async def test_layer_picked_from_its_drop_down_stays_picked(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_examples(pilot)
        await pilot.press("tab", "tab", "tab")  # run, method, layer
        assert app.focused is screen.query_one("#layer", Select)
        await pilot.press("enter", "up", "up", "up", "enter")  # layer 6 → 3
        await settle(pilot)
        assert screen.filters.layer == 3
        assert screen.query_one("#layer", Select).value == 3
        assert "L3" in status(screen)


async def test_run_picked_from_its_drop_down_stays_picked(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_examples(pilot)
        await pilot.press("tab")  # the run drop-down
        await pilot.press("enter", "down", "enter")
        await settle(pilot)
        assert screen.filters.run == BASE
        assert screen.query_one("#run", Select).value == BASE
        assert (screen.filters.method, screen.filters.layer) == ("attention", 6)


# -- 2. typing fast into search changes nothing but the search ---------------------------------


async def test_fast_typing_in_search_leaves_method_and_layer_alone(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_examples(pilot)
        await pilot.press("tab", "tab", "tab", "enter", "up", "enter")  # layer 5
        await settle(pilot)
        assert screen.filters.layer == 5
        await pilot.press("slash", *"the model", "backspace", "backspace")
        await settle(pilot, quiet=0.5)
        assert screen.filters.search == "the mod"
        assert (screen.filters.method, screen.filters.layer) == ("attention", 5)
        assert screen.query_one("#layer", Select).value == 5


# -- 3. the example screen lays its sentence out again after each step -------------------------


async def test_sentence_height_follows_the_example_after_stepping(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_examples(pilot)
        await pilot.press("enter")
        await settle(pilot)
        sentence = app.screen.query_one("#sentence")
        for key in ["h", "l", *["n"] * 12]:
            await pilot.press(key)
            await settle(pilot)
            width = sentence.content_region.width
            wanted = sentence.get_content_height(app.screen.size, app.size, width)
            assert sentence.content_region.height == wanted, f"after {key}: stale height"


# -- 4. serve starts the TUI with this interpreter, not whatever PATH finds --------------------


def test_serve_runs_this_interpreter_without_path(monkeypatch, tmp_path: Path) -> None:
    import textual_serve.server

    from tui import serve

    commands = []

    class FakeServer:
        def __init__(self, command: str, **_: object) -> None:
            commands.append(command)

        def serve(self) -> None:
            pass

    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    serve.serve(tmp_path / "store.duckdb")
    args = shlex.split(commands[0])
    assert args[0] == sys.executable
    assert args[-2:] == ["--db", str((tmp_path / "store.duckdb").resolve())]
    help_args = [*args[: args.index("tui") + 1], "--help"]
    done = subprocess.run(help_args, env={"PATH": ""}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- 6, 7. the job: progress on every screen, ctrl+s never starts one, q asks -------------------


class Event:
    def __init__(self, kind: str, **fields) -> None:
        self.kind = kind
        self.done = fields.get("done", 0)
        self.total = fields.get("total", 0)
        self.message = fields.get("message", "")
        self.run = ""
        self.staging = ""


class SlowJob:
    """Reports 3 of 10 examples done, then waits until cancelled."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def events(self):
        yield Event("progress", done=3, total=10, message="evaluating")
        self.cancelled.wait(10)
        yield Event("error", message="cancelled")

    def cancel(self) -> None:
        self.cancelled.set()

    def returncode(self) -> int:
        return 1


def job_app(db: Path, jobs: list) -> EditlensApp:
    def factory(spec, path):
        jobs.append(SlowJob())
        return jobs[-1]

    return EditlensApp(db, job_factory=factory)


async def test_ctrl_s_in_the_evaluate_form_does_not_start_a_job(db: Path) -> None:
    jobs: list[SlowJob] = []
    app = job_app(db, jobs)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert jobs == []
        assert type(app.screen).__name__ == "EvaluateScreen"


async def test_the_evaluate_form_fine_tunes_for_as_many_epochs_as_the_cli(db: Path) -> None:
    from textual.widgets import Input

    from engine.train import TrainSpec

    app = job_app(db, [])
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        assert app.screen.query_one("#epochs", Input).value == str(TrainSpec.epochs)


async def test_job_progress_shows_on_the_examples_screen_with_its_pace(db: Path) -> None:
    jobs: list[SlowJob] = []
    app = job_app(db, jobs)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        await pilot.click("#start")
        await pilot.pause(0.3)
        assert len(jobs) == 1
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "ExamplesScreen"
        panel = app.screen.query_one("JobPanel")
        assert panel.display
        message = text_of(panel.query_one("#job-message", Label))
        assert "evaluating" in message and "/s" in message and "ETA" in message
        jobs[0].cancel()
        await settle(pilot)


async def test_q_with_a_job_running_asks_and_cancels_the_job(db: Path) -> None:
    jobs: list[SlowJob] = []
    app = job_app(db, jobs)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        await pilot.click("#start")
        await pilot.pause(0.3)
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and not jobs[0].cancelled.is_set()
        await pilot.press("q", "y")
        await pilot.pause()
    assert jobs[0].cancelled.is_set()


# -- 8. focus on the runs table; a training run shows its history -----------------------------


async def test_runs_table_has_focus_at_launch_and_after_escape(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        runs = app.screen.query_one("#runs", DataTable)
        assert app.focused is runs
        await pilot.press("down")
        assert runs.cursor_row == 1
        await pilot.press("up", "enter")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.focused is app.screen.query_one("#runs", DataTable)


async def test_a_training_run_opens_its_history(tmp_path: Path) -> None:
    db = build_small(tmp_path / "store.duckdb")
    build_training_run(db)
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")  # the third run: the training run
        await settle(pilot)
        table = app.screen.query_one("#history", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert [row[:3] for row in rows] == [["1", "0.6900", "0.6100"], ["2", "0.5200", "0.5500"]]
        about = text_of(app.screen.query_one("#about", Static))
        assert "best epoch 2" in about and "accuracy 0.7800" in about


async def test_the_palette_opens_a_training_run_as_its_history(tmp_path: Path) -> None:
    db = build_training_run(build_small(tmp_path / "store.duckdb"))
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_examples(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"training history")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.query_one("#history", DataTable).row_count == 2
        names = [type(s).__name__ for s in app.screen_stack]
        assert "ExamplesScreen" not in names


# -- 11. the model's top-k read without colour: each carries its rank ---------------------------


async def test_top_words_carry_their_rank_in_plain_text(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_examples(pilot)
        await pilot.press("enter")
        await settle(pilot)
        sentence = app.screen.query_one("#sentence")
        detail, row = sentence.detail, sentence.scores
        scores = row["scores"]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        plain = sentence.render().renderables[0].plain
        assert f"{detail['words'][best]}¹" in plain


async def test_no_color_drops_the_inverted_grey_ramp_and_keeps_the_ranks(
    db: Path, monkeypatch
) -> None:
    from rich.style import Style

    monkeypatch.setenv("NO_COLOR", "1")
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_examples(pilot)
        await pilot.press("enter")
        await settle(pilot)
        body = app.screen.query_one("#sentence").render().renderables[0]
        styles = [span.style for span in body.spans]
        assert not any(isinstance(s, Style) and s.bgcolor for s in styles)
        assert "¹" in body.plain and "▸" in body.plain


# -- 12. one examples screen at a time, no key clashes, the list follows stepping --------------


async def test_open_run_from_the_palette_replaces_the_examples_screen(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_examples(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open run minilm-random")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        names = [type(s).__name__ for s in app.screen_stack]
        assert names.count("ExamplesScreen") == 1
        assert app.screen.filters.run == BASE


async def test_list_keys_mean_what_they_mean_on_the_example_screen(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_examples(pilot)
        before = screen.filters
        table = screen.query_one("#table", DataTable)
        await pilot.press("j", "j", "p", "k")  # next, next, (nothing), previous: rows, not filters
        await settle(pilot)
        assert screen.filters == before and table.cursor_row == 1
        await pilot.press("h")  # layer −1, as on the example screen
        await settle(pilot)
        assert screen.filters.layer == 5
        await pilot.press("m")  # next method, as on the example screen
        await settle(pilot)
        assert screen.filters.method != "attention"


async def test_list_follows_the_example_stepped_to(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_examples(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("n", "n", "n")
        await settle(pilot)
        stepped = app.screen.example
        await pilot.press("escape")
        await settle(pilot)
        table = screen.query_one("#table", DataTable)
        assert str(table.get_row_at(table.cursor_row)[0]) == stepped


async def test_list_follows_the_example_onto_the_next_page(db: Path) -> None:
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_examples(pilot)
        screen.query_one("#table", DataTable).move_cursor(row=49)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("n", "n")
        await settle(pilot)
        assert app.screen.example == "s0052"
        await pilot.press("escape")
        await settle(pilot)
        table = screen.query_one("#table", DataTable)
        assert "rows 51–60 of 60" in status(screen)
        assert str(table.get_row_at(table.cursor_row)[0]) == "s0052"


async def test_runs_with_the_same_model_get_distinct_labels_at_80_columns(tmp_path: Path) -> None:
    from engine.store import Store

    db = build_small(tmp_path / "store.duckdb")
    staging = build_staged_run(tmp_path / "again.duckdb", run_id="ft-minilm-2")
    with Store(db) as store:
        store.merge_run(staging, "ft-minilm-2")
    app = EditlensApp(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert len(set(labels)) == len(labels) == 3
        screen_text = app.export_screenshot()
        for header in ("N", "acc", "F1", "top-3"):
            assert f">{header}" in screen_text or f"{header}&#160;" in screen_text


# -- 9. export: the format follows the file name; no silent overwrite; where it goes -----------


async def test_export_format_follows_the_extension_and_asks_before_overwriting(
    db: Path, tmp_path: Path
) -> None:
    import json

    target = tmp_path / "out.jsonl"
    target.write_text("keep me\n")
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_examples(pilot)
        await pilot.press("ctrl+e")
        await pilot.pause()
        path = app.screen.query_one("#path", Input)
        path.value = str(target)  # the menu still says csv
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert target.read_text() == "keep me\n"  # not overwritten without asking
        await pilot.press("enter")  # asked: yes
        await settle(pilot)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 60 and rows[0]["id"] == "s0001"


async def test_export_follows_the_lists_sort_and_says_where_it_writes(
    db: Path, tmp_path: Path, monkeypatch
) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_examples(pilot)
        await pilot.press("s")  # sort by confidence, most confident first
        await settle(pilot)
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = "sorted.jsonl"
        await pilot.pause()
        where = text_of(app.screen.query_one("#where", Static))
        assert str(tmp_path / "sorted.jsonl") in where
        await pilot.press("enter")
        await settle(pilot)
    rows = [json.loads(line) for line in (tmp_path / "sorted.jsonl").read_text().splitlines()]
    confidence = [row["confidence"] for row in rows]
    assert len(rows) == 60 and confidence == sorted(confidence, reverse=True)


async def test_export_carries_run_model_word_scores_and_top_k_words(
    db: Path, tmp_path: Path
) -> None:
    import json

    from tui_fixture import small_data

    from engine.metrics import rank_words

    examples, runs = small_data()
    words = {e.id: e.words for e in examples}
    sizes = {e.id: len(e.rationale) for e in examples}
    scores = {
        row["example"]: row["scores"]
        for row in runs[0][1]["scores"].to_pylist()
        if (row["method"], row["layer"]) == ("attention", 6)
    }
    target = tmp_path / "out.jsonl"
    app = EditlensApp(db)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_examples(pilot)
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert {(row["run"], row["model"]) for row in rows} == {(FT, "minilm+ft:demo")}
    for row in rows:
        ranked = rank_words(scores[row["id"]])[: max(sizes[row["id"]], 1)]
        assert row["top_k_words"] == [words[row["id"]][i] for i in ranked]
        assert row["word_scores"] == pytest.approx(scores[row["id"]])


# -- 10. the flagged matrix: N per row, small cells marked -------------------------------------


async def test_flagged_matrix_shows_n_per_run_and_marks_small_cells(db: Path) -> None:
    from tui_fixture import small_data

    _, runs = small_data()
    flagged = {
        run.id: sum(1 for p in tables["predictions"].to_pylist() if p["pred"] and p["scorable"])
        for run, tables in runs
    }
    assert min(flagged.values()) < 30 <= max(flagged.values())  # the fixture has both kinds
    app = EditlensApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        matrix = app.screen.query_one("#matrix", DataTable)
        for index, run in enumerate(run.id for run, _ in runs):
            row = [str(cell) for cell in matrix.get_row_at(index)]
            assert row[1] == str(flagged[run])
            assert all(cell.endswith("†") == (flagged[run] < 30) for cell in row[2:])
