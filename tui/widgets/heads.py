"""The layer x head grid with a cursor on one head, and that head's [CLS] attention over words."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from engine import highlight


class HeadPicker(Static):
    """Each cell: the share of a head's [CLS] attention on the rationale; the cursor's cell is
    drawn in reverse video and named under the grid, so it reads without colour."""

    DEFAULT_CSS = """
    HeadPicker { height: auto; width: auto; padding: 0 1; }
    """

    grid: reactive[tuple[list[float], int, int] | None] = reactive(None)
    """(values row-major, layers, heads), or None while loading."""
    cursor: reactive[tuple[int, int]] = reactive((1, 1))
    """(layer, head) selected, both from 1."""

    def render(self) -> Text:
        if self.grid is None:
            return Text("loading…", style="dim")
        values, layers, heads = self.grid
        if not values:
            return Text("no per-head attention stored for this example", style="dim")
        levels = highlight.normalise(values)
        at_layer, at_head = self.cursor
        text = Text("    " + "".join(f"{h + 1:>3}" for h in range(heads)) + "\n", style="dim")
        for layer in range(1, layers + 1):
            text.append(f"{'▶' if layer == at_layer else ' '}L{layer:<2}", style="bold")
            for head in range(1, heads + 1):
                level = levels[(layer - 1) * heads + head - 1]
                style = Style(color=highlight.STEPS[highlight.step(level)] or None)
                if (layer, head) == (at_layer, at_head):
                    style += Style(reverse=True, bold=True)
                text.append(" ")
                text.append(highlight.shade(level) * 2, style=style)
            text.append("\n")
        share = values[(at_layer - 1) * heads + at_head - 1]
        text.append(f"L{at_layer} H{at_head}", style="bold")
        text.append(f": {share:.3f} of its [CLS] attention on the rationale")
        return text


class HeadSentence(Static):
    """The sentence coloured by one head's [CLS] row, or why that row is not stored."""

    DEFAULT_CSS = """
    HeadSentence { height: auto; padding: 0 1; }
    """

    view: reactive[tuple[dict[str, Any], int, int] | None] = reactive(None)
    """(``head_rows`` of the example, layer, head), or None while loading."""

    def render(self) -> Group | Text:
        if self.view is None:
            return Text("loading…", style="dim")
        detail, layer, head = self.view
        words, seen = detail["words"], detail["seen_words"]
        last = detail["last"] or []
        if len(last) != detail["heads"] * seen:
            return Text("no per-word head attention stored for this example", style="dim")
        if layer != detail["layers"]:
            return Text(
                f"Per-word attention is stored for the last layer (L{detail['layers']}) only; "
                f"for L{layer} the grid's share on the rationale is what the store keeps. "
                "Move to the last row to see a head's words.",
                style="dim",
            )
        row = last[(head - 1) * seen : head * seen]
        body = highlight.sentence(words, detail["rationale"], row, seen)
        title = Text(f"L{layer} H{head}: [CLS] attention over the words", style="bold")
        return Group(title, body, Text(""), highlight.legend(min(row), max(row)))
