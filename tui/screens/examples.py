"""The examples of a run, filtered by method, layer, outcome, prediction, kind, rationale size
and text; paged from the store with live counts per bucket and per layer.

Longer than most modules because it is the TUI's main screen: its filter bar, list, paging and
the actions bound to its keys live together; what other screens show (compare, charts, pins,
run detail) is in their own modules, and every query is the store's."""

from __future__ import annotations

import shlex
from functools import partial
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
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Label, Select, Static

from engine.vocabulary import is_layered, method_info, method_order
from tui.screens.base import ReportsFailures
from tui.screens.exporting import ExportsRecords
from tui.state import (
    KINDS,
    METRIC_LABELS,
    METRICS,
    OUTCOMES,
    PAGE,
    PREDICTIONS,
    RATIONALE_SIZES,
    SORTS,
    Filters,
)
from tui.text import literal
from tui.widgets.job import JobPanel

PREDICTION_LABELS = {
    "any": "pred: any",
    "right": "right",
    "wrong": "wrong",
    "tp": "TP",
    "fp": "FP",
    "fn": "FN",
    "tn": "TN",
}
OUTCOME_LABELS = {
    "any": "any outcome",
    "yes": "interpretable",
    "no": "not interpretable",
    "unscorable": "unscorable",
}
SEARCH_DELAY = 0.3  # seconds of quiet typing before a search runs (Textual's dictionary example)


def bucket_line(counts: dict[str, int], metric: str) -> Text:
    """`interpretable 1,523 · not 611 · unscorable 20 │ right … wrong … │ TP … FP … FN … TN …`."""
    text = Text()
    text.append(f"{METRIC_LABELS[metric]}: ", style="bold")
    text.append(f"interpretable {counts['interpretable']:,} · not {counts['not_interpretable']:,}")
    text.append(f" · unscorable {counts['unscorable']:,}")
    text.append("  │  ", style="dim")
    text.append(f"right {counts['right']:,} · wrong {counts['wrong']:,}")
    text.append("  │  ", style="dim")
    text.append(
        f"TP {counts['tp']:,} · FP {counts['fp']:,} · FN {counts['fn']:,} · TN {counts['tn']:,}"
    )
    return text


def layer_line(method: str, current: int, by_layer: dict[int, int]) -> Text:
    """`attn interpretable by layer: L1 12 · L2 15 · ▶L6 20`: the whole method at a glance."""
    text = Text()
    text.append(f"{method_label(method)} interpretable by layer: ", style="bold")
    for index, (layer, count) in enumerate(sorted(by_layer.items())):
        if index:
            text.append(" · ", style="dim")
        mark = "▶" if layer == current else ""
        text.append(f"{mark}L{layer} {count:,}", style="reverse" if layer == current else "")
    return text


def method_label(method: str) -> str:
    try:
        return method_info(method).short
    except KeyError:
        return method


def cli_command(filters: Filters) -> str:
    """The filter as the `editlens export` command that writes the same examples."""
    f = filters
    default = Filters(run=f.run)
    parts = ["editlens", "export", "--run", f.run, "--method", f.method, "--layer", str(f.layer)]
    for name in ("metric", "outcome", "prediction", "rationale", "search", "sort"):
        value = getattr(f, name)
        if value != getattr(default, name):
            parts += [f"--{name}", str(value)]
    if f.kind:
        parts += ["--kind", f.kind]
    if f.descending:
        parts.append("--descending")
    return shlex.join(parts)


def _layer_key(filters: Filters) -> Filters:
    """What the per-layer counts depend on: the filter without its layer, outcome and order."""
    return filters.with_(layer=0, outcome="any", sort="id", descending=False)


def _bucket(row: dict[str, Any]) -> str:
    return ("T" if row["pred"] == row["label"] else "F") + ("P" if row["pred"] else "N")


