"""Reports like the study's tables: rows are runs, columns are methods x metrics, always with N."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table

from engine.store import OUTCOME_METRICS, Run, Store
from engine.text import inert
from engine.vocabulary import HEADLINE_METRIC, is_layered, method_order

CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
POPULATION_TITLES = {
    "all": "all scorable rationale sentences",
    "flagged": "rationale sentences the model flags as needing an edit",
}


def report_rows(store: Store, run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per run x method x layer x population: the figures ``--json`` prints."""
    runs = {run.id: run for run in store.runs(kind="evaluate")}
    if run_ids:
        runs = {run_id: store.get_run(run_id) for run_id in run_ids}
    rows = []
    for summary in store.summaries(list(runs)).to_pylist():
        run = runs[summary["run"]]
        row = {
            "run": run.id,
            "model": run.model,
            "corpus": run.corpus,
            "split": run.split,
            "method": summary["method"],
            "layer": summary["layer"],
            "population": summary["population"],
            "n": summary["n"],
        }
        row |= {metric: summary[metric] for metric in OUTCOME_METRICS}
        row |= {metric: run.metrics.get(metric) for metric in CLASSIFICATION}
        rows.append(row)
    return rows


def headline_layer(rows: list[dict[str, Any]], run: Run, method: str) -> int:
    """Layered methods are shown at the last layer (the study's choice), others at layer 0."""
    layers = {row["layer"] for row in rows if row["run"] == run.id and row["method"] == method}
    return max(layers) if layers else 0


def render(store: Store, rows: list[dict[str, Any]], metric: str = HEADLINE_METRIC) -> Group:
    """The study's tables, one column per run so they fit 80 columns: methods at the last layer
    for each population (with classification and N on top), then the layered methods by layer."""
    runs = [store.get_run(run_id) for run_id in dict.fromkeys(row["run"] for row in rows)]
    methods = sorted({row["method"] for row in rows}, key=method_order)
    by_key = {(r["run"], r["method"], r["layer"], r["population"]): r for r in rows}

    def cell(run: Run, method: str, layer: int, population: str) -> str:
        row = by_key.get((run.id, method, layer, population))
        return "–" if row is None or row[metric] is None else f"{row[metric]:.3f}"

    def run_table(title: str) -> Table:
        table = Table(title=title, title_justify="left")
        table.add_column("")
        for run in runs:
            header = inert(run.model) + "\n" + inert(f"{run.corpus}/{run.split}")  # data: shown
            table.add_column(header, justify="right")
        return table

    tables: list[Table] = []
    for population, title in POPULATION_TITLES.items():
        table = run_table(f"{metric} at the last layer: {title}")
        for figure in ("accuracy", "f1"):
            table.add_row(figure, *(_figure(run.metrics.get(figure)) for run in runs))
        n = [
            next((r["n"] for r in rows if r["run"] == run.id and r["population"] == population), 0)
            for run in runs
        ]
        table.add_row("N", *(f"{count:,}" for count in n), end_section=True)
        for method in methods:
            table.add_row(
                method,
                *(cell(run, method, headline_layer(rows, run, method), population) for run in runs),
            )
        tables.append(table)
    depth = max((run.layers for run in runs), default=0)
    for method in (m for m in methods if is_layered(m)):
        table = run_table(f"{metric} of {method} by layer (all scorable sentences)")
        for layer in range(1, depth + 1):
            table.add_row(f"layer {layer}", *(cell(run, method, layer, "all") for run in runs))
        tables.append(table)
    return Group(*tables)


def _figure(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"
