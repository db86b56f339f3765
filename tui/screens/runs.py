"""The home screen: every run, a runs x methods table, and evaluation jobs started from here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Static

from engine.store import OUTCOME_METRICS
from tui.messages import OpenRun

METHOD_ABBREVIATIONS = {
    "attention": "attn",
    "attention_max": "attn_max",
    "grad_x_input": "grad×in",
    "integrated_gradients": "IG",
}
MATRIX_METRICS = ("top3", "hit1", "exact", "jaccard50", "jaccard", "token_f1", "auprc")


class JobPanel(Horizontal):
    """A running evaluation: what it is, a progress bar, and its last message."""

    DEFAULT_CSS = """
    JobPanel { height: auto; display: none; padding: 0 1; }
    JobPanel.-active { display: block; }
    JobPanel Label { width: auto; margin-right: 1; }
    JobPanel ProgressBar { width: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="job-title")
        yield ProgressBar(show_eta=False, id="job-bar")
        yield Label("", id="job-message")

    def start(self, title: str) -> None:
        self.add_class("-active")
        self.query_one("#job-title", Label).update(title)
        self.query_one("#job-bar", ProgressBar).update(total=None, progress=0)
        self.query_one("#job-message", Label).update("starting… (x cancels)")

    def progress(self, done: int, total: int, message: str = "") -> None:
        self.query_one("#job-bar", ProgressBar).update(total=total or None, progress=done)
        if message:
            self.query_one("#job-message", Label).update(message)

    def finish(self) -> None:
        self.remove_class("-active")


