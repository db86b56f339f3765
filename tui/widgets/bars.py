"""Horizontal bars with confidence bands, one selectable line per bar (the charts screen).

Drawn with block glyphs so a plain capture reads like the coloured one: `█` up to the interval's
low end, `▓` from there to the mean, `░` from the mean to the interval's high end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from engine.figures import Bar
from engine.text import inert
from tui.text import literal

LABEL = 7  # width of a bar's label column
LEGEND = "█ to the 95% CI's low end · ▓ to the mean · ░ to its high end"


def bar_glyphs(mean: float, low: float, high: float, width: int) -> str:
    """A bar for a share in 0..1 over ``width`` cells; NaN bounds draw the mean alone."""
    if math.isnan(low) or math.isnan(high):
        low = high = mean

    def cells(value: float) -> int:
        return max(0, min(width, round(value * width)))

    solid, middle, upper = cells(low), cells(mean), cells(high)
    middle = max(middle, solid)
    upper = max(upper, middle)
    return ("█" * solid + "▓" * (middle - solid) + "░" * (upper - middle)).ljust(width)


def bar_line(bar: Bar, width: int) -> Text:
    """`L3  ███▓▓░      0.36 (0.32–0.41) N=473`."""
    est = bar.estimate
    text = Text(inert(bar.label[:LABEL]).ljust(LABEL), style="bold")
    if est.n == 0 or math.isnan(est.mean):
        text.append("no scorable examples", style="dim")
        return text
    text.append(bar_glyphs(est.mean, est.low, est.high, width))
    text.append(f" {est.mean:.2f}")
    if math.isnan(est.low):
        text.append(" (no CI: N too large)", style="dim")
    else:
        text.append(f" ({est.low:.2f}–{est.high:.2f})", style="dim")
    text.append(f" N={est.n:,}", style="dim")
    return text


class BarList(OptionList):
    """Bars under their headings; each bar is an option whose id is its index in ``bars``."""

    DEFAULT_CSS = """
    BarList { height: 1fr; }
    """

    def show(self, bars: Sequence[Bar], width: int = 30) -> None:
        """Replace the bars, keeping the highlighted line where it was."""
        highlighted = self.highlighted
        options: list[Option] = []
        heading = None
        for index, bar in enumerate(bars):
            if bar.heading != heading:
                heading = bar.heading
                options.append(Option(literal(heading, "bold underline"), disabled=True))
            options.append(Option(bar_line(bar, width), id=str(index)))
        self.set_options(options)
        enabled = [i for i, option in enumerate(options) if not option.disabled]
        if enabled:
            self.highlighted = highlighted if highlighted in enabled else enabled[0]
