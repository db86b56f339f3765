"""One example: its words coloured by a method's scores, the human rationale marked, the
prediction, the layer x head grid, and the same sentence under every run."""

from __future__ import annotations

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
from textual.widgets import Footer, Header, Label, Static

from engine.vocabulary import method_order
from tui.screens.base import ReportsFailures
from tui.state import PAGE, Filters
from tui.text import literal
from tui.widgets.job import JobPanel
from tui.widgets.sentence import HeadGrid, RunComparison, ScoredSentence


def _tick(value: bool | None) -> str:
    return "–" if value is None else ("✓" if value else "✗")


class ExampleScreen(ReportsFailures, Screen[tuple[int, int]]):
    """Step through methods and layers of one example, and through the filtered examples."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Examples"),
        Binding("n,j", "step(1)", "Next example"),
        Binding("p,k", "step(-1)", "Prev example"),
        Binding("m", "method(1)", "Next method"),
        Binding("M", "method(-1)", "Prev method"),
        Binding("l,right", "layer(1)", "Layer +1"),
        Binding("h,left", "layer(-1)", "Layer −1"),
        Binding("a", "heads", "Heads drill-down"),
        Binding("t", "twin", "Minimal pair"),
        Binding("b", "pin", "Pin/unpin"),
    ]
    DEFAULT_CSS = """
    ExampleScreen #info { height: auto; padding: 0 1; background: $boost; }
    ExampleScreen .section { padding: 0 1; margin-top: 1; color: $text-muted; text-style: bold; }
    """

    example: reactive[str] = reactive("", init=False)
    """Id of the example shown."""
    pair: reactive[tuple[str, int]] = reactive(("attention", 0), init=False)
    """(method, layer) whose word scores colour the sentence."""

    class Loaded(Message):
        """The example's detail (and its rows under every run) came back from the store."""

        def __init__(
            self, example: str, detail: dict[str, Any] | None, across: pa.Table | None
        ) -> None:
            super().__init__()
            self.example = example
            self.detail = detail
            self.across = across

    class PageLoaded(Message):
        """Ids of the neighbouring page, fetched when stepping past the current one."""

        def __init__(self, offset: int, ids: list[str], index: int) -> None:
            super().__init__()
            self.offset = offset
            self.ids = ids
            self.index = index

    class AcrossLoaded(Message):
        """The sentence under every run for a new (method, layer)."""

        def __init__(self, example: str, pair: tuple[str, int], across: pa.Table) -> None:
            super().__init__()
            self.example = example
            self.pair = pair
            self.across = across

    def __init__(
        self, filters: Filters, ids: list[str], *, index: int, offset: int, total: int
    ) -> None:
        super().__init__()
        self.filters = filters
        self._ids = ids
        self._index = index
        self._offset = offset
        self._total = total
        self._detail: dict[str, Any] | None = None
        self._pairs: list[tuple[str, int]] = []
        self._score_rows: dict[tuple[str, int], dict[str, Any]] = {}
        self.set_reactive(ExampleScreen.pair, (filters.method, filters.layer))

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="info")
        with VerticalScroll(id="body"):
            yield ScoredSentence(id="sentence")
            yield Label("Layer × head", classes="section")
            yield HeadGrid(id="grid")
            yield Label("Every run, same method and layer", classes="section")
            yield RunComparison(id="compare")
        yield JobPanel()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#body").focus()
        self.example = self._ids[self._index]

    # -- loading ---------------------------------------------------------------------------------

    def watch_example(self, example: str) -> None:
        self.load(example, self.pair)

    @work(thread=True, exclusive=True, exit_on_error=False, group="example")
    def load(self, example: str, pair: tuple[str, int]) -> None:
        with self.app.handle.read() as store:
            detail = store.example_detail(self.filters.run, example)
            across = store.example_across_runs(detail["corpus"], example, *pair) if detail else None
        self.post_message(self.Loaded(example, detail, across))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        if event.example != self.example:
            return
        detail = event.detail
        self._detail = detail
        if detail is None:
            self.query_one("#info", Static).update(
                literal(f"{event.example}: not in this run (esc goes back)")
            )
            return
        rows = detail["scores"].to_pylist()
        self._score_rows = {(r["method"], r["layer"]): r for r in rows}
        self._pairs = list(self._score_rows)
        if self.pair not in self._score_rows and self._pairs:
            self.set_reactive(ExampleScreen.pair, self._pairs[0])
        self.query_one("#sentence", ScoredSentence).detail = detail
        self.query_one("#compare", RunComparison).rows = (
            event.across.to_pylist() if event.across is not None else [],
            detail,
        )
        self._show_pair()

    def _show_pair(self) -> None:
        detail = self._detail
        if detail is None:
            return
        method, layer = self.pair
        row = self._score_rows.get(self.pair)
        self.query_one("#sentence", ScoredSentence).scores = row
        grid = detail["grid"] or []
        self.query_one("#grid", HeadGrid).grid = (grid, detail["layers"], detail["heads"], layer)
        info = Text()
        info.append(literal(detail["id"], style="bold"))
        info.append(f"  {self._offset + self._index + 1:,}/{self._total:,}  ", style="dim")
        info.append(literal(f"{detail['kind']} · {detail['model']}"))
        info.append("\n")
        truth = "needs edit" if detail["label"] else "ok"
        pred = "needs edit" if detail["pred"] else "ok"
        right = detail["label"] == detail["pred"]
        info.append(f"gold {truth} · predicted {pred} p(edit)={detail['prob']:.3f} ")
        info.append("right" if right else "WRONG", style="bold" if right else "bold reverse")
        info.append("\n")
        info.append(f"{method}" + (f" layer {layer}" if layer else ""), style="bold")
        if row and row["top3"] is not None:
            info.append(
                f"  top3 {_tick(row['top3'])} hit1 {_tick(row['hit1'])} exact {_tick(row['exact'])}"
                f" J {row['jaccard']:.2f} AUPRC {row['auprc']:.2f}"
            )
        else:
            info.append("  (not scorable: no outcome)", style="dim")
        self.query_one("#info", Static).update(info)

    def watch_pair(self, pair: tuple[str, int]) -> None:
        self._show_pair()
        if self._detail is not None:
            self.load_across(self.example, self._detail["corpus"], pair)

    @work(thread=True, exclusive=True, exit_on_error=False, group="across")
    def load_across(self, example: str, corpus: str, pair: tuple[str, int]) -> None:
        with self.app.handle.read() as store:
            across = store.example_across_runs(corpus, example, *pair)
        self.post_message(self.AcrossLoaded(example, pair, across))

    @on(AcrossLoaded)
    def _across_loaded(self, event: AcrossLoaded) -> None:
        if event.example == self.example and event.pair == self.pair and self._detail:
            self.query_one("#compare", RunComparison).rows = (
                event.across.to_pylist(),
                self._detail,
            )

    # -- actions -------------------------------------------------------------------------------

    def action_back(self) -> None:
        """Back to the list, which moves to the example stepped to here."""
        self.dismiss((self._offset, self._index))

    # -- the drill-downs (tui/screens/heads, pair) and pins (tui/screens/pinned) ---------------

    def action_heads(self) -> None:
        from tui.screens.heads import HeadsScreen

        self.app.push_screen(HeadsScreen(self.filters.run, self.example, self.pair[1]))

    def action_twin(self) -> None:
        from tui.screens.pair import PairScreen

        self.app.push_screen(PairScreen(self.filters.run, self.example, *self.pair))

    def action_pin(self) -> None:
        from tui.screens.pinned import toggle_pin

        toggle_pin(self, self.filters.run, self.example)

    def action_method(self, step: int) -> None:
        methods = sorted({m for m, _ in self._pairs}, key=method_order)  # as the list's
        if not methods:
            return
        method, layer = self.pair
        method = (
            methods[(methods.index(method) + step) % len(methods)]
            if method in methods
            else methods[0]
        )
        layers = [la for m, la in self._pairs if m == method]
        self.pair = (method, layer if layer in layers else layers[-1])

    def action_layer(self, step: int) -> None:
        method, layer = self.pair
        layers = [la for m, la in self._pairs if m == method]
        if layer in layers:
            target = layers.index(layer) + step
            if 0 <= target < len(layers):
                self.pair = (method, layers[target])

    def action_step(self, step: int) -> None:
        index = self._index + step
        if 0 <= index < len(self._ids):
            self._index = index
            self.example = self._ids[index]
            return
        position = self._offset + index
        if 0 <= position < self._total:
            offset = max(0, position - (PAGE - 1 if step < 0 else 0))
            self.load_page(offset, position - offset)
        else:
            self.notify("no more examples under this filter")

    @work(thread=True, exclusive=True, exit_on_error=False, group="page")
    def load_page(self, offset: int, index: int) -> None:
        f = self.filters
        with self.app.handle.read() as store:
            page = store.example_page(f, limit=PAGE, offset=offset)
        self.post_message(self.PageLoaded(offset, page.column("id").to_pylist(), index))

    @on(PageLoaded)
    def _page_loaded(self, event: PageLoaded) -> None:
        if not event.ids:
            return
        self._ids, self._offset = event.ids, event.offset
        self._index = min(event.index, len(event.ids) - 1)
        self.example = self._ids[self._index]
