"""Widgets of the example screen: the scored sentence, the head grid, the runs side by side."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from engine import highlight
from engine.text import inert


def _tick(value: bool | None) -> str:
    return "–" if value is None else ("✓" if value else "✗")


class ScoredSentence(Static):
    """One sentence coloured by one method/layer's word scores, with the legend under it."""

    DEFAULT_CSS = """
    ScoredSentence { height: auto; padding: 0 1; }
    """

    # layout=True: a new sentence or score row changes the widget's height (word lengths and
    # rank marks wrap differently), so the screen must lay it out again.
    detail: reactive[dict[str, Any] | None] = reactive(None, layout=True)
    """The example under the current run, as ``Store.example_detail`` returns it."""
    scores: reactive[dict[str, Any] | None] = reactive(None, layout=True)
    """The row of the detail's scores table being shown (method, layer, scores, outcomes)."""

    def render(self) -> Group | Text:
        detail, row = self.detail, self.scores
        if detail is None:
            return Text("loading…", style="dim")
        values = row["scores"] if row else None
        body = highlight.sentence(
            detail["words"],
            detail["rationale"],
            values,
            detail["seen_words"],
            colour=not self.app.no_color,
        )
        low = min(values) if values else None
        high = max(values) if values else None
        return Group(body, Text(""), highlight.legend(low, high))


class HeadGrid(Static):
    """The layer x head grid: share of each head's [CLS] attention on the rationale words."""

    DEFAULT_CSS = """
    HeadGrid { height: auto; width: auto; padding: 0 1; }
    """

    grid: reactive[tuple[list[float], int, int, int] | None] = reactive(None, layout=True)
    """(grid values row-major, layers, heads, highlighted layer) or None when absent."""

    def render(self) -> Text:
        if not self.grid or not self.grid[0]:
            return Text("no per-head attention stored for this example", style="dim")
        values, layers, heads, current = self.grid
        levels = highlight.normalise(values)
        text = Text("[CLS]→rationale share by head", style="bold")
        text.append(f"  (max {max(values):.2f})\n", style="dim")
        text.append("    " + "".join(f"{h + 1:>3}" for h in range(heads)) + "\n", style="dim")
        for layer in range(layers):
            label = f"{'▶' if layer + 1 == current else ' '}L{layer + 1:<2}"
            text.append(label, style="bold" if layer + 1 == current else "dim")
            for head in range(heads):
                level = levels[layer * heads + head]
                index = highlight.step(level)
                text.append(" ")
                text.append(
                    highlight.shade(level) * 2,
                    style=Style(color=highlight.STEPS[index] or None),
                )
            text.append("\n")
        return text


class RunComparison(Static):
    """The same sentence under every run: prediction, probability, agreement and word scores."""

    DEFAULT_CSS = """
    RunComparison { height: auto; padding: 0 1; }
    """

    rows: reactive[tuple[list[dict[str, Any]], dict[str, Any]] | None] = reactive(None, layout=True)
    """(``Store.example_across_runs`` rows, the example's detail) or None while loading."""

    def render(self) -> Group | Text:
        if self.rows is None:
            return Text("loading…", style="dim")
        runs, detail = self.rows
        parts: list[Text] = []
        for run in runs:
            pred = "needs edit" if run["pred"] else "ok"
            right = run["pred"] == detail["label"]
            head = Text(inert(run["model"]), style="bold")
            head.append(f"  {inert(run['run'])}  ", style="dim")
            head.append(f"pred {pred} p={run['prob']:.2f} {'right' if right else 'WRONG'}")
            if run["top3"] is not None:
                head.append(
                    f"  top3 {_tick(run['top3'])} hit1 {_tick(run['hit1'])}"
                    f" exact {_tick(run['exact'])}"
                )
            parts.append(head)
            parts.append(
                highlight.sentence(
                    detail["words"],
                    detail["rationale"],
                    run["scores"],
                    run["seen_words"],
                    colour=not self.app.no_color,
                )
                if run["scores"] is not None
                else Text("(no scores for this method/layer)", style="dim")
            )
        if not parts:
            return Text("no other runs of this corpus", style="dim")
        return Group(*parts)
