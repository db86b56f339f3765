"""Charts of a run in the terminal: the interpretable share by layer for every method, and by
edit kind and rationale size for the list's method and layer, each bar with its 95% interval.
Enter on a bar returns the filter it stands for, so the examples list shows those examples."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, OptionList, Static

from engine.figures import Bar, group_bars, layer_bars
from engine.text import inert
from engine.vocabulary import POPULATIONS, metric_info
from tui.screens.base import ReportsFailures
from tui.state import Filters
from tui.widgets.bars import LEGEND, BarList

VIEWS = {"layer": "by layer", "kind": "by edit kind", "rationale": "by rationale size"}


def filter_changes(view: str, bar: Bar) -> dict[str, Any]:
    """The examples list's filter that shows the examples behind ``bar``."""
    if view == "layer":
        return {"method": bar.heading, "layer": int(bar.value)}
    if view == "kind":
        return {"kind": str(bar.value)}
    size = int(bar.value)
    return {"rationale": "3+" if size >= 3 else str(size)}


class ChartsScreen(ReportsFailures, Screen[dict[str, Any] | None]):
    """Bars with confidence intervals; 1/2/3 switch the view, f the population."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Back"),
        Binding("1", "view('layer')", "By layer"),
        Binding("2", "view('kind')", "By kind"),
        Binding("3", "view('rationale')", "By |R|"),
        Binding("f", "toggle_population", "All/flagged"),
    ]
    DEFAULT_CSS = """
    ChartsScreen #title { height: auto; padding: 0 1; background: $boost; }
    ChartsScreen #legend { height: 1; padding: 0 1; color: $text-muted; }
    """

    view: reactive[str] = reactive("layer", init=False)
    """Which chart: by "layer", by edit "kind", or by "rationale" size."""
    population: reactive[str] = reactive("all", init=False)
    """Over all scorable examples, or those the model flags as needing an edit."""

    class Loaded(Message):
        """The bars of one chart."""

        def __init__(self, key: tuple[str, str], bars: list[Bar]) -> None:
            super().__init__()
            self.key = key
            self.bars = bars

    def __init__(self, filters: Filters, model: str = "") -> None:
        super().__init__()
        self.filters = filters
        self._model = model or filters.run
        self._bars: list[Bar] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="title")
        yield BarList(id="bars")
        yield Label(LEGEND, id="legend")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#bars", BarList).focus()
        self._reload()

    def watch_view(self) -> None:
        self._reload()

    def watch_population(self) -> None:
        self._reload()

    def _reload(self) -> None:
        self._show_title(reading=True)
        self.load((self.view, self.population))

    def _show_title(self, reading: bool = False) -> None:
        f = self.filters
        text = Text()
        text.append(f"{metric_info(f.metric).label} {VIEWS[self.view]}", style="bold")
        text.append(f" · {inert(self._model)} · {self.population} scorable")
        if self.view != "layer":
            text.append(f" · {f.method}" + (f" L{f.layer}" if f.layer else ""))
        text.append("\n")
        text.append("1 layer · 2 kind · 3 |R| · f all/flagged · enter lists them", style="dim")
        if reading:
            text.append("  reading…", style="dim italic")
        self.query_one("#title", Static).update(text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="bars")
    def load(self, key: tuple[str, str]) -> None:
        view, population = key
        f = self.filters
        with self.app.handle.read() as store:
            if view == "layer":
                bars = layer_bars(store, f.run, f.metric, population)
            else:
                bars = group_bars(store, f.run, f.method, f.layer, f.metric, population, view)
        self.post_message(self.Loaded(key, bars))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        if event.key != (self.view, self.population):
            return
        self._bars = event.bars
        bars = self.query_one("#bars", BarList)
        bars.show(event.bars, width=max(10, self.size.width - 38))
        self._show_title()

    @on(OptionList.OptionSelected, "#bars")
    def _bar_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(filter_changes(self.view, self._bars[int(event.option.id)]))

    def action_view(self, view: str) -> None:
        self.view = view

    def action_toggle_population(self) -> None:
        self.population = POPULATIONS[(POPULATIONS.index(self.population) + 1) % len(POPULATIONS)]

    def action_back(self) -> None:
        self.dismiss(None)
