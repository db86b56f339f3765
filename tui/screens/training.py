"""A training run: its configuration and, per epoch, the losses and dev figures it recorded."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.screens.base import ReportsFailures
from tui.text import literal
from tui.widgets.job import JobPanel

# History columns in reading order; anything else a newer trainer records follows them.
COLUMNS = (
    "epoch",
    "train_loss",
    "dev_loss",
    "dev_accuracy",
    "dev_f1",
    "dev_precision",
    "dev_recall",
    "examples_per_s",
    "seconds",
)


def history_columns(history: list[dict[str, Any]]) -> list[str]:
    present = {key for row in history for key in row}
    return [c for c in COLUMNS if c in present] + sorted(present - set(COLUMNS))


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"
    return "–" if value is None else str(value)


class TrainingScreen(ReportsFailures, Screen):
    """What a fine-tuning run did, epoch by epoch (a training run has no examples to list)."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Runs")]  # noqa: RUF012
    DEFAULT_CSS = """
    TrainingScreen #about { height: auto; padding: 0 1; background: $boost; }
    TrainingScreen #history { height: 1fr; }
    """

    class Loaded(Message):
        """The run's row came back from the store."""

        def __init__(self, run: Any) -> None:
            super().__init__()
            self.run = run

    def __init__(self, run: str) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("loading…", style="dim"), id="about")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield JobPanel()
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"training run {self.run}"
        self.query_one("#history", DataTable).focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def load(self) -> None:
        with self.app.handle.read() as store:
            run = store.get_run(self.run)
        self.post_message(self.Loaded(run))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        run = event.run
        metrics = run.metrics
        history: list[dict[str, Any]] = metrics.get("history") or []
        about = Text()
        about.append(literal(run.model, style="bold"))
        about.append(literal(f"  fine-tuned on {run.corpus}/{run.split}  ({run.id})", "dim"))
        about.append("\n")
        config = ", ".join(f"{k} {v}" for k, v in sorted(run.config.items()))
        about.append(literal(config))
        about.append("\n")
        best = metrics.get("best_epoch")
        dev = metrics.get("dev") or {}
        figures = " · ".join(f"{k} {cell(v)}" for k, v in dev.items())
        about.append(f"best epoch {best}: dev {figures}\n" if best else "no epoch finished\n")
        about.append(literal(f"checkpoint {run.checkpoint}", "dim"))
        if not history:
            about.append("\nthis run recorded no per-epoch history", style="dim")
        self.query_one("#about", Static).update(about)
        table = self.query_one("#history", DataTable)
        table.clear(columns=True)
        columns = history_columns(history)
        for column in columns:
            table.add_column(column.replace("_", " "), key=column)
        for row in history:
            marked = row.get("epoch") == best
            table.add_row(
                *(literal(cell(row.get(c)), style="bold" if marked else "") for c in columns)
            )
