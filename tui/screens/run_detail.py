"""What a run is: configuration, limit, methods, checkpoint, duration, N per population, with
badges for a partial run and for a classifier head that was never trained."""

from __future__ import annotations

import json

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from engine.figures import RunFacts, run_facts
from tui.screens.base import ReportsFailures
from tui.text import literal

POPULATION_NOTES = {
    "evaluated": "examples evaluated",
    "needs_edit": "of them need an edit (gold)",
    "predicted_edit": "predicted to need an edit",
    "all": "scorable: need an edit, rationale seen",
    "flagged": "scorable and flagged by the model",
}


def facts_view(facts: RunFacts) -> Group:
    """The run's facts as a two-column table under its badges; every value as plain text."""
    run = facts.run
    badges = Text()
    for badge in facts.badges:
        badges.append(f" {badge} ", style="bold reverse")
        badges.append(" ")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    minutes, seconds = divmod(round(facts.seconds), 60)
    rows = [
        ("run", run.id),
        ("model", run.model),
        ("checkpoint", run.checkpoint),
        ("classifier head", facts.head),
        ("data", f"{run.corpus} / {run.split}"),
        ("limit", "none (the whole split)" if facts.limit is None else f"first {facts.limit:,}"),
        ("methods", ", ".join(facts.methods) or "–"),
        ("layers", ", ".join(map(str, facts.layers)) or f"all {run.layers}"),
        ("shape", f"{run.layers} layers x {run.heads} heads"),
        ("started", f"{run.started:%Y-%m-%d %H:%M}"),
        ("duration", f"{minutes} min {seconds} s"),
    ]
    for key, note in POPULATION_NOTES.items():
        rows.append((f"N {key}", f"{facts.populations.get(key, 0):,}  {note}"))
    for key, value in rows:
        table.add_row(Text(key), literal(str(value)))
    config = literal(json.dumps(run.config, sort_keys=True, default=str), "dim")
    parts = [badges] if facts.badges else []
    return Group(*parts, table, Text("\nconfiguration", style="bold"), config)


class RunDetailScreen(ReportsFailures, Screen):
    """One run's facts; esc goes back to the screen it was opened from."""

    BINDINGS = [Binding("escape,d", "close", "Back")]  # noqa: RUF012
    DEFAULT_CSS = """
    RunDetailScreen #facts { height: auto; padding: 0 1; }
    """

    class Loaded(Message):
        """The run's facts came back from the store."""

        def __init__(self, facts: RunFacts) -> None:
            super().__init__()
            self.facts = facts

    def __init__(self, run: str) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(Text("reading…", style="dim"), id="facts")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run}"
        self.load(self.run)

    @work(thread=True, exclusive=True, exit_on_error=False, group="facts")
    def load(self, run: str) -> None:
        with self.app.handle.read() as store:
            facts = run_facts(store, run)
        self.post_message(self.Loaded(facts))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self.query_one("#facts", Static).update(facts_view(event.facts))

    def action_close(self) -> None:
        self.app.pop_screen()
