"""A minimal pair side by side: a sentence over its edited twin, aligned word by word, each word
on the colour scale of its own sentence's scores (the rationale marked `▸` and underlined)."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

from rich.console import Group
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from engine import highlight
from engine.text import inert
from tui.text import literal

GAP = "·"  # where one sentence has no word facing the other's


def align(first: Sequence[str], second: Sequence[str]) -> list[tuple[int | None, int | None]]:
    """Word indices facing each other: equal runs pair up, a replaced run pairs in order, and
    a word with nothing facing it gets None on the other side."""
    pairs: list[tuple[int | None, int | None]] = []
    matcher = SequenceMatcher(a=list(first), b=list(second), autojunk=False)
    for _, a0, a1, b0, b1 in matcher.get_opcodes():
        for offset in range(max(a1 - a0, b1 - b0)):
            a = a0 + offset if a0 + offset < a1 else None
            b = b0 + offset if b0 + offset < b1 else None
            pairs.append((a, b))
    return pairs


def word_cells(row: dict[str, Any]) -> list[Text]:
    """Each word of one sentence as ``highlight.sentence`` styles it (scale, rationale mark,
    top-k rank, length cut), cut at the spaces between words (a word never holds a space)."""
    words = row["words"]
    text = highlight.sentence(words, row["rationale"], row["scores"], row["seen_words"])
    return list(text.split(" "))[: len(words)]


def pair_lines(first: dict[str, Any], second: dict[str, Any], width: int) -> list[Text]:
    """The aligned columns wrapped to ``width``: line pairs (first sentence over second)."""
    top, bottom = word_cells(first), word_cells(second)
    lines: list[Text] = []
    upper, lower = Text(), Text()
    for a, b in align(first["words"], second["words"]):
        left = top[a] if a is not None else Text(GAP, style="dim")
        right = bottom[b] if b is not None else Text(GAP, style="dim")
        column = max(left.cell_len, right.cell_len)
        if upper.cell_len and upper.cell_len + 1 + column > width:
            lines += [upper, lower, Text("")]
            upper, lower = Text(), Text()
        if upper.cell_len:
            upper.append(" ")
            lower.append(" ")
        upper.append_text(left)
        upper.append(" " * (column - left.cell_len))
        lower.append_text(right)
        lower.append(" " * (column - right.cell_len))
    return [*lines, upper, lower]


class PairView(Static):
    """The two sentences with their predictions, then the aligned words."""

    DEFAULT_CSS = """
    PairView { height: auto; padding: 0 1; }
    """

    rows: reactive[list[dict[str, Any]] | None] = reactive(None, layout=True)
    """``pair_rows`` of the example (original first), or None while loading."""

    def render(self) -> Group | Text:
        rows = self.rows
        if rows is None:
            return Text("loading…", style="dim")
        if len(rows) < 2:
            found = inert(rows[0]["id"]) if rows else "the example"
            return Text(
                f"{found} has no minimal-pair twin in this corpus (ingest with --pairs "
                "to add each sentence's edited twin)",
                style="dim",
            )
        parts: list[Text] = []
        for row in rows:
            head = literal(row["id"], "bold")
            if row["pred"] is None:
                head.append("  not evaluated by this run", style="dim")
            else:
                gold = "needs edit" if row["label"] else "ok"
                pred = "needs edit" if row["pred"] else "ok"
                right = "right" if row["pred"] == row["label"] else "WRONG"
                head.append(f"  gold {gold} · predicted {pred} p(edit)={row['prob']:.3f} {right}")
            parts.append(head)
        parts.append(Text(""))
        width = max(20, self.size.width - 2 if self.size.width else 76)
        parts += pair_lines(rows[0], rows[1], width)
        return Group(*parts)
