"""Plots of report rows: top-3 match by layer in the terminal (plotext) and as PNG (matplotlib).

Pure functions of the rows ``engine.report.report_rows`` returns (plus ``low``/``high`` for the
method plot's intervals): no store, no SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.text import inert
from engine.vocabulary import (
    BASELINE_METHOD,
    HEADLINE_METHOD,
    HEADLINE_METRIC,
    LAYER_PLOT_METHODS,
    METHOD_NAMES,
)


def layer_series(
    rows: Sequence[dict[str, Any]], metric: str = HEADLINE_METRIC, population: str = "all"
) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """(model, corpus, method) -> [(layer, value)] for the layered methods, layers ascending."""
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for row in rows:
        if (
            row["method"] in LAYER_PLOT_METHODS
            and row["population"] == population
            and row["layer"] >= 1
            and row.get(metric) is not None
        ):
            key = (row["model"], f"{row['corpus']}/{row['split']}", row["method"])
            series.setdefault(key, []).append((int(row["layer"]), float(row[metric])))
    return {key: sorted(points) for key, points in series.items()}


def terminal_layer_plot(
    rows: Sequence[dict[str, Any]], metric: str = HEADLINE_METRIC, *, width: int | None = None
) -> str:
    """Draw ``metric`` by layer for attention and rollout, a line per run, in the terminal.

    Prints the plot and returns it (without colours when stdout is not a terminal).
    """
    import shutil
    import sys

    import plotext as plt

    series = layer_series(rows, metric)
    if not series:
        text = f"nothing to plot: no attention or rollout rows with {metric}"
        print(text)
        return text
    width = width or min(shutil.get_terminal_size((100, 25)).columns, 120)
    layers = sorted({layer for points in series.values() for layer, _ in points})
    # plotext 6's figure API: a panel per data set x method
    figure = plt.figure
    figure.clear.all()
    corpora = sorted({corpus for _, corpus, _ in series})
    methods = [m for m in LAYER_PLOT_METHODS if any(k[2] == m for k in series)]
    keys = {model: str(i) for i, model in enumerate(dict.fromkeys(k[0] for k in series), 1)}
    figure.subplots(len(corpora), len(methods))
    for row, corpus in enumerate(corpora, 1):
        for col, method in enumerate(methods, 1):
            # plotext 6 makes no panel for a 1 x 1 grid: the figure is the panel then
            single = len(corpora) * len(methods) == 1
            panel = figure if single else figure.subplot(row, col)
            for (model, c, m), points in series.items():
                if (c, m) == (corpus, method):
                    x, y = zip(*points, strict=True)
                    panel.draw(panel.signal(list(x), list(y)).label(keys[model]).lines())
            panel.title(inert(f"{metric}: {corpus} · {method}"))  # data: shown, not sent
            panel.ruler(1).lim(0, 1)
            panel.ruler(0).ticks(layers)
    figure.plot_size(width, 16 * len(corpora))
    text = str(figure.build()) + "\n" + "   ".join(f"{k} = {inert(m)}" for m, k in keys.items())
    if not sys.stdout.isatty():
        text = plt.uncolorize(text)
    print(text)
    return text


def layer_plot_png(
    rows: Sequence[dict[str, Any]],
    path: Path,
    metric: str = HEADLINE_METRIC,
    population: str = "all",
) -> Path:
    """One panel per data set: ``metric`` by layer, a line per model and layered method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = layer_series(rows, metric, population)
    corpora = sorted({corpus for _, corpus, _ in series}) or ["(no rows)"]
    fig, axes = plt.subplots(
        1, len(corpora), figsize=(5.5 * len(corpora), 4), sharey=True, squeeze=False
    )
    colours: dict[str, Any] = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, corpus in zip(axes[0], corpora, strict=True):
        for (model, c, method), points in series.items():
            if c != corpus:
                continue
            colour = colours.setdefault(model, cycle[len(colours) % len(cycle)])
            ax.plot(
                [layer for layer, _ in points],
                [value for _, value in points],
                marker="o" if method == HEADLINE_METHOD else "s",
                linestyle="-" if method == HEADLINE_METHOD else "--",
                color=colour,
                label=f"{model} · {method}",
            )
        chance = [
            float(r[metric])
            for r in rows
            if r["method"] == BASELINE_METHOD
            and r["population"] == population
            and f"{r['corpus']}/{r['split']}" == corpus
            and r.get(metric) is not None
        ]
        if chance:
            ax.axhline(sum(chance) / len(chance), color="grey", linestyle=":", linewidth=1)
            ax.annotate("random ranking", (0.01, sum(chance) / len(chance) + 0.01),
                        xycoords=("axes fraction", "data"), fontsize=7, color="grey")  # fmt: skip
        layers = sorted(
            {layer for (_, c, _), pts in series.items() if c == corpus for layer, _ in pts}
        )
        ax.set_xticks(layers)
        ax.set_title(corpus)
        ax.set_xlabel("layer")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} ({population})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.03 * ((len(labels) + 1) // 2), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def method_plot_png(
    rows: Sequence[dict[str, Any]],
    path: Path,
    metric: str = HEADLINE_METRIC,
    population: str = "all",
) -> Path:
    """Bars of ``metric`` per method at the last layer, grouped by model, one panel per data set.

    Rows may carry ``low`` and ``high`` (a confidence interval), drawn as error bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    last: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["run"], row["method"])
        last[key] = max(last.get(key, 0), int(row["layer"]))
    picked = [
        row
        for row in rows
        if row["population"] == population
        and row.get(metric) is not None
        and int(row["layer"]) == last[(row["run"], row["method"])]
    ]
    corpora = sorted({f"{r['corpus']}/{r['split']}" for r in picked}) or ["(no rows)"]
    models = list(dict.fromkeys(r["model"] for r in picked))
    methods = [m for m in METHOD_NAMES if any(r["method"] == m for r in picked)]
    methods += sorted({r["method"] for r in picked} - set(methods))
    fig, axes = plt.subplots(
        1, len(corpora), figsize=(6 * len(corpora), 4), sharey=True, squeeze=False
    )
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(methods))
    for ax, corpus in zip(axes[0], corpora, strict=True):
        for i, model in enumerate(models):
            values, lows, highs = [], [], []
            for method in methods:
                row = next(
                    (
                        r
                        for r in picked
                        if r["model"] == model
                        and r["method"] == method
                        and f"{r['corpus']}/{r['split']}" == corpus
                    ),
                    None,
                )
                value = float(row[metric]) if row else np.nan
                values.append(value)
                lows.append(value - float(row.get("low", value)) if row else 0.0)
                highs.append(float(row.get("high", value)) - value if row else 0.0)
            ax.bar(x + i * width - 0.4 + width / 2, values, width, label=model)
            ax.errorbar(
                x + i * width - 0.4 + width / 2,
                values,
                yerr=[lows, highs],
                fmt="none",
                ecolor="black",
                capsize=2,
                linewidth=0.8,
            )
        ax.set_xticks(x, [m.replace("_", "\n") for m in methods], fontsize=7)
        ax.set_title(corpus)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} ({population}), 95 % CI")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def checkpoint_plot_png(points: Sequence[Any], path: Path) -> Path:
    """Accuracy against top-3 match on one data set, a point per checkpoint with both 95 %
    intervals; a fine-tuned model's epochs joined in order and numbered.

    ``points`` carry ``name``, ``epoch`` (None: not fine-tuned), ``accuracy`` and ``top3``
    (``engine.metrics.Estimate``): ``engine.results.CheckpointFigures``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys(p.name for p in points))
    for i, name in enumerate(names):
        mine = sorted((p for p in points if p.name == name), key=lambda p: p.epoch or 0)
        xs, ys = [p.accuracy.mean for p in mine], [p.top3.mean for p in mine]
        ax.errorbar(
            xs, ys,
            xerr=[[p.accuracy.mean - p.accuracy.low for p in mine],
                  [p.accuracy.high - p.accuracy.mean for p in mine]],
            yerr=[[p.top3.mean - p.top3.low for p in mine], [p.top3.high - p.top3.mean for p in mine]],
            color=cycle[i % len(cycle)], marker="o" if mine[0].epoch else "D",
            linestyle="-" if len(mine) > 1 else "none", capsize=2, label=inert(name),
        )  # fmt: skip
        for p in mine:
            if p.epoch:
                ax.annotate(str(p.epoch), (p.accuracy.mean, p.top3.mean), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("accuracy (deleted/test)")
    ax.set_ylabel(f"{HEADLINE_METRIC}, last-layer {HEADLINE_METHOD} (all scorable)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
