"""A minimal pair: a sentence and its edited twin (``<id>/edited``) under one run, aligned word
by word, so one sees where the model looks when the edit is there and when it is gone."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static

from engine import highlight
from tui.screens.reading import ReadingScreen
from tui.widgets.pair import PairView


class PairScreen(ReadingScreen):
    """The pair under the example screen's run, method and layer."""

    BINDINGS = [Binding("escape", "back", "Back")]  # noqa: RUF012
    DEFAULT_CSS = """
    PairScreen #title { height: auto; padding: 0 1; background: $boost; }
    PairScreen #legend { height: auto; padding: 0 1; margin-top: 1; }
    """

    class Loaded(Message):
        """The sentence and its twin (original first), as many as the corpus holds."""

        def __init__(self, rows: list[dict[str, Any]]) -> None:
            super().__init__()
            self.rows = rows

    def __init__(self, run: str, example: str, method: str, layer: int) -> None:
        super().__init__()
        self._run = run
        self._example = example
        self._method = method
        self._layer = layer

    def compose(self) -> ComposeResult:
        yield Header()
        title = Text(f"Minimal pair of {self._example}", style="bold")
        title.append(f"  {self._method}" + (f" layer {self._layer}" if self._layer else ""))
        title.append("\nthe sentence over its edited twin; · where a word has no counterpart")
        yield Static(title, id="title")
        with VerticalScroll(id="body"):
            yield PairView(id="pair")
            yield Static(highlight.legend(), id="legend")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="pair")
    def load(self) -> None:
        with self.app.handle.read() as store:
            rows = store.pair_rows(self._run, self._example, self._method, self._layer)
        self.post_message(self.Loaded(rows))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self.query_one("#pair", PairView).rows = event.rows

    def action_back(self) -> None:
        self.app.pop_screen()
