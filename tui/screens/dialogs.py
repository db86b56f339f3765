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

from engine.export import EXPORT_FORMATS
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
    """Where to write the current filtered examples, and in which format."""

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
    """

    def __init__(self, filters: Filters) -> None:
        super().__init__()
        self.filters = filters

    def compose(self) -> ComposeResult:
        f = self.filters
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{f.run}-{f.method}-L{f.layer}-{f.outcome}")
        with Vertical() as box:
            box.border_title = "Export the filtered examples"
            yield Label("Every example the filter shows (not only this page).")
            with Horizontal():
                yield Select(
                    [(fmt, fmt) for fmt in EXPORT_FORMATS],
                    value="csv",
                    allow_blank=False,
                    id="format",
                )
                yield Input(value=f"{name}.csv", id="path")
            with Horizontal():
                yield Button("Export", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Select.Changed, "#format")
    def _format(self, event: Select.Changed) -> None:
        path = self.query_one("#path", Input)
        path.value = str(Path(path.value).with_suffix(f".{event.value}"))

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        fmt = str(self.query_one("#format", Select).value)
        self.dismiss((fmt, self.query_one("#path", Input).value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


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
