"""User data (ids, sentences, run labels, model names, paths) on a screen: as rich ``Text``, so
``[b]`` or ``[link=x]`` in it is shown and never read as markup, with its control characters
made visible (``engine.text.inert``), so an ESC in a sentence never reaches the terminal."""

from __future__ import annotations

from rich.text import Text

from engine.text import inert


def literal(value: object, style: str = "") -> Text:
    """``value`` as text shown exactly as it is (control characters as visible stand-ins; a
    newline becomes a space, so append line breaks outside)."""
    return Text(inert(str(value)), style=style)
