"""Leftover staging files (issue 10, defect 7): what unfinished evaluations left beside the store,
and a key that removes the idle ones after asking; what ``editlens staging [--clean]`` does."""

from __future__ import annotations

import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label

from engine.store import StagedFile, remove_staged, staged_files
from tui.screens.base import ReportsFailures
from tui.screens.dialogs import ConfirmScreen
from tui.text import literal

HELD = "held by a running job"


def age(seconds: float) -> str:
    """How long ago, in the largest whole unit: 45 s, 12 min, 3 h, 2 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{max(int(seconds), 0)} s"


def size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


class StagingScreen(ReportsFailures, Screen):
    """Every staging file beside the store: file, size, age, idle or held by a running job.

    An idle one is a run that was never published (a cancelled, killed or failed evaluation):
    rerunning the same evaluation resumes from it, so removing it is asked first."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "close", "Back"),
        Binding("c", "clean", "Remove idle…"),
        Binding("r", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    StagingScreen #note { padding: 0 1; color: $text-muted; width: 1fr; height: auto; }
    StagingScreen #staged { height: auto; }
    """

    class Loaded(Message):
        """The staging folder was listed (by the worker)."""

        def __init__(self, staged: list[StagedFile], removed: int | None) -> None:
            super().__init__()
            self.staged = staged
            self.removed = removed  # files removed before listing; None when none were asked to

    def __init__(self) -> None:
        super().__init__()
        self._staged: list[StagedFile] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Label(Text("reading…"), id="note")
            yield DataTable(id="staged", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "staging files"
        table = self.query_one("#staged", DataTable)
        table.add_columns("file", "size", "age", "state")
        table.focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="staging")
    def load(self, clean: bool = False) -> None:
        """List the folder; with ``clean``, first remove every file no job holds, as listed
        now (a job that started since the screen was drawn keeps its file)."""
        removed = None
        if clean:
            idle = [staged for staged in staged_files(self.app.db) if not staged.in_use]
            for staged in idle:
                remove_staged(staged)
            removed = len(idle)
        self.post_message(self.Loaded(staged_files(self.app.db), removed))

    def refresh_data(self) -> None:
        """List the folder again (the app calls this when the store changed: a job published)."""
        self.load()

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self._staged = event.staged
        table = self.query_one("#staged", DataTable)
        table.clear()
        now = time.time()
        for staged in event.staged:
            state = Text(HELD, style="bold") if staged.in_use else Text("idle")
            table.add_row(
                literal(staged.path.name),
                size(staged.bytes),
                age(now - staged.modified),
                state,
                key=str(staged.path),
            )
        idle = sum(not staged.in_use for staged in event.staged)
        folder = event.staged[0].path.parent if event.staged else None
        if not event.staged:
            note = Text("No staging files beside the store: every evaluation was published.")
        else:
            note = Text(f"{len(event.staged)} in ")
            note.append_text(literal(str(folder)))
            note.append(
                f" · {idle} idle (an unfinished evaluation: running it again resumes from its"
                " file; c removes the idle ones)"
            )
        self.query_one("#note", Label).update(note)
        if event.removed is not None:
            self.notify(f"removed {event.removed} idle staging file(s)")

    def action_clean(self) -> None:
        idle = [staged for staged in self._staged if not staged.in_use]
        if not idle:
            self.notify("no idle staging files to remove")
            return
        total = size(sum(staged.bytes for staged in idle))
        question = (
            f"Remove {len(idle)} idle staging file(s) ({total})? Their unfinished evaluations are"
            " lost: running them again starts from the beginning. Files a running job holds stay."
        )
        self.app.push_screen(ConfirmScreen(question, "Remove", no="Keep them"), self._confirmed)

    def _confirmed(self, yes: bool | None) -> None:
        if yes:
            self.load(clean=True)

    def action_reload(self) -> None:
        self.load()

    def action_close(self) -> None:
        self.app.pop_screen()
