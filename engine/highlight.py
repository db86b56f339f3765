"""The colour scale shared by word scores and the head grid, in pure rich (the CLI's `show`
and the TUI both draw with it); shapes carry it where there is no colour."""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Text

from engine.text import inert

# A sequential yellow-to-red scale (ColorBrewer YlOrRd); readable on light and dark themes, and
# degrades to the nearest of 256 colours. Step 0 is "no background".
STEPS = ("", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c")
TEXT_ON = ("", "black", "black", "black", "black", "white", "white")
SHADES = " ░▒▓█"  # the same scale as glyphs, for NO_COLOR terminals
MARK = "▸"  # precedes each human-rationale word (plus an underline)
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def rank_mark(rank: int) -> str:
    """`¹`, `²`, … `¹²`: follows each of the model's top-k words, so its choice reads in plain
    text (NO_COLOR, a copied capture) as well as the rationale marker does."""
    return str(rank).translate(SUPERSCRIPTS)


def normalise(values: Sequence[float]) -> list[float]:
    """Min-max to 0..1 within one sentence (or grid); a constant vector maps to 0."""
    if not values:
        return []
    low, high = min(values), max(values)
    span = high - low
    return [(v - low) / span if span > 0 else 0.0 for v in values]


def step(level: float) -> int:
    return min(len(STEPS) - 1, max(0, round(level * (len(STEPS) - 1))))


def cell_style(level: float) -> Style:
    index = step(level)
    if index == 0:
        return Style()
    return Style(bgcolor=STEPS[index], color=TEXT_ON[index])


def shade(level: float) -> str:
    return SHADES[min(len(SHADES) - 1, max(0, round(level * (len(SHADES) - 1))))]


def legend(low: float | None = None, high: float | None = None) -> Text:
    """`score low ░▒▓█ high` with the colour steps, and how the rationale is marked."""
    text = Text("score ")
    text.append(f"{low:.2g} " if low is not None else "low ", style="dim")
    for index in range(1, len(STEPS)):
        level = index / (len(STEPS) - 1)
        text.append(shade(level) * 2, style=Style(color=STEPS[index]))
    text.append(f" {high:.2g}" if high is not None else " high", style="dim")
    text.append("   ")
    text.append(f"{MARK}word", style="underline")
    text.append(" human rationale   ")
    text.append("word" + rank_mark(1), style="bold")
    text.append(" model's top-k, by rank")
    return text


def sentence(
    words: Sequence[str],
    rationale: Sequence[int],
    scores: Sequence[float] | None,
    seen: int | None = None,
    *,
    colour: bool = True,
) -> Text:
    """The sentence with each word's background on the scale, the rationale underlined and
    marked, the model's top-k words (k = rationale size, at least 1) in bold with their rank as
    a superscript, and words past the model's length cut dimmed.

    ``colour=False`` (NO_COLOR) drops the backgrounds: turned to grey, the yellow-to-red scale
    runs light to dark, which on a dark theme makes the top word the least visible."""
    gold = set(rationale)
    seen = len(words) if seen is None else seen
    levels = normalise(list(scores)) if scores else []
    k = max(1, len(gold))
    ranked = sorted(range(len(levels)), key=lambda i: -scores[i])[:k] if scores else []
    top = {index: rank for rank, index in enumerate(ranked, 1)}
    text = Text()
    for index, word in enumerate(words):
        if index:
            text.append(" ")
        style = cell_style(levels[index]) if colour and index < len(levels) else Style()
        if index >= seen:
            style += Style(dim=True, italic=True)
        if index in top:
            style += Style(bold=True)
        if index in gold:
            text.append(MARK, style=Style(bold=True))
            style += Style(underline=True)
        text.append(inert(word), style=style)  # corpus text: control characters shown, not sent
        if index in top:
            text.append(rank_mark(top[index]), style=Style(bold=True))
    if seen < len(words):
        text.append(f"  (model saw {seen} of {len(words)} words)", style="dim italic")
    return text
