"""A minimal pair: a sentence and its edited twin (``<id>/edited``) under one run, aligned word
by word, so one sees where the model looks when the edit is there and when it is gone."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from engine import highlight
from engine.vocabulary import method_order
from tui.screens.base import ReportsFailures
from tui.text import literal
from tui.widgets.pair import PairView


class PairScreen(ReportsFailures, Screen):
    """The pair under the example screen's run, method and layer; m/M and l/h step them."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Back"),
        Binding("m", "method(1)", "Next method"),
        Binding("M", "method(-1)", "Prev method"),
        Binding("l,right", "layer(1)", "Layer +1"),
        Binding("h,left", "layer(-1)", "Layer −1"),
    ]
    DEFAULT_CSS = """
    PairScreen #title { height: auto; padding: 0 1; background: $boost; }
    PairScreen #legend { height: auto; padding: 0 1; margin-top: 1; }
    """

    pair: reactive[tuple[str, int]] = reactive(("attention", 0), init=False)
    """(method, layer) whose word scores colour both sentences."""

    class Loaded(Message):
        """The sentence and its twin (original first) under ``pair``, and the run's pairs."""

        def __init__(
            self, pair: tuple[str, int], rows: list[dict[str, Any]], pairs: list[tuple[str, int]]
        ) -> None:
            super().__init__()
            self.pair = pair
            self.rows = rows
            self.pairs = pairs

    def __init__(self, run: str, example: str, method: str, layer: int) -> None:
        super().__init__()
        self._run = run
        self._example = example
        self._pairs: list[tuple[str, int]] = []
        self.set_reactive(PairScreen.pair, (method, layer))

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="title")
        with VerticalScroll(id="body"):
            yield PairView(id="pair")
            yield Static(highlight.legend(), id="legend")
        yield Footer()

    def on_mount(self) -> None:
        self._show_title()
        self.load(self.pair)

    def _show_title(self) -> None:
        method, layer = self.pair
        title = literal(f"Minimal pair of {self._example}", "bold")
        title.append(f"  {method}" + (f" layer {layer}" if layer else ""))
        title.append("\nthe sentence over its edited twin; · where a word has no counterpart")
        self.query_one("#title", Static).update(title)

    @work(thread=True, exclusive=True, exit_on_error=False, group="pair")
    def load(self, pair: tuple[str, int]) -> None:
        with self.app.handle.read() as store:
            rows = store.pair_rows(self._run, self._example, *pair)
            pairs = self._pairs or [
                (r["method"], r["layer"]) for r in store.run_methods(self._run).to_pylist()
            ]
        self.post_message(self.Loaded(pair, rows, pairs))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self._pairs = event.pairs
        if event.pair == self.pair:
            self.query_one("#pair", PairView).rows = event.rows

    def watch_pair(self) -> None:
        self._show_title()
        self.load(self.pair)

    def action_method(self, step: int) -> None:
        methods = sorted({m for m, _ in self._pairs}, key=method_order)
        if not methods:
            return
        method, layer = self.pair
        index = methods.index(method) + step if method in methods else 0
        method = methods[index % len(methods)]
        layers = [la for m, la in self._pairs if m == method]
        self.pair = (method, layer if layer in layers else layers[-1])

    def action_layer(self, step: int) -> None:
        method, layer = self.pair
        layers = [la for m, la in self._pairs if m == method]
        if layer in layers and 0 <= layers.index(layer) + step < len(layers):
            self.pair = (method, layers[layers.index(layer) + step])

    def action_back(self) -> None:
        self.app.pop_screen()
