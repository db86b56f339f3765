"""Corpus text on a terminal: control characters shown, never obeyed.

A sentence holding ``ESC [2J`` or ``ESC ] 0;title BEL`` would clear the screen or retitle the
terminal if printed as it is. ``inert`` swaps every C0 and C1 control character (and DEL) for a
visible stand-in of the same length, one character for one, so character offsets into the text
stay valid: C0 as its Unicode control picture (ESC shows as ␛, BEL as ␇), DEL as ␡, C1 (whose
0x9B is a one-byte CSI) as the replacement character. Tab, newline and carriage return become a
space: ordinary whitespace in real files, but they would break a one-line display.
"""

from __future__ import annotations

import re

_WHITESPACE = "\t\n\r"
_INERT = {code: 0x2400 + code for code in range(0x20)}  # the Control Pictures block
_INERT |= {ord(c): ord(" ") for c in _WHITESPACE}
_INERT[0x7F] = 0x2421  # ␡
_INERT |= {code: 0xFFFD for code in range(0x80, 0xA0)}
# What ingest counts: control characters other than ordinary whitespace.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def inert(text: str) -> str:
    """``text`` with every control character replaced by a visible one (same length)."""
    return text.translate(_INERT)


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character other than tab, newline or carriage return."""
    return _CONTROL.search(text) is not None
