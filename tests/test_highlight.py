"""engine.highlight: which words carry the rationale marker, the underline, bold top-k and the
dimmed tail, checked on a known sentence, and that the marks survive a NO_COLOR terminal."""

from __future__ import annotations

import io

from rich.console import Console

from engine.highlight import MARK, legend, sentence

WORDS = ["the", "results", "is", "significant", "."]


def styles_of(text, word: str):
    """The style of ``word``'s span in the rendered text (spans keep each word's own style)."""
    start = text.plain.index(word)
    return next(s.style for s in text.spans if s.start == start and s.end == start + len(word))


def test_rationale_words_are_marked_and_underlined_and_top_k_is_bold() -> None:
    text = sentence(WORDS, [2], [0.1, 0.2, 0.9, 0.3, 0.0])
    assert text.plain == f"the results {MARK}is¹ significant ."  # top-k carry their rank
    assert text.plain.count(MARK) == 1
    assert styles_of(text, "is").underline and styles_of(text, "is").bold  # gold and top-1
    assert not styles_of(text, "results").underline
    assert not styles_of(text, "significant").bold


def test_top_k_words_carry_their_rank_and_colour_can_be_dropped() -> None:
    text = sentence(WORDS, [1, 3], [0.1, 0.2, 0.9, 0.3, 0.0], colour=False)
    assert text.plain == f"the {MARK}results is¹ {MARK}significant² ."  # k = 2: is, significant
    assert not any(span.style.bgcolor for span in text.spans)


def test_words_past_the_length_cut_are_dimmed_and_counted() -> None:
    text = sentence(WORDS, [1, 3], [0.5, 0.1], seen=2)
    assert text.plain.count(MARK) == 2
    assert text.plain.endswith("(model saw 2 of 5 words)")
    assert styles_of(text, "significant").dim and styles_of(text, "significant").underline
    assert not styles_of(text, "results").dim


def test_without_scores_only_the_rationale_is_marked() -> None:
    text = sentence(WORDS, [0], None)
    assert text.plain == f"{MARK}the results is significant ."
    assert not any(span.style.bgcolor for span in text.spans)


def test_no_color_output_keeps_the_marker_and_the_underline() -> None:
    out = io.StringIO()
    console = Console(file=out, no_color=True, force_terminal=True, width=80)
    console.print(sentence(WORDS, [2], [0.1, 0.2, 0.9, 0.3, 0.0]))
    console.print(legend(0.0, 0.9))
    printed = out.getvalue()
    assert "\x1b[38;" not in printed and "\x1b[48;" not in printed  # no colour codes at all
    assert f"{MARK}" in printed and "\x1b[4" in printed  # the marker, and an underline (SGR 4)
    assert "░░▒▒" in printed  # the legend's scale as glyphs
    assert "human rationale" in printed
