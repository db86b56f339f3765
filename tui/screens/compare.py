"""Compare two slices (run, method, layer) on the same examples: which examples are
interpretable under A but not under B, as a 2x2 table with McNemar's p-value; each cell lists
its examples, paged from the store, and opens them."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Select, Static

from engine.figures import Comparison, Side, compare
from engine.text import inert
from engine.vocabulary import BROWSE_METRICS, method_order, metric_info
from tui.screens.base import ReportsFailures
from tui.state import PAGE, Filters
from tui.text import literal

CELLS = {  # DataTable cell (row, column) -> (yes under A, yes under B)
    (0, 1): (True, True),
    (0, 2): (True, False),
    (1, 1): (False, True),
    (1, 2): (False, False),
}


def _yes(value: bool) -> str:
    return "interpretable" if value else "not interpretable"


def side_label(side: Side, models: dict[str, str]) -> str:
    layer = f" L{side.layer}" if side.layer else ""
    return f"{models.get(side.run, side.run)} {side.method}{layer}"


class CompareScreen(ReportsFailures, Screen):
    """A and B: two runs, two methods or two layers; enter on a cell lists its examples."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Back"),
        Binding("s", "swap", "Swap A/B"),
        Binding("i", "next_metric", "Interp. metric"),
        Binding("right_square_bracket", "page(1)", "Next page"),
        Binding("left_square_bracket", "page(-1)", "Prev page"),
    ]
    DEFAULT_CSS = """
    CompareScreen .bar { height: 1; padding: 0 1; }
    CompareScreen .bar Label { width: 3; text-style: bold; }
    CompareScreen .bar Select { width: 1fr; margin-right: 1; }
    CompareScreen .bar .method { width: 16; }
    CompareScreen .bar .layer { width: 13; }
    CompareScreen #cells { height: 4; margin: 0 1; }
    CompareScreen #summary { height: auto; padding: 0 1; background: $boost; }
    CompareScreen #list { height: 1fr; }
    CompareScreen #status { height: 1; padding: 0 1; color: $text-muted; }
    """

    sides: reactive[tuple[Side, Side] | None] = reactive(None, init=False)
    """(A, B) being compared; None until the runs are read."""
    metric: reactive[str] = reactive("top3", init=False)
    """The yes/no metric that "interpretable" means."""
    cell: reactive[tuple[bool, bool] | None] = reactive(None, init=False)
    """The 2x2 cell whose examples are listed, keyed (yes under A, yes under B)."""
    offset: reactive[int] = reactive(0, init=False)
    """First row of the listed page."""

    class ChoicesLoaded(Message):
        """The runs of A's corpus and the (method, layer) pairs of each."""

        def __init__(
            self, runs: list[dict[str, Any]], pairs: dict[str, list[tuple[str, int]]]
        ) -> None:
            super().__init__()
            self.runs = runs
            self.pairs = pairs

    class TableLoaded(Message):
        """The 2x2 table for ``comparison``."""

        def __init__(self, comparison: Comparison) -> None:
            super().__init__()
            self.comparison = comparison

    class PageLoaded(Message):
        """One page of a cell's examples."""

        def __init__(self, key: tuple[Any, ...], page: pa.Table) -> None:
            super().__init__()
            self.key = key
            self.page = page

    def __init__(self, filters: Filters) -> None:
        super().__init__()
        self._start = Side(filters.run, filters.method, filters.layer)
        self.set_reactive(CompareScreen.metric, filters.metric)
        self._runs: list[dict[str, Any]] = []
        self._pairs: dict[str, list[tuple[str, int]]] = {}
        self._comparison: Comparison | None = None
        self._rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        for name in ("a", "b"):
            with Horizontal(classes="bar"):
                yield Label(name.upper())
                yield _select(f"{name}-run", "run")
                yield _select(f"{name}-method", "method")
                yield _select(f"{name}-layer", "layer")
        yield DataTable(id="cells", cursor_type="cell", show_cursor=True)
        yield Static("reading the runs…", id="summary")
        yield DataTable(id="list", cursor_type="row", zebra_stripes=True)
        yield Label("enter on a cell lists its examples", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#list", DataTable).add_columns("id", "kind", "R", "gold", "A", "B", "text")
        self.query_one("#cells", DataTable).focus()
        self.load_choices(self._start.run)

    # -- reading ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="choices")
    def load_choices(self, run: str) -> None:
        with self.app.handle.read() as store:
            runs = store.run_overview().to_pylist()
            corpus = next((r["corpus"] for r in runs if r["id"] == run), None)
            runs = [r for r in runs if r["corpus"] == corpus and r["kind"] == "evaluate"]
            pairs = {
                r["id"]: [(p["method"], p["layer"]) for p in store.run_methods(r["id"]).to_pylist()]
                for r in runs
            }
        self.post_message(self.ChoicesLoaded(runs, pairs))

    @work(thread=True, exclusive=True, exit_on_error=False, group="table")
    def load_table(self, a: Side, b: Side, metric: str) -> None:
        with self.app.handle.read() as store:
            comparison = compare(store, a, b, metric)
        self.post_message(self.TableLoaded(comparison))

    @work(thread=True, exclusive=True, exit_on_error=False, group="page")
    def load_page(self, key: tuple[Any, ...]) -> None:
        a, b, metric, cell, offset = key
        with self.app.handle.read() as store:
            page = store.compare_page(a, b, metric, cell, limit=PAGE, offset=offset)
        self.post_message(self.PageLoaded(key, page))

    def _page_key(self) -> tuple[Any, ...] | None:
        if self.sides is None or self.cell is None:
            return None
        return (*self.sides, self.metric, self.cell, self.offset)

    # -- showing ---------------------------------------------------------------------------------

    @on(ChoicesLoaded)
    def _choices_loaded(self, event: ChoicesLoaded) -> None:
        self._runs, self._pairs = event.runs, event.pairs
        a = self._start
        self.sides = (a, self._default_b(a))

    def _default_b(self, a: Side) -> Side:
        """Another run with the same method and layer if there is one; else A's run at its
        previous layer; else A's run under another method."""
        for run in self._runs:
            if run["id"] != a.run and (a.method, a.layer) in self._pairs.get(run["id"], []):
                return Side(run["id"], a.method, a.layer)
        own = self._pairs.get(a.run, [])
        layers = [la for m, la in own if m == a.method and la < a.layer]
        if layers:
            return Side(a.run, a.method, layers[-1])
        others = [p for p in own if p[0] != a.method]
        return Side(a.run, *others[0]) if others else a

    def watch_sides(self) -> None:
        self._sync_selects()
        self._reload()

    def watch_metric(self) -> None:
        self._reload()

    def _reload(self) -> None:
        if self.sides is None:
            return
        self._rows = []
        self.query_one("#list", DataTable).clear()
        self.set_reactive(CompareScreen.cell, None)
        self.set_reactive(CompareScreen.offset, 0)
        self.query_one("#summary", Static).update(Text("counting…", style="dim"))
        self.load_table(*self.sides, self.metric)

    def _sync_selects(self) -> None:
        if self.sides is None:
            return
        models = {r["id"]: r["model"] for r in self._runs}
        run_options = [(f"{models[r]} · {r}", r) for r in models]
        with self.prevent(Select.Changed):
            for name, side in zip(("a", "b"), self.sides, strict=True):
                pairs = self._pairs.get(side.run, [])
                methods = sorted({m for m, _ in pairs}, key=method_order) or [side.method]
                layers = [la for m, la in pairs if m == side.method] or [side.layer]
                self._set(f"#{name}-run", run_options, side.run)
                self._set(f"#{name}-method", [(m, m) for m in methods], side.method)
                self._set(
                    f"#{name}-layer",
                    [("all layers" if la == 0 else f"layer {la}", la) for la in layers],
                    side.layer,
                )

    def _set(self, selector: str, options: list[tuple[str, Any]], value: Any) -> None:
        select = self.query_one(selector, Select)
        select.set_options(options)
        select.value = value

    @on(TableLoaded)
    def _table_loaded(self, event: TableLoaded) -> None:
        result = event.comparison
        if (result.a, result.b) != self.sides or result.metric != self.metric:
            return  # a newer comparison is on its way
        self._comparison = result
        table = self.query_one("#cells", DataTable)
        table.clear(columns=True)
        table.add_columns("", "B interpretable", "B not", "total")
        rows = (
            ("A interpretable", result.both, result.a_only),
            ("A not", result.b_only, result.neither),
        )
        for label, yes, no in rows:
            table.add_row(Text(label, style="bold"), f"{yes:,}", f"{no:,}", f"{yes + no:,}")
        table.add_row(
            Text("total", style="bold"),
            f"{result.both + result.b_only:,}",
            f"{result.a_only + result.neither:,}",
            f"{result.n:,}",
        )
        table.move_cursor(row=0, column=2)  # the question: interpretable under A, not under B
        self.query_one("#summary", Static).update(self._summary(result))

    def _summary(self, result: Comparison) -> Text:
        models = {r["id"]: r["model"] for r in self._runs}
        label = metric_info(result.metric).label
        text = Text()
        text.append("A ", style="bold")
        text.append(inert(side_label(result.a, models)))
        text.append("  B ", style="bold")
        text.append(inert(side_label(result.b, models)) + "\n")
        if result.n == 0:
            text.append(
                "No example is scorable under both (different corpora, or nothing scorable).",
                style="dim",
            )
            return text
        a_share = (result.both + result.a_only) / result.n
        b_share = (result.both + result.b_only) / result.n
        text.append(f"{label}: A {a_share:.3f} vs B {b_share:.3f} on N={result.n:,} · ")
        text.append(f"McNemar p={result.p_value:.3g}", style="bold")
        text.append(" (A and B differ)" if result.p_value < 0.05 else " (no difference shown)")
        return text

    @on(DataTable.CellSelected, "#cells")
    def _cell_selected(self, event: DataTable.CellSelected) -> None:
        cell = CELLS.get((event.coordinate.row, event.coordinate.column))
        if cell is None:
            self.notify("choose one of the four counts")
            return
        self.set_reactive(CompareScreen.offset, 0)
        self.cell = cell

    def watch_cell(self) -> None:
        self._load_cell()

    def watch_offset(self) -> None:
        self._load_cell()

    def _load_cell(self) -> None:
        key = self._page_key()
        if key is not None:
            self.query_one("#status", Label).update("reading…")
            self.load_page(key)

    @on(PageLoaded)
    def _page_loaded(self, event: PageLoaded) -> None:
        if event.key != self._page_key() or self._comparison is None:
            return
        self._rows = event.page.to_pylist()
        table = self.query_one("#list", DataTable)
        table.clear()
        for row in self._rows:
            table.add_row(
                literal(row["id"]),
                literal(row["kind"]),
                str(row["rationale"]),
                "edit" if row["label"] else "ok",
                "edit" if row["a_pred"] else "ok",
                "edit" if row["b_pred"] else "ok",
                literal(row["text"][:120]),
                key=row["id"],
            )
        a_yes, b_yes = self.cell or (True, False)
        total = self._comparison.count((a_yes, b_yes))
        first = self.offset + 1 if self._rows else 0
        self.query_one("#status", Label).update(
            f"{_yes(a_yes)} under A, {_yes(b_yes)} under B: "
            f"{first:,}–{self.offset + len(self._rows):,} of {total:,}"
        )
        if self._rows:
            table.focus()

    @on(DataTable.RowSelected, "#list")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        from tui.screens.example import ExampleScreen

        if not self._rows or self.sides is None:
            return
        a = self.sides[0]
        filters = Filters(run=a.run, method=a.method, layer=a.layer, metric=self.metric)
        ids = [row["id"] for row in self._rows]
        self.app.push_screen(
            ExampleScreen(filters, ids, index=event.cursor_row, offset=0, total=len(ids))
        )

    # -- actions ---------------------------------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if self.sides is None or event.select.id is None:
            return
        if event.value is Select.NULL:  # the blank line: put the side's value back
            self._sync_selects()
            return
        name, part = event.select.id.split("-")
        index = 0 if name == "a" else 1
        side = self.sides[index]
        if part == "run":
            side = self._keep(str(event.value), side.method, side.layer)
        elif part == "method":
            side = self._keep(side.run, str(event.value), side.layer)
        else:
            side = Side(side.run, side.method, int(event.value))  # type: ignore[arg-type]
        sides = list(self.sides)
        sides[index] = side
        self.sides = (sides[0], sides[1])

    def _keep(self, run: str, method: str, layer: int) -> Side:
        """The side closest to what was asked that the run has."""
        pairs = self._pairs.get(run, [])
        if (method, layer) in pairs or not pairs:
            return Side(run, method, layer)
        same = [la for m, la in pairs if m == method]
        return Side(run, method, same[-1]) if same else Side(run, *pairs[0])

    def action_swap(self) -> None:
        if self.sides is not None:
            self.sides = (self.sides[1], self.sides[0])

    def action_next_metric(self) -> None:
        self.metric = BROWSE_METRICS[(BROWSE_METRICS.index(self.metric) + 1) % len(BROWSE_METRICS)]

    def action_page(self, step: int) -> None:
        if self._comparison is None or self.cell is None:
            return
        offset = self.offset + step * PAGE
        if 0 <= offset < self._comparison.count(self.cell):
            self.offset = offset

    def action_back(self) -> None:
        self.app.pop_screen()


def _select(widget_id: str, kind: str) -> Select:
    return Select([], prompt=kind, allow_blank=True, compact=True, id=widget_id, classes=kind)
