"""Modal screens: help, export, and the message shown when there is no store to browse."""

from __future__ import annotations

import re
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from engine.export import EXPORT_FORMATS, format_from_path
from tui.state import Filters

HELP_EXTRA = (
    ("ctrl+p", "command palette: open a run, change the interpretable metric, toggle theme"),
    ("tab / shift+tab", "move between the filter bar's controls and the table"),
    ("↑ ↓ pgup pgdn", "move in tables and scroll"),
)


def key_label(key: str) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "right_square_bracket": "]",
        "left_square_bracket": "[",
        "escape": "esc",
    }
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    """Every key of the screen underneath, from its bindings (so it cannot go stale)."""

    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close help")]  # noqa: RUF012
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    """

    def __init__(self, rows: list[tuple[str, str, str]], title: str) -> None:
        super().__init__()
        self._rows = rows
        self._title = title

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        seen: set[tuple[str, str]] = set()
        for key, description, _ in self._rows:
            if (key, description) not in seen:
                seen.add((key, description))
                table.add_row(key, description)
        for key, description in HELP_EXTRA:
            table.add_row(key, description)
        with VerticalScroll() as scroll:
            scroll.border_title = f"Keys: {self._title}"
            scroll.border_subtitle = "esc closes"
            yield Static(table)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Where to write the current filtered examples, and in which format.

    The format follows the file's extension (a menu that disagreed with it wrote CSV into a
    ``.jsonl``); the full path is shown before writing, and an existing file needs a second
    press to be overwritten."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012
    AUTO_FOCUS = "#path"
    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical {
        width: 70; max-width: 100%; height: auto; border: round $accent;
        background: $panel; padding: 0 1;
    }
    ExportScreen Horizontal { height: auto; margin-top: 1; }
    ExportScreen Select { width: 16; }
    ExportScreen Input { width: 1fr; }
    ExportScreen #where { color: $text-muted; height: auto; }
    ExportScreen #problem { color: $error; height: auto; }
    """

    def __init__(
        self,
        filters: Filters,
        cwd: Path | None = None,
        *,
        title: str = "Export the filtered examples",
        note: str = "Every example the filter shows (not only this page), in its order.",
    ) -> None:
        super().__init__()
        self.filters = filters
        self._title, self._note = title, note
        self.cwd = cwd or Path.cwd()
        self._confirmed: Path | None = None

    def compose(self) -> ComposeResult:
        f = self.filters
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{f.run}-{f.method}-L{f.layer}-{f.outcome}")
        with Vertical() as box:
            box.border_title = self._title
            yield Label(self._note)
            with Horizontal():
                yield Select(
                    [(fmt, fmt) for fmt in EXPORT_FORMATS],
                    value="csv",
                    allow_blank=False,
                    id="format",
                )
                yield Input(value=f"{name}.csv", id="path")
            yield Static("", id="where")
            yield Static("", id="problem")
            with Horizontal():
                yield Button("Export", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._show_target()

    def target(self) -> Path:
        """The file to write: the typed path, relative to the directory the TUI started in."""
        path = Path(self.query_one("#path", Input).value.strip()).expanduser()
        return path if path.is_absolute() else self.cwd / path

    @on(Select.Changed, "#format")
    def _format(self, event: Select.Changed) -> None:
        path = self.query_one("#path", Input)
        if format_from_path(Path(path.value)) != event.value:
            path.value = str(Path(path.value).with_suffix(f".{event.value}"))

    @on(Input.Changed, "#path")
    def _path_changed(self, event: Input.Changed) -> None:
        fmt = format_from_path(Path(event.value))
        select = self.query_one("#format", Select)
        if fmt is not None and select.value != fmt:
            with self.prevent(Select.Changed):
                select.value = fmt
        self._confirmed = None
        self._show_target()

    def _show_target(self) -> None:
        target = self.target()
        where = Text("writes ", style="dim")
        where.append(str(target))
        if target.exists():
            where.append("  (exists: Export again to overwrite)", style="bold")
        self.query_one("#where", Static).update(where)
        self.query_one("#problem", Static).update("")

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        target = self.target()
        if not self.app.may_write(target):  # type: ignore[attr-defined]
            self.query_one("#problem", Static).update(
                Text("outside the folder served: not written")
            )
            return
        fmt = format_from_path(target)
        if fmt is None:
            self.query_one("#problem", Static).update(
                Text(f"end the file name with .{', .'.join(EXPORT_FORMATS)}")
            )
            return
        if target.exists() and self._confirmed != target:
            self._confirmed = target
            self.query_one("#problem", Static).update(
                Text(f"{target.name} exists: press Export again to overwrite it")
            )
            return
        self.dismiss((fmt, str(target)))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class GotoScreen(ModalScreen[str | None]):
    """Ask for an example id to open."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012
    AUTO_FOCUS = "#id"
    DEFAULT_CSS = """
    GotoScreen { align: center middle; }
    GotoScreen > Vertical {
        width: 50; max-width: 100%; height: auto; border: round $accent;
        background: $panel; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Go to example"
            box.border_subtitle = "enter opens · esc cancels"
            yield Input(placeholder="example id, e.g. 10.1", id="id")

    @on(Input.Submitted, "#id")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y says yes; n, esc or enter (on the focused "no") say no."""

    BINDINGS = [  # noqa: RUF012
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    AUTO_FOCUS = "#no"
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 60; max-width: 100%; height: auto; border: round $warning;
        background: $panel; padding: 0 1;
    }
    ConfirmScreen Horizontal { height: auto; margin-top: 1; }
    """

    def __init__(self, question: str, yes: str, no: str = "Keep running") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question))
            with Horizontal():
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ProblemScreen(Screen):
    """Shown instead of the runs when the store is missing, empty or unreadable."""

    BINDINGS = [Binding("q", "app.quit", "Quit")]  # noqa: RUF012
    DEFAULT_CSS = """
    ProblemScreen #problem { padding: 1 2; }
    """

    def __init__(self, db: Path, problem: str) -> None:
        super().__init__()
        self.db = db
        self.problem = problem

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Nothing to browse yet\n\n", style="bold")
        text.append(f"{self.problem}\n\n")
        text.append("Fill the store, then run `editlens tui` again:\n\n")
        text.append(f"  editlens demo --db {self.db}\n", style="bold")
        text.append("      a small corpus, a fine-tuned model and a baseline, evaluated\n\n")
        text.append(f"  editlens ingest PATH --db {self.db}\n", style="bold")
        text.append("      your AESW XML or rationale JSONL, then `editlens evaluate`\n")
        yield Header()
        yield Static(text, id="problem")
        yield Footer()
