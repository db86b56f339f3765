"""Pinned examples: pin or unpin from the examples list and the example screen (``b``); the
"pinned only" list shows them under the current run, method and layer, and exports them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from engine.errors import EditlensError
from engine.text import inert
from tui.bookmarks import Bookmarks
from tui.screens.base import ReportsFailures
from tui.screens.exporting import ExportsRecords
from tui.state import Filters
from tui.text import literal


def toggle_pin(screen: Screen, run: str, example: str) -> None:
    """Pin ``example`` (of ``run``'s corpus) or unpin it, in a worker, and say which."""

    def toggle() -> None:
        with screen.app.handle.read() as store:
            corpus = store.get_run(run).corpus
        pinned = Bookmarks(screen.app.db).toggle(corpus, example)
        count = len(Bookmarks(screen.app.db).pinned(corpus))
        verb = "pinned" if pinned else "unpinned"
        screen.app.call_from_thread(
            screen.notify, inert(f"{verb} {example} ({count} pinned in {corpus})"), markup=False
        )

    screen.run_worker(toggle, thread=True, exit_on_error=False, group="pin")


class PinnedScreen(ReportsFailures, ExportsRecords, Screen):
    """The pinned examples of the run's corpus under the list's run, method and layer."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Back"),
        Binding("b", "unpin", "Unpin"),
        Binding("ctrl+e", "export", "Export pinned"),
    ]
    DEFAULT_CSS = """
    PinnedScreen #title { height: auto; padding: 0 1; background: $boost; }
    PinnedScreen #table { height: 1fr; }
    PinnedScreen #status { height: 1; padding: 0 1; color: $text-muted; }
    """

    class Loaded(Message):
        """The pinned examples as export records (see ``analysis.examples_by_id``)."""

        def __init__(self, corpus: str, pinned: list[str], records: pa.Table) -> None:
            super().__init__()
            self.corpus = corpus
            self.pinned = pinned
            self.records = records

    def __init__(self, filters: Filters) -> None:
        super().__init__()
        self.filters = filters
        self._corpus = ""
        self._records = pa.table({})
        self._rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("reading…", style="dim"), id="title")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#table", DataTable).add_columns("id", "kind", "pred", "interp", "text")
        self.query_one("#table", DataTable).focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="pinned")
    def load(self) -> None:
        f = self.filters
        with self.app.handle.read() as store:
            corpus = store.get_run(f.run).corpus
            pinned = Bookmarks(self.app.db).pinned(corpus)
            records = store.examples_by_id(f.run, f.method, f.layer, pinned)
        self.post_message(self.Loaded(corpus, pinned, records))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        f = self.filters
        self._corpus, self._records = event.corpus, event.records
        self._rows = event.records.to_pylist()
        title = Text(f"Pinned in {inert(event.corpus)}", style="bold")
        title.append(f": {len(event.pinned):,} · under {f.method}")
        title.append(f" L{f.layer}" if f.layer else "")
        missing = len(event.pinned) - len(self._rows)
        if missing:
            title.append(f" · {missing:,} not evaluated by this run", style="dim")
        self.query_one("#title", Static).update(title)
        table = self.query_one("#table", DataTable)
        table.clear()
        for row in self._rows:
            interp = row[f.metric]
            table.add_row(
                literal(row["id"]),
                literal(row["kind"]),
                ("T" if row["pred"] == row["label"] else "F") + ("P" if row["pred"] else "N"),
                "–" if interp is None else ("✓" if interp else "✗"),
                literal(row["text"][:120]),
                key=row["id"],
            )
        self.query_one("#status", Label).update(
            "enter opens · b unpins · ctrl+e exports the pinned" if self._rows else "none pinned"
        )

    @on(DataTable.RowSelected, "#table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        from tui.screens.example import ExampleScreen

        ids = [row["id"] for row in self._rows]
        if ids:
            self.app.push_screen(
                ExampleScreen(self.filters, ids, index=event.cursor_row, offset=0, total=len(ids))
            )

    def on_screen_resume(self) -> None:
        self.load()  # pins may have changed on the example screen

    def action_unpin(self) -> None:
        table = self.query_one("#table", DataTable)
        if not self._rows:
            return
        try:
            Bookmarks(self.app.db).toggle(self._corpus, self._rows[table.cursor_row]["id"])
        except EditlensError as error:
            self.notify(str(error), severity="error", markup=False)
        self.load()

    def action_export(self) -> None:
        from tui.screens.dialogs import ExportScreen

        if not self._rows:
            self.notify("nothing pinned to export")
            return
        dialog = ExportScreen(
            self.filters,
            title="Export the pinned examples",
            note="The pinned examples listed here, under this run, method and layer.",
        )
        self.app.push_screen(dialog, self._export)

    def _export(self, target: tuple[str, str] | None) -> None:
        if not target:
            return
        from engine.export import write_records

        records, (fmt, path) = self._records, target

        def write() -> int:  # the dialog asked before overwriting
            return write_records(
                records.to_batches(), fmt, Path(path), force=True, protected=[self.app.db]
            )

        self.export_in_background(write, path, "pinned examples")

    def action_back(self) -> None:
        self.app.pop_screen()
