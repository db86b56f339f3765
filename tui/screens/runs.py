"""The home screen: every run, a runs x methods table, and evaluation jobs started from here."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from engine.store import OUTCOME_METRICS
from engine.vocabulary import method_info, method_order
from tui.messages import OpenRun
from tui.screens.base import ReportsFailures
from tui.text import literal
from tui.widgets.job import JobPanel

SMALL_N = 30  # fewer examples than this in a cell: marked, its mean is too noisy to rank
MATRIX_METRICS = ("top3", "hit1", "exact", "jaccard50", "jaccard", "token_f1", "auprc")


def run_labels(overview: list[dict[str, Any]]) -> dict[str, str]:
    """A label per run that tells runs apart in 30 columns: the model, then the corpus/split
    where two runs share a model, then `#n` (in start order) where that is still not enough."""
    models = Counter(row["model"] for row in overview)
    labels = {}
    for row in overview:
        label = row["model"]
        if models[label] > 1:
            label = f"{label} {row['corpus']}/{row['split']}"
        labels[row["id"]] = label
    seen: Counter[str] = Counter()
    repeated = Counter(labels.values())
    for run, label in labels.items():
        if repeated[label] > 1:
            seen[label] += 1
            labels[run] = f"{label} #{seen[label]}"
    return labels


def _short(method: str) -> str:
    try:
        return method_info(method).short
    except KeyError:
        return method


class RunsScreen(ReportsFailures, Screen):
    """Runs, their headline figures, and the study's runs x methods table."""

    BINDINGS = [  # noqa: RUF012
        Binding("enter", "open", "Examples", show=True),
        Binding("slash", "search", "Search"),
        Binding("e", "evaluate", "Evaluate…"),
        Binding("t", "next_metric", "Table metric"),
        Binding("f", "toggle_population", "All/flagged"),
        Binding("r", "reload", "Reload"),
        Binding("d", "run_detail", "Run detail"),
        Binding("s", "staging", "Staging files"),
    ]
    DEFAULT_CSS = """
    RunsScreen #runs { height: auto; max-height: 10; }
    RunsScreen #matrix { height: auto; max-height: 12; }
    RunsScreen .title { padding: 0 1; color: $text-muted; text-style: bold; }
    RunsScreen #matrix-title, RunsScreen #runs-title { width: 1fr; height: auto; }
    RunsScreen #empty { padding: 1 2; }
    """

    matrix_metric: reactive[str] = reactive("top3")
    """The metric in the runs x methods table (best layer's mean per method)."""
    population: reactive[str] = reactive("all")
    """Population of the table: 'all' scorable sentences or those the model 'flagged'."""

    class Loaded(Message):
        """Runs, corpora and the method table were read from the store (by the worker)."""

        def __init__(
            self, overview: pa.Table, matrix: pa.Table, corpora: list[str], stale: dict[str, str]
        ) -> None:
            super().__init__()
            self.overview = overview
            self.matrix = matrix
            self.corpora = corpora
            self.stale = stale  # run id -> why its figures no longer match the store's text

    def __init__(self) -> None:
        super().__init__()
        self._runs: list[dict[str, Any]] = []
        self._corpora: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("", id="empty")
            yield Label("Runs", id="runs-title", classes="title")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Label("", id="matrix-title", classes="title")
            yield DataTable(id="matrix", cursor_type="row")
        yield JobPanel()
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#runs", DataTable)
        runs.add_columns("model", "corpus/split", "kind", "N", "acc", "F1", "best", "top-3", "run")
        self.query_one("#empty").display = False
        runs.focus()
        self.load()

    def on_screen_resume(self) -> None:
        self.query_one("#runs", DataTable).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs")
    def load(self) -> None:
        with self.app.handle.read() as store:
            overview = store.run_overview()
            matrix = store.method_matrix(self.matrix_metric, self.population)
            corpora = [c.name for c in store.corpora()]
            stale = store.stale_runs()
        self.post_message(self.Loaded(overview, matrix, corpora, stale))

    def refresh_data(self) -> None:
        """Read the store again (the app calls this when the store changed)."""
        self.load()

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
        labels = run_labels(rows)
        self._runs = rows
        self._corpora = event.corpora
        self.app.run_choices = [
            (row["id"], labels[row["id"]], f"{row['corpus']}/{row['split']}", row["kind"])
            for row in rows
        ]
        for row in rows:
            best = "–"
            if row["best_method"]:
                layer = f" L{row['best_layer']}" if row["best_layer"] else ""
                best = f"{_short(row['best_method'])}{layer}"
            runs.add_row(
                literal(labels[row["id"]]),
                literal(f"{row['corpus']}/{row['split']}"),
                _kind(row["kind"], row["id"] in event.stale),
                f"{row['n']:,}",
                _num(row["accuracy"]),
                _num(row["f1"]),
                best,
                _num(row["best_top3"]),
                literal(row["id"], style="dim"),
                key=row["id"],
            )
        if rows:
            runs.move_cursor(row=min(current, len(rows) - 1))
        self._show_stale(event.stale, labels)
        empty = self.query_one("#empty", Static)
        empty.display = not rows
        empty.update(
            "No runs in this store yet.\n\nEvaluate a model with `editlens evaluate` "
            "(or `editlens demo` for the whole loop), or press [b]e[/b] to start one here."
        )
        self._show_matrix(event.matrix, rows, labels)

    def _show_stale(self, stale: dict[str, str], labels: dict[str, str]) -> None:
        """The title says which runs are stale and why: their figures were computed on
        sentences that a re-ingest has since changed (``ingest --replace-scored stale``)."""
        title = Text("Runs")
        for run, why in stale.items():
            if run in labels:
                title.append(f" · {labels[run]} stale: {why}; rerun it", style="bold")
        self.query_one("#runs-title", Label).update(title)

    def _show_matrix(
        self, matrix: pa.Table, runs: list[dict[str, Any]], labels: dict[str, str]
    ) -> None:
        """Each row's N beside its model; a cell over fewer than SMALL_N examples is marked †,
        so a one-sentence 1.00 does not read as the best cell."""
        table = self.query_one("#matrix", DataTable)
        table.clear(columns=True)
        values = matrix.to_pylist()
        methods = sorted({row["method"] for row in values}, key=method_order)
        self.query_one("#matrix-title", Label).update(
            Text(
                f"Runs × methods · mean {self.matrix_metric} at the best layer (picked on these"
                f" same examples) · {self.population} · † N<{SMALL_N}"
            )
        )
        table.add_column("model", key="model")
        table.add_column("N", key="n")
        for method in methods:
            table.add_column(_short(method), key=method)
        cells = {(row["run"], row["method"]): row for row in values}
        for run in runs:
            ns = [cells[(run["id"], m)]["n"] for m in methods if (run["id"], m) in cells]
            n = "–" if not ns else f"{min(ns):,}" + ("" if min(ns) == max(ns) else f"–{max(ns):,}")
            line: list[Any] = [literal(labels[run["id"]]), n]
            for method in methods:
                row = cells.get((run["id"], method))
                if row is None or row["value"] is None:
                    line.append("–")
                    continue
                layer = f" L{row['layer']}" if row["layer"] else ""
                small = row["n"] < SMALL_N
                cell = Text(f"{row['value']:.2f}{layer}" + ("†" if small else ""))
                if small:
                    cell.stylize("dim")
                line.append(cell)
            table.add_row(*line, key=run["id"])

    def selected_run(self) -> dict[str, Any] | None:
        if not self._runs:
            return None
        runs = self.query_one("#runs", DataTable)
        return self._runs[min(runs.cursor_row, len(self._runs) - 1)]

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        run = next((r for r in self._runs if r["id"] == event.row_key.value), None)
        if run is not None:
            self._open(run)

    def action_open(self) -> None:
        run = self.selected_run()
        if run:
            self._open(run)

    def _open(self, run: dict[str, Any], search: bool = False) -> None:
        """An evaluation opens its examples; a training run, its history."""
        if run["kind"] == "train":
            self.app.open_training(run["id"])
        else:
            self.post_message(OpenRun(run["id"], search=search))

    def action_search(self) -> None:
        run = self.selected_run()
        if run:
            self._open(run, search=True)

    def action_next_metric(self) -> None:
        metrics = [m for m in MATRIX_METRICS if m in OUTCOME_METRICS]
        self.matrix_metric = metrics[(metrics.index(self.matrix_metric) + 1) % len(metrics)]

    def action_toggle_population(self) -> None:
        self.population = "flagged" if self.population == "all" else "all"

    def action_reload(self) -> None:
        self.app.reload()

    def action_run_detail(self) -> None:
        from tui.screens.run_detail import RunDetailScreen

        run = self.selected_run()
        if run:
            self.app.push_screen(RunDetailScreen(run["id"]))

    def action_staging(self) -> None:
        self.app.open_staging()

    def action_evaluate(self) -> None:
        from tui.screens.evaluate import EvaluateScreen

        self.app.push_screen(EvaluateScreen(self._corpora), self._start_job)

    def _start_job(self, spec: dict[str, Any] | None) -> None:
        if spec:
            self.app.start_job(spec)


def _kind(kind: str, stale: bool) -> Text:
    """The run's kind, with a badge when its figures describe sentences that changed since."""
    text = Text(kind)
    if stale:
        text.append(" stale", style="bold reverse")
    return text


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