class ExamplesScreen(ReportsFailures, ExportsRecords, Screen):
    """A run's examples under a filter; enter opens one."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Runs"),
        Binding("enter", "open", "Open", show=False),
        Binding("j", "cursor(1)", "Down", show=False),
        Binding("k", "cursor(-1)", "Up", show=False),
        Binding("slash", "search", "Search"),
        Binding("g", "goto", "Go to id"),
        Binding("m", "method(1)", "Next method"),
        Binding("M", "method(-1)", "Prev method"),
        Binding("l", "layer(1)", "Layer +1"),
        Binding("h", "layer(-1)", "Layer −1"),
        Binding("o", "cycle('outcome')", "Outcome"),
        Binding("c", "cycle('prediction')", "Prediction"),
        Binding("e", "cycle('kind')", "Edit kind"),
        Binding("i", "cycle('metric')", "Interp. metric"),
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort"),
        Binding("right_square_bracket", "page(1)", "Next page"),
        Binding("left_square_bracket", "page(-1)", "Prev page"),
        Binding("y", "copy_command", "Copy as CLI"),
        Binding("v", "compare", "Compare A/B"),
        Binding("G", "charts", "Charts"),
        Binding("d", "run_detail", "Run detail"),
        Binding("b", "pin", "Pin/unpin"),
        Binding("B", "pinned", "Pinned only"),
        Binding("ctrl+e", "export", "Export"),
        Binding("ctrl+r", "clear_filters", "Clear filters"),
    ]
    DEFAULT_CSS = """
    ExamplesScreen .bar { height: 1; padding: 0 1; }
    ExamplesScreen .bar Select { width: 1fr; margin-right: 1; }
    ExamplesScreen .bar #layer { width: 12; }
    ExamplesScreen .bar #metric { width: 20; }
    ExamplesScreen .bar #outcome { width: 21; }
    ExamplesScreen .bar #prediction { width: 13; }
    ExamplesScreen .bar #kind { width: 14; }
    ExamplesScreen .bar #rationale { width: 10; }
    ExamplesScreen .bar Input { width: 1fr; }
    ExamplesScreen #counts { height: auto; padding: 0 1; background: $boost; }
    ExamplesScreen #layers { height: 1; padding: 0 1; background: $boost; }
    ExamplesScreen #table { height: 1fr; }
    ExamplesScreen #status { height: 1; padding: 0 1; color: $text-muted; }
    ExamplesScreen #command { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap;
        text-overflow: ellipsis; }
    """

    filters: reactive[Filters] = reactive(Filters(run=""), init=False)
    """The current filter, sort order and metric; every change reloads page and counts."""
    offset: reactive[int] = reactive(0, init=False)
    """Index of the first row of the page shown."""

    class MetaLoaded(Message):
        """A run's (method, layer) pairs and every run's label came back from the store."""

        def __init__(self, run: str, runs: list[dict[str, Any]], pairs: list[tuple[str, int]]):
            super().__init__()
            self.run = run
            self.runs = runs
            self.pairs = pairs

    class Loaded(Message):
        """A page and its counts came back from the store for ``filters`` at ``offset``."""

        def __init__(
            self, filters: Filters, offset: int, page: pa.Table, counts: dict[str, int]
        ) -> None:
            super().__init__()
            self.filters = filters
            self.offset = offset
            self.page = page
            self.counts = counts

    class LayersLoaded(Message):
        """Interpretable counts at every layer of the filter's method."""

        def __init__(self, filters: Filters, by_layer: dict[int, int]) -> None:
            super().__init__()
            self.filters = filters
            self.by_layer = by_layer

    def __init__(self, run: str, *, metric: str = "top3", search: bool = False) -> None:
        super().__init__()
        self.set_reactive(ExamplesScreen.filters, Filters(run=run, metric=metric))
        self._focus_search = search
        self._runs: list[dict[str, Any]] = []
        self._pairs: list[tuple[str, int]] = []
        self._rows: list[dict[str, Any]] = []
        self._total = 0
        self._cursor_after_load = 0
        self._search_timer: Timer | None = None
        self._shown_options: dict[str, list[tuple[str, Any]]] = {}
        self._layers_wanted = False
        self._by_layer: tuple[Filters, dict[int, int]] | None = None

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        f = self.filters
        yield Header()
        with Horizontal(classes="bar"):
            yield _select([(literal(f.run), f.run)], f.run, "run")
            yield _select([(f.method, f.method)], f.method, "method")
            yield _select([("layer …", f.layer)], f.layer, "layer")
            yield _select([(f"metric {METRIC_LABELS[m]}", m) for m in METRICS], f.metric, "metric")
        with Horizontal(classes="bar"):
            yield _select([(OUTCOME_LABELS[o], o) for o in OUTCOMES], f.outcome, "outcome")
            yield _select(
                [(PREDICTION_LABELS[p], p) for p in PREDICTIONS], f.prediction, "prediction"
            )
            yield _select([("kind: any", "any")] + [(k, k) for k in KINDS], "any", "kind")
            yield _select([(f"|R| {s}", s) for s in RATIONALE_SIZES], f.rationale, "rationale")
            yield Input(placeholder="/ search text or id", compact=True, id="search")
        yield Static("", id="counts")
        yield Static("", id="layers")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="command")
        yield Label("", id="status")
        yield JobPanel()
        yield Footer()

    def _method_options(self) -> list[tuple[str, str]]:
        methods = sorted({m for m, _ in self._pairs}, key=method_order) or [self.filters.method]
        return [(method_label(m), m) for m in methods]

    def _layers(self, method: str) -> list[int]:
        return [la for m, la in self._pairs if m == method] or [0]

    def _layer_options(self, method: str) -> list[tuple[str, int]]:
        return [("all layers" if la == 0 else f"layer {la}", la) for la in self._layers(method)]

    def on_mount(self) -> None:
        table = self.query_one("#table", DataTable)
        table.add_columns("id", "kind", "pred", "p", "conf", "interp", "J", "len", "R", "text")
        if self._focus_search:
            self.query_one("#search", Input).focus()
        else:
            table.focus()
        self.load_meta(self.filters.run)

    def _run_label(self, run: str) -> str:
        labels = {r["id"]: r["label"] for r in self._runs}
        return labels.get(run, run)

    # -- loading (every store read in a worker thread) -------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="meta")
    def load_meta(self, run: str) -> None:
        from tui.screens.runs import run_labels

        with self.app.handle.read() as store:
            overview = store.run_overview().to_pylist()
            pairs = [(r["method"], r["layer"]) for r in store.run_methods(run).to_pylist()]
        labels = run_labels(overview)
        runs = [{"id": r["id"], "label": labels[r["id"]]} for r in overview]
        self.post_message(self.MetaLoaded(run, runs, pairs))

    @on(MetaLoaded)
    def _meta_loaded(self, event: MetaLoaded) -> None:
        self._runs, self._pairs = event.runs, event.pairs
        method, layer = self._keep_pair(self.filters.method, self.filters.layer)
        changed = self.filters.with_(run=event.run, method=method, layer=layer)
        self.sub_title = literal(self._run_label(event.run)).plain
        if changed == self.filters:
            self._sync_controls()
            self._reload()
        else:
            self.filters = changed

    def _keep_pair(self, method: str, layer: int) -> tuple[str, int]:
        """The same method and layer in the newly loaded run when it has them, else the
        nearest: the same method's last layer, then the last layer of attention."""
        if (method, layer) in self._pairs:
            return method, layer
        same = [p for p in self._pairs if p[0] == method]
        if same:
            return same[-1]
        attention = [p for p in self._pairs if p[0] == "attention"]
        if attention:
            return attention[-1]
        return self._pairs[0] if self._pairs else (method, layer)

    @work(thread=True, exclusive=True, exit_on_error=False, group="page")
    def load(self, filters: Filters, offset: int) -> None:
        with self.app.handle.read() as store:
            counts = store.bucket_counts(filters)
            page = store.example_page(filters, limit=PAGE, offset=offset)
        self.post_message(self.Loaded(filters, offset, page, counts))

    @work(thread=True, exclusive=True, exit_on_error=False, group="layers")
    def load_layers(self, filters: Filters) -> None:
        with self.app.handle.read() as store:
            by_layer = store.interpretable_by_layer(filters)
        self.post_message(self.LayersLoaded(filters, by_layer))

    def _reload(self, layers: bool = True) -> None:
        """Load the page now; the per-layer counts after it arrives, so they never slow it."""
        self.load(self.filters, self.offset)
        self._layers_wanted = self._layers_wanted or layers

    def _show_layers(self) -> None:
        """The per-layer line: from the last counts when only the layer, outcome or order
        changed (none of which changes them), else read in a worker."""
        f = self.filters
        widget = self.query_one("#layers", Static)
        layers = [la for la in self._layers(f.method) if la]
        if not is_layered(f.method) or len(layers) < 2:
            widget.display = False
        elif self._by_layer is not None and self._by_layer[0] == _layer_key(f):
            widget.display = True
            widget.update(layer_line(f.method, f.layer, self._by_layer[1]))
        else:
            self.load_layers(f)

    def watch_filters(self) -> None:
        self.set_reactive(ExamplesScreen.offset, 0)
        self._cursor_after_load = 0
        self._sync_controls()
        self._reload()

    def watch_offset(self) -> None:
        self._reload(layers=False)

    def refresh_data(self) -> None:
        """Read everything again (the store changed under us)."""
        self._by_layer = None
        self.load_meta(self.filters.run)

    @on(Loaded)
    def show(self, event: Loaded) -> None:
        if event.filters != self.filters or event.offset != self.offset:
            return  # a newer filter is already loading
        self._rows = event.page.to_pylist()
        self._total = event.counts["total"]
        self.query_one("#counts", Static).update(bucket_line(event.counts, event.filters.metric))
        table = self.query_one("#table", DataTable)
        table.clear()
        for row in self._rows:
            interp = row["interpretable"]
            table.add_row(
                literal(row["id"]),
                row["kind"],
                _bucket(row),
                f"{row['prob']:.2f}",
                f"{row['confidence']:.2f}",
                "–" if interp is None else ("✓" if interp else "✗"),
                "–" if row["jaccard"] is None else f"{row['jaccard']:.2f}",
                str(row["length"]),
                str(row["rationale"]),
                literal(row["text"][:120]),
                key=row["id"],
            )
        if self._rows:
            table.move_cursor(row=min(self._cursor_after_load, len(self._rows) - 1))
        self._show_status()
        if self._layers_wanted:
            self._layers_wanted = False
            self._show_layers()

    @on(LayersLoaded)
    def _layers_loaded(self, event: LayersLoaded) -> None:
        self._by_layer = (_layer_key(event.filters), event.by_layer)
        self._show_layers()

    def _show_status(self) -> None:
        f = self.filters
        first = self.offset + 1 if self._rows else 0
        last = self.offset + len(self._rows)
        arrow = "↓" if f.descending else "↑"
        method = method_label(f.method) + (f" L{f.layer}" if f.layer else "")
        self.query_one("#status", Label).update(
            Text(f"rows {first:,}–{last:,} of {self._total:,} · {method} · sort {f.sort} {arrow}")
        )
        self.query_one("#command", Label).update(literal(cli_command(f)))

    def _sync_controls(self) -> None:
        """Set the filter bar from ``filters`` without the controls reporting it back as a
        change (refreshing a drop-down's options selects its first one and posts Changed)."""
        f = self.filters
        with self.prevent(Select.Changed):
            run_options = [(literal(r["label"]), r["id"]) for r in self._runs] or [
                (literal(f.run), f.run)
            ]
            self._set("run", run_options, f.run)
            self._set("method", self._method_options(), f.method)
            self._set("layer", self._layer_options(f.method), f.layer)
            values = {
                "metric": f.metric,
                "outcome": f.outcome,
                "prediction": f.prediction,
                "kind": f.kind or "any",
                "rationale": f.rationale,
            }
            for name, value in values.items():
                select = self.query_one(f"#{name}", Select)
                if select.value != value:
                    select.value = value

    def _set(self, name: str, options: list[tuple[Any, Any]], value: Any) -> None:
        """Give a drop-down new options (only when they differ: setting them selects the first)
        and its value."""
        select = self.query_one(f"#{name}", Select)
        shown = [(str(prompt), v) for prompt, v in options]
        if self._shown_options.get(name) != shown:
            self._shown_options[name] = shown
            select.set_options(options)
        if select.value != value:
            select.value = value

    # -- events and actions ----------------------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.value is Select.NULL:
            return
        name, value = event.select.id, event.value
        f = self.filters
        if name == "run" and value != f.run:
            self.load_meta(str(value))
        elif name == "method" and value != f.method:
            self._set_method(str(value))
        elif name == "layer" and value != f.layer:
            self.filters = f.with_(layer=int(value))  # type: ignore[arg-type]
        elif name == "kind":
            kind = None if value == "any" else str(value)
            if kind != f.kind:
                self.filters = f.with_(kind=kind)
        elif name in ("metric", "outcome", "prediction", "rationale") and getattr(f, name) != value:
            self.filters = f.with_(**{name: value})

    def _set_method(self, method: str) -> None:
        layers = self._layers(method)
        layer = self.filters.layer if self.filters.layer in layers else layers[-1]
        self.filters = self.filters.with_(method=method, layer=layer)

    def action_method(self, step: int) -> None:
        methods = [m for _, m in self._method_options()]
        current = self.filters.method
        index = methods.index(current) if current in methods else -step
        self._set_method(methods[(index + step) % len(methods)])

    def action_layer(self, step: int) -> None:
        layers = self._layers(self.filters.method)
        if self.filters.layer in layers:
            target = layers.index(self.filters.layer) + step
            if 0 <= target < len(layers):
                self.filters = self.filters.with_(layer=layers[target])

    def set_pair(self, method: str, layer: int) -> None:
        """Show ``method`` at ``layer`` (the command palette's method and layer commands)."""
        if (method, layer) in self._pairs:
            self.filters = self.filters.with_(method=method, layer=layer)

    def pairs(self) -> list[tuple[str, int]]:
        """The (method, layer) pairs the current run has, for the command palette."""
        return list(self._pairs)

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY, partial(self._apply_search, event.value))

    def _apply_search(self, value: str) -> None:
        if value != self.filters.search:
            self.filters = self.filters.with_(search=value)

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._apply_search(event.value)
        self.query_one("#table", DataTable).focus()

    @on(DataTable.RowSelected, "#table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_row(event.cursor_row)

    def action_open(self) -> None:
        self.open_row(self.query_one("#table", DataTable).cursor_row)

    def open_row(self, index: int) -> None:
        if not self._rows:
            return
        ids = [row["id"] for row in self._rows]
        self._open(ids, index, self.offset, self._total)

    def _open(self, ids: list[str], index: int, offset: int, total: int) -> None:
        from tui.screens.example import ExampleScreen

        screen = ExampleScreen(self.filters, ids, index=index, offset=offset, total=total)
        self.app.push_screen(screen, self._follow)

    def _follow(self, position: tuple[int, int] | None) -> None:
        """Back from the example screen: show the page and row it had stepped to."""
        if position is None:
            return
        offset, index = position
        self._cursor_after_load = index
        if offset != self.offset:
            self.offset = offset
        elif self._rows:
            self.query_one("#table", DataTable).move_cursor(row=min(index, len(self._rows) - 1))

    def action_cursor(self, step: int) -> None:
        """j/k move in the list as they step examples on the example screen."""
        table = self.query_one("#table", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step))

    def action_goto(self) -> None:
        from tui.screens.dialogs import GotoScreen

        self.app.push_screen(GotoScreen(), self._goto)

    def _goto(self, example: str | None) -> None:
        if example:
            self._open([example], 0, 0, 1)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_cycle(self, name: str) -> None:
        choices: tuple[Any, ...] = {
            "outcome": OUTCOMES,
            "prediction": PREDICTIONS,
            "kind": (None, *KINDS),
            "metric": METRICS,
        }[name]
        current = getattr(self.filters, name)
        self.filters = self.filters.with_(
            **{name: choices[(choices.index(current) + 1) % len(choices)]}
        )

    def action_next_sort(self) -> None:
        sort = SORTS[(SORTS.index(self.filters.sort) + 1) % len(SORTS)]
        self.filters = self.filters.with_(sort=sort, descending=sort != "id")

    def action_reverse_sort(self) -> None:
        self.filters = self.filters.with_(descending=not self.filters.descending)

    def action_page(self, step: int) -> None:
        offset = self.offset + step * PAGE
        if 0 <= offset < max(self._total, 1):
            self._cursor_after_load = 0
            self.offset = offset

    def action_clear_filters(self) -> None:
        f = self.filters
        with self.prevent(Input.Changed):
            self.query_one("#search", Input).value = ""
        self.filters = Filters(run=f.run, method=f.method, layer=f.layer, metric=f.metric)

    def action_copy_command(self) -> None:
        command = cli_command(self.filters)
        self.app.copy_to_clipboard(command)
        self.notify(command, title="copied", markup=False)

    def set_metric(self, metric: str) -> None:
        """Called by the app when the interpretable metric changes (command palette)."""
        if metric != self.filters.metric:
            self.filters = self.filters.with_(metric=metric)

    # -- the analysis screens (tui/screens/compare, charts, run_detail, pinned) -----------------

    def action_compare(self) -> None:
        from tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.filters))

    def action_charts(self) -> None:
        from tui.screens.charts import ChartsScreen

        screen = ChartsScreen(self.filters, self._run_label(self.filters.run))
        self.app.push_screen(screen, self._chart_filter)

    def _chart_filter(self, changes: dict[str, Any] | None) -> None:
        """A bar was chosen on the charts screen: show the examples behind it."""
        if changes:
            self.filters = self.filters.with_(**changes)

    def action_run_detail(self) -> None:
        from tui.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(self.filters.run))

    def action_pin(self) -> None:
        from tui.screens.pinned import toggle_pin

        if self._rows:
            row = self._rows[
                min(self.query_one("#table", DataTable).cursor_row, len(self._rows) - 1)
            ]
            toggle_pin(self, self.filters.run, row["id"])

    def action_pinned(self) -> None:
        from tui.screens.pinned import PinnedScreen

        self.app.push_screen(PinnedScreen(self.filters))

    def action_export(self) -> None:
        from tui.screens.dialogs import ExportScreen

        self.app.push_screen(ExportScreen(self.filters), self._export)

    def _export(self, target: tuple[str, str] | None) -> None:
        if not target:
            return
        from pathlib import Path

        from engine.export import write_records

        filters, (fmt, path) = self.filters, target

        def write() -> int:
            with self.app.handle.read() as store:  # in the list's order
                batches = store.filtered_batches(filters)
                # the dialog asked before overwriting
                return write_records(batches, fmt, Path(path), force=True, protected=[self.app.db])

        self.export_in_background(write, path, "examples")


def _select(options: list[tuple[Any, Any]], value: Any, widget_id: str) -> Select:
    """One compact, never-blank drop-down of the filter bar."""
    return Select(options, value=value, allow_blank=False, compact=True, id=widget_id)
