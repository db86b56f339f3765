"""Per-head drill-down of one example: move over the layer x head grid, and see the chosen
head's [CLS] attention over the words (stored for the last layer)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from engine.text import inert
from tui.screens.base import ReportsFailures
from tui.text import literal
from tui.widgets.heads import HeadPicker, HeadSentence


class HeadsScreen(ReportsFailures, Screen):
    """Arrows (or h/j/k/l) move the cursor over heads; the sentence follows it."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Back"),
        Binding("up,k", "move(-1, 0)", "Layer −1"),
        Binding("down,j", "move(1, 0)", "Layer +1"),
        Binding("left,h", "move(0, -1)", "Head −1"),
        Binding("right,l", "move(0, 1)", "Head +1"),
        Binding("G", "last_layer", "Last layer"),
    ]
    DEFAULT_CSS = """
    HeadsScreen #title { height: auto; padding: 0 1; background: $boost; }
    """

    cursor: reactive[tuple[int, int]] = reactive((1, 1), init=False)
    """(layer, head) selected, both from 1."""

    class Loaded(Message):
        """The example's words and per-head attention under the run."""

        def __init__(self, example: str, detail: dict[str, Any] | None) -> None:
            super().__init__()
            self.example = example
            self.detail = detail

    def __init__(self, run: str, example: str, layer: int = 0) -> None:
        super().__init__()
        self.run = run
        self.example = example
        self._layer = layer
        self._detail: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("reading…", style="dim"), id="title")
        with VerticalScroll(id="body"):
            yield HeadPicker(id="grid")
            yield HeadSentence(id="words")
        yield Footer()

    def on_mount(self) -> None:
        self.load(self.run, self.example)

    @work(thread=True, exclusive=True, exit_on_error=False, group="heads")
    def load(self, run: str, example: str) -> None:
        with self.app.handle.read() as store:
            detail = store.head_rows(run, example)
        self.post_message(self.Loaded(example, detail))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        detail = event.detail
        title = self.query_one("#title", Static)
        if detail is None:
            title.update(literal(f"{event.example}: not evaluated by run {self.run}"))
            return
        self._detail = detail
        layers = detail["layers"]
        start = self._layer if 1 <= self._layer <= layers else layers
        self.set_reactive(HeadsScreen.cursor, (start, 1))
        self.query_one("#grid", HeadPicker).grid = (detail["grid"] or [], layers, detail["heads"])
        text = literal(detail["id"], "bold")
        text.append(inert(f"  {detail['model']} ({self.run})") + "\n")
        text.append(
            f"[CLS] attention per head; words shown for the last layer (L{layers})", style="dim"
        )
        title.update(text)
        self._show()

    def watch_cursor(self) -> None:
        self._show()

    def _show(self) -> None:
        if self._detail is None:
            return
        self.query_one("#grid", HeadPicker).cursor = self.cursor
        self.query_one("#words", HeadSentence).view = (self._detail, *self.cursor)

    def action_move(self, layers: int, heads: int) -> None:
        if self._detail is None:
            return
        layer, head = self.cursor
        layer = min(max(layer + layers, 1), self._detail["layers"])
        head = min(max(head + heads, 1), self._detail["heads"])
        self.cursor = (layer, head)

    def action_last_layer(self) -> None:
        if self._detail is not None:
            self.cursor = (self._detail["layers"], self.cursor[1])

    def action_back(self) -> None:
        self.app.pop_screen()