class RunsScreen(Screen):
    """Runs, their headline figures, and the study's runs x methods table."""

    BINDINGS = [  # noqa: RUF012
        Binding("enter", "open", "Examples", show=True),
        Binding("slash", "search", "Search"),
        Binding("e", "evaluate", "Evaluate…"),
        Binding("x", "cancel_job", "Cancel job"),
        Binding("t", "next_metric", "Table metric"),
        Binding("f", "toggle_population", "All/flagged"),
        Binding("r", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    RunsScreen #runs { height: auto; max-height: 10; }
    RunsScreen #matrix { height: auto; max-height: 12; }
    RunsScreen .title { padding: 0 1; color: $text-muted; text-style: bold; }
    RunsScreen #empty { padding: 1 2; }
    """

    matrix_metric: reactive[str] = reactive("top3")
    """The metric in the runs x methods table (best layer's mean per method)."""
    population: reactive[str] = reactive("all")
    """Population of the table: 'all' scorable sentences or those the model 'flagged'."""

    class Loaded(Message):
        """Runs and the method table were read from the store (posted by the loading worker)."""

        def __init__(self, overview: pa.Table, matrix: pa.Table) -> None:
            super().__init__()
            self.overview = overview
            self.matrix = matrix

    class JobUpdate(Message):
        """An event from the running job's worker."""

        def __init__(self, kind: str, done: int = 0, total: int = 0, message: str = "") -> None:
            super().__init__()
            self.kind = kind
            self.done = done
            self.total = total
            self.message = message

    def __init__(self) -> None:
        super().__init__()
        self._run_ids: list[str] = []
        self._job: Any = None
        self._cancel_requested = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("", id="empty")
            yield Label("Runs", classes="title")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Label("", id="matrix-title", classes="title")
            yield DataTable(id="matrix", cursor_type="row")
            yield JobPanel()
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#runs", DataTable)
        runs.add_columns("model", "run", "corpus/split", "N", "acc", "F1", "best method", "top-3")
        self.query_one("#empty").display = False
        self.load()

    @work(thread=True, exclusive=True, group="runs")
    def load(self) -> None:
        with self.app.handle.read() as store:
            overview = store.run_overview()
            matrix = store.method_matrix(self.matrix_metric, self.population)
        self.post_message(self.Loaded(overview, matrix))

    def watch_matrix_metric(self) -> None:
        if self.is_mounted:
            self.load()

    def watch_population(self) -> None:
        if self.is_mounted:
            self.load()

    @on(Loaded)
    def show(self, event: Loaded) -> None:
        runs = self.query_one("#runs", DataTable)
        current = runs.cursor_row
        runs.clear()
        rows = event.overview.to_pylist()
        self._run_ids = [row["id"] for row in rows]
        for row in rows:
            best = "–"
            if row["best_method"]:
                layer = f" L{row['best_layer']}" if row["best_layer"] else ""
                best = f"{row['best_method']}{layer}"
            runs.add_row(
                row["model"],
                row["id"],
                f"{row['corpus']}/{row['split']}",
                f"{row['n']:,}",
                _num(row["accuracy"]),
                _num(row["f1"]),
                best,
                _num(row["best_top3"]),
                key=row["id"],
            )
        if rows:
            runs.move_cursor(row=min(current, len(rows) - 1))
        empty = self.query_one("#empty", Static)
        empty.display = not rows
        empty.update(
            "No runs in this store yet.\n\nEvaluate a model with `editlens evaluate` "
            "(or `editlens demo` for the whole loop), or press [b]e[/b] to start one here."
        )
        self._show_matrix(event.matrix, rows)

    def _show_matrix(self, matrix: pa.Table, runs: list[dict[str, Any]]) -> None:
        table = self.query_one("#matrix", DataTable)
        table.clear(columns=True)
        values = matrix.to_pylist()
        methods = sorted({row["method"] for row in values})
        n = max((row["n"] for row in values), default=0)
        self.query_one("#matrix-title", Label).update(
            f"Runs × methods · mean {self.matrix_metric} at the best layer · "
            f"{self.population} · N≤{n:,}"
        )
        table.add_column("model", key="model")
        for method in methods:
            table.add_column(METHOD_ABBREVIATIONS.get(method, method), key=method)
        cells = {(row["run"], row["method"]): row for row in values}
        for run in runs:
            line = [run["model"]]
            for method in methods:
                row = cells.get((run["id"], method))
                if row is None or row["value"] is None:
                    line.append("–")
                else:
                    layer = f" L{row['layer']}" if row["layer"] else ""
                    line.append(f"{row['value']:.2f}{layer}")
            table.add_row(*line, key=run["id"])

    def selected_run(self) -> str | None:
        runs = self.query_one("#runs", DataTable)
        if not self._run_ids:
            return None
        return self._run_ids[min(runs.cursor_row, len(self._run_ids) - 1)]

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.post_message(OpenRun(event.row_key.value))

    def action_open(self) -> None:
        run = self.selected_run()
        if run:
            self.post_message(OpenRun(run))

    def action_search(self) -> None:
        run = self.selected_run()
        if run:
            self.post_message(OpenRun(run, search=True))

    def action_next_metric(self) -> None:
        metrics = [m for m in MATRIX_METRICS if m in OUTCOME_METRICS]
        self.matrix_metric = metrics[(metrics.index(self.matrix_metric) + 1) % len(metrics)]

    def action_toggle_population(self) -> None:
        self.population = "flagged" if self.population == "all" else "all"

    def action_reload(self) -> None:
        self.load()

    # -- evaluation jobs ---------------------------------------------------------------------

    def action_evaluate(self) -> None:
        from tui.screens.evaluate import EvaluateScreen

        if self._job is not None:
            self.notify("a job is already running; x cancels it", severity="warning")
            return
        with self.app.handle.read() as store:
            corpora = [c.name for c in store.corpora()]
        self.app.push_screen(EvaluateScreen(corpora), self._start_job)

    def _start_job(self, spec: dict[str, Any] | None) -> None:
        if not spec:
            return
        try:
            job = self.app.job_factory(spec, self.app.db)
        except Exception as error:  # the engine refused the spec or could not start
            self.notify(f"could not start the job: {error}", severity="error", timeout=10)
            return
        self._job = job
        self._cancel_requested = False
        self.query_one(JobPanel).start(f"evaluating {spec['model']} on {spec['corpus']}")
        self.follow_job(job)

    @work(thread=True, exclusive=True, group="job")
    def follow_job(self, job: Any) -> None:
        """Relay the job's events as messages; publish its run when it is staged."""
        failed = ""
        published = False
        try:
            for event in job.events():
                if event.kind == "progress" or (event.kind == "log" and event.message):
                    self.post_message(
                        self.JobUpdate("progress", event.done, event.total, event.message)
                    )
                elif event.kind == "error":
                    failed = event.message or "the job reported an error"
                elif event.kind == "staged" and not failed:
                    self.post_message(
                        self.JobUpdate("progress", event.done, event.total, "publishing…")
                    )
                    self.app.handle.publish(Path(event.staging), event.run)
                    published = True
        except Exception as error:
            failed = f"{type(error).__name__}: {error}"
        code = job.returncode()
        if not failed and not published:
            failed = "cancelled" if self._cancel_requested else f"exited with code {code}"
        if published:
            self.post_message(self.JobUpdate("done", message="results published"))
        else:
            self.post_message(self.JobUpdate("failed", message=failed))

    @on(JobUpdate)
    def _job_update(self, event: JobUpdate) -> None:
        panel = self.query_one(JobPanel)
        if event.kind == "progress":
            panel.progress(event.done, event.total, event.message)
            return
        panel.finish()
        self._job = None
        if event.kind == "done":
            self.notify("evaluation finished: results are in the runs table", timeout=8)
            self.load()
        else:
            self.notify(
                f"evaluation stopped ({event.message}); the store is unchanged",
                severity="error",
                timeout=15,
            )

    def action_cancel_job(self) -> None:
        if self._job is None:
            self.notify("no job is running")
            return
        self._cancel_requested = True
        self._job.cancel()
        self.query_one(JobPanel).progress(0, 0, "cancelling…")


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
