"""Reports like the study's tables: rows are runs, columns are methods x metrics, always with N."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table

from engine.store import OUTCOME_METRICS, Run, Store

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


def render(store: Store, rows: list[dict[str, Any]], metric: str = "top3") -> Group:
    """The study's tables: method comparison per population, then attention by layer."""
    runs = {row["run"]: store.get_run(row["run"]) for row in rows}
    methods = sorted({row["method"] for row in rows}, key=_method_order)
    by_key = {(r["run"], r["method"], r["layer"], r["population"]): r for r in rows}
    tables: list[Table] = []
    for population, title in POPULATION_TITLES.items():
        table = Table(title=f"{metric} at the last layer: {title}", title_justify="left")
        for column in ("model", "corpus/split", "acc", "F1", "N"):
            table.add_column(column, justify="right" if column in ("acc", "F1", "N") else "left")
        for method in methods:
            table.add_column(method.replace("_", " "), justify="right")
        for run in runs.values():
            cells, n = [], None
            for method in methods:
                row = by_key.get((run.id, method, headline_layer(rows, run, method), population))
                cells.append("–" if row is None or row[metric] is None else f"{row[metric]:.3f}")
                n = n or (row and row["n"])
            table.add_row(
                run.model,
                f"{run.corpus}/{run.split}",
                _figure(run.metrics.get("accuracy")),
                _figure(run.metrics.get("f1")),
                f"{n or 0:,}",
                *cells,
            )
        tables.append(table)
    layered = [m for m in ("attention", "attention_max", "rollout") if m in methods]
    if layered:
        depth = max(run.layers for run in runs.values())
        table = Table(title=f"{metric} by layer (all scorable sentences)", title_justify="left")
        table.add_column("model")
        table.add_column("method")
        for layer in range(1, depth + 1):
            table.add_column(f"L{layer}", justify="right")
        for run in runs.values():
            for method in layered:
                values = [
                    by_key.get((run.id, method, layer, "all")) for layer in range(1, depth + 1)
                ]
                if not any(values):
                    continue
                table.add_row(
                    run.model,
                    method,
                    *(
                        "–" if v is None or v[metric] is None else f"{v[metric]:.3f}"
                        for v in values
                    ),
                )
        tables.append(table)
    return Group(*tables)


def _method_order(method: str) -> tuple[int, str]:
    order = (
        "attention",
        "attention_max",
        "rollout",
        "grad",
        "grad_x_input",
        "integrated_gradients",
        "random",
    )
    return (order.index(method) if method in order else len(order), method)


def _figure(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"
