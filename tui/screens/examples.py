"""The examples of a run, filtered by outcome, prediction, kind, rationale size and text; paged
from the store with live counts per bucket."""

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
from textual.widgets import DataTable, Footer, Header, Input, Label, Select, Static

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


def _bucket(row: dict[str, Any]) -> str:
    return ("T" if row["pred"] == row["label"] else "F") + ("P" if row["pred"] else "N")


class ExamplesScreen(Screen):
    """A run's examples under a filter; enter opens one."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "back", "Runs"),
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "search", "Search"),
        Binding("o", "cycle('outcome')", "Outcome"),
        Binding("p", "cycle('prediction')", "Prediction"),
        Binding("k", "cycle('kind')", "Kind"),
        Binding("i", "cycle('metric')", "Interp. metric"),
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort"),
        Binding("right_square_bracket", "page(1)", "Next page"),
        Binding("left_square_bracket", "page(-1)", "Prev page"),
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
    ExamplesScreen #table { height: 1fr; }
    ExamplesScreen #status { height: 1; padding: 0 1; color: $text-muted; }
    """

    filters: reactive[Filters] = reactive(Filters(run=""), init=False)
    """The current filter, sort order and metric; every change reloads page and counts."""
    offset: reactive[int] = reactive(0, init=False)
    """Index of the first row of the page shown."""

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

    def __init__(self, run: str, *, metric: str = "top3", search: bool = False) -> None:
        super().__init__()
        with self.app.handle.read() as store:
            self._runs = store.run_overview().select(["id", "model", "layers"]).to_pylist()
            self._pairs = self._method_pairs(store, run)
        method, layer = self._default_pair()
        self.set_reactive(
            ExamplesScreen.filters, Filters(run=run, method=method, layer=layer, metric=metric)
        )
        self._focus_search = search
        self._rows: list[dict[str, Any]] = []
        self._total = 0
        self._syncing = False

    @staticmethod
    def _method_pairs(store: Any, run: str) -> list[tuple[str, int]]:
        return [(r["method"], r["layer"]) for r in store.run_methods(run).to_pylist()]

    def _default_pair(self) -> tuple[str, int]:
        if not self._pairs:
            return "attention", 0
        attention = [p for p in self._pairs if p[0] == "attention"]
        return attention[-1] if attention else self._pairs[0]

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        f = self.filters
        yield Header()
        with Horizontal(classes="bar"):
            yield _select([(r["model"], r["id"]) for r in self._runs], f.run, "run")
            yield _select(self._method_options(), f.method, "method")
            yield _select(self._layer_options(f.method), f.layer, "layer")
            yield _select([(f"metric {METRIC_LABELS[m]}", m) for m in METRICS], f.metric, "metric")
        with Horizontal(classes="bar"):
            yield _select([(OUTCOME_LABELS[o], o) for o in OUTCOMES], f.outcome, "outcome")
            yield _select(
                [(PREDICTION_LABELS[p], p) for p in PREDICTIONS], f.prediction, "prediction"
            )
            yield _select([("kind: any", "any")] + [(k, k) for k in KINDS], "any", "kind")
            yield _select([(f"|R| {s}", s) for s in RATIONALE_SIZES], f.rationale, "rationale")
            yield Input(placeholder="/ search text", compact=True, id="search")
        yield Static("", id="counts")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="status")
        yield Footer()

    def _method_options(self) -> list[tuple[str, str]]:
        methods = sorted({m for m, _ in self._pairs}) or ["attention"]
        return [(m, m) for m in methods]

    def _layer_options(self, method: str) -> list[tuple[str, int]]:
        layers = [la for m, la in self._pairs if m == method] or [0]
        return [("all layers" if la == 0 else f"layer {la}", la) for la in layers]

    def on_mount(self) -> None:
        table = self.query_one("#table", DataTable)
        table.add_columns("id", "kind", "pred", "p", "conf", "interp", "J", "len", "R", "text")
        self.sub_title = self._run_label()
        if self._focus_search:
            self.query_one("#search", Input).focus()
        else:
            table.focus()
        self.load()

    def _run_label(self) -> str:
        models = {r["id"]: r["model"] for r in self._runs}
        return f"{models.get(self.filters.run, self.filters.run)} ({self.filters.run})"

    # -- loading ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="page")
    def load(self) -> None:
        filters, offset = self.filters, self.offset
        with self.app.handle.read() as store:
            counts = store.bucket_counts(**filters.query())
            page = store.example_page(
                **filters.query(),
                sort=filters.sort,
                descending=filters.descending,
                limit=PAGE,
                offset=offset,
            )
        self.post_message(self.Loaded(filters, offset, page, counts))

    def watch_filters(self, old: Filters, new: Filters) -> None:
        if old.run != new.run:
            with self.app.handle.read() as store:
                self._pairs = self._method_pairs(store, new.run)
            self.sub_title = self._run_label()
        self.set_reactive(ExamplesScreen.offset, 0)
        self._sync_controls()
        self.load()

    def watch_offset(self) -> None:
        self.load()

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
                row["id"],
                row["kind"],
                _bucket(row),
                f"{row['prob']:.2f}",
                f"{row['confidence']:.2f}",
                "–" if interp is None else ("✓" if interp else "✗"),
                "–" if row["jaccard"] is None else f"{row['jaccard']:.2f}",
                str(row["length"]),
                str(row["rationale"]),
                row["text"][:120],
                key=row["id"],
            )
        self._show_status()

    def _show_status(self) -> None:
        f = self.filters
        first = self.offset + 1 if self._rows else 0
        last = self.offset + len(self._rows)
        arrow = "↓" if f.descending else "↑"
        method = f.method + (f" L{f.layer}" if f.layer else "")
        self.query_one("#status", Label).update(
            f"rows {first:,}–{last:,} of {self._total:,} · {method} · sort {f.sort} {arrow}"
        )

    def _sync_controls(self) -> None:
        """Set the filter bar's controls from ``filters`` (after keys or the palette change it)."""
        f = self.filters
        self._syncing = True
        try:
            method = self.query_one("#method", Select)
            method.set_options(self._method_options())
            method.value = f.method
            layer = self.query_one("#layer", Select)
            layer.set_options(self._layer_options(f.method))
            layer.value = f.layer
            values = {
                "run": f.run,
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
        finally:
            self.call_after_refresh(self._end_sync)

    def _end_sync(self) -> None:
        self._syncing = False

    # -- events and actions ----------------------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if self._syncing or event.value is Select.NULL:
            return
        name, value = event.select.id, event.value
        f = self.filters
        if name == "run" and value != f.run:
            with self.app.handle.read() as store:
                self._pairs = self._method_pairs(store, str(value))
            method, layer = self._keep_pair(f.method, f.layer)
            self.filters = f.with_(run=value, method=method, layer=layer)
        elif name == "method" and value != f.method:
            layers = [la for m, la in self._pairs if m == value] or [0]
            layer = f.layer if f.layer in layers else layers[-1]
            self.filters = f.with_(method=value, layer=layer)
        elif name == "layer" and value != f.layer:
            self.filters = f.with_(layer=int(value))
        elif name == "kind":
            kind = None if value == "any" else str(value)
            if kind != f.kind:
                self.filters = f.with_(kind=kind)
        elif name in ("metric", "outcome", "prediction", "rationale") and getattr(f, name) != value:
            self.filters = f.with_(**{name: value})

    def _keep_pair(self, method: str, layer: int) -> tuple[str, int]:
        if (method, layer) in self._pairs:
            return method, layer
        same = [p for p in self._pairs if p[0] == method]
        return same[-1] if same else self._default_pair()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        if event.value != self.filters.search:
            self.filters = self.filters.with_(search=event.value)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.query_one("#table", DataTable).focus()

    @on(DataTable.RowSelected, "#table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_row(event.cursor_row)

    def action_open(self) -> None:
        self.open_row(self.query_one("#table", DataTable).cursor_row)

    def open_row(self, index: int) -> None:
        from tui.screens.example import ExampleScreen

        if not self._rows:
            return
        self.app.push_screen(
            ExampleScreen(
                self.filters,
                [row["id"] for row in self._rows],
                index=index,
                offset=self.offset,
                total=self._total,
            )
        )

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
            self.offset = offset

    def action_clear_filters(self) -> None:
        f = self.filters
        self.query_one("#search", Input).value = ""
        self.filters = Filters(run=f.run, method=f.method, layer=f.layer, metric=f.metric)

    def set_metric(self, metric: str) -> None:
        """Called by the app when the interpretable metric changes (command palette)."""
        if metric != self.filters.metric:
            self.filters = self.filters.with_(metric=metric)

    def action_export(self) -> None:
        from tui.screens.dialogs import ExportScreen

        self.app.push_screen(ExportScreen(self.filters), self._export)

    def _export(self, target: tuple[str, str] | None) -> None:
        if target:
            self.export(self.filters, *target)

    class Exported(Message):
        """The export worker finished: ``rows`` written to ``path``, or ``error``."""

        def __init__(self, path: str, rows: int = 0, error: str = "") -> None:
            super().__init__()
            self.path = path
            self.rows = rows
            self.error = error

    @work(thread=True, group="export")
    def export(self, filters: Filters, fmt: str, path: str) -> None:
        from pathlib import Path

        from engine.export import write_records

        try:
            with self.app.handle.read() as store:
                rows = write_records(store.filtered_batches(**filters.query()), fmt, Path(path))
        except Exception as error:
            self.post_message(self.Exported(path, error=str(error)))
            return
        self.post_message(self.Exported(path, rows=rows))

    @on(Exported)
    def _exported(self, event: Exported) -> None:
        if event.error:
            self.notify(f"export failed: {event.error}", severity="error", timeout=10)
        else:
            self.notify(f"wrote {event.rows:,} examples to {event.path}", timeout=8)


def _select(options: list[tuple[str, Any]], value: Any, widget_id: str) -> Select:
    """One compact, never-blank drop-down of the filter bar."""
    return Select(options, value=value, allow_blank=False, compact=True, id=widget_id)
