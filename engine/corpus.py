"""Examples, words and human rationales: what every reader produces and every model consumes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

EDIT_KINDS = ("deleted", "spelling", "inserted", "mixed", "none")
PLACEHOLDERS = ("_MATH_", "_MATHDISP_", "_CITE_", "_REF_")
SPLITS = ("train", "dev", "test")
EDITED_SUFFIX = "/edited"  # id of a sentence's after-editing twin in a minimal pair

# Abbreviations whose period belongs to the word (as in NLTK's tokens of the released set).
_ABBREVIATIONS = (
    "Eq|Eqs|Fig|Figs|Ref|Refs|Sec|Secs|Tab|Thm|Prop|Def|Lem|Ch|No|al|etc|vs|cf|resp|approx"
)
_WORD = re.compile(
    rf"""
      (?:[A-Za-z]\.){{2,}}                  # i.e.  e.g.  U.S.
    | (?:{_ABBREVIATIONS})\.(?=\s+\S)       # Eq. 3, et al. (but not a sentence's last period)
    | \d+(?:[.,:]\d+)+                      # 1.5  1,000  3:2
    | \w+(?:[-'’]\w+)*                      # words, _MATH_-th, full-order, L'Hospital
    | \S                                    # any other single character: punctuation, quotes
    """,
    re.VERBOSE,
)
_CLITIC = re.compile(r"(?i)(?<=\w)(n't|'s|'re|'ll|'ve|'d|'m)$")


@dataclass(frozen=True, slots=True)
class Example:
    """One sentence as the model reads it (text before editing) with its human rationale."""

    id: str
    text: str
    words: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    label: bool  # True: the sentence needs an edit
    rationale: tuple[int, ...]  # word indices the editor touched; empty when unscorable
    kind: str  # one of EDIT_KINDS
    split: str = "train"


def tokenize_words(text: str) -> tuple[list[str], list[int], list[int]]:
    """Split a sentence into words with character spans; placeholders stay single words."""
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in _WORD.finditer(text):
        word, start = match.group(), match.start()
        clitic = _CLITIC.search(word)
        pieces = [word] if clitic is None else [word[: clitic.start()], clitic.group()]
        for piece in pieces:
            words.append(piece)
            starts.append(start)
            ends.append(start + len(piece))
            start += len(piece)
    return words, starts, ends


def pair_key(example_id: str) -> str:
    """The minimal pair an example belongs to: its id without the edited twin's suffix."""
    return example_id.removesuffix(EDITED_SUFFIX)


def unedited(example_id: str, text: str) -> Example:
    """A sentence that needs no edit (the after-editing half of a minimal pair)."""
    words, starts, ends = tokenize_words(text)
    return Example(example_id, text, tuple(words), tuple(starts), tuple(ends), False, (), "none")


def locate_words(text: str, words: list[str]) -> tuple[list[int], list[int]] | None:
    """Character spans of words known to occur in order in text; None when one is missing."""
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for word in words:
        start = text.find(word, position)
        if start < 0:
            return None
        starts.append(start)
        ends.append(start + len(word))
        position = start + len(word)
    return starts, ends


def words_touching(starts: list[int], ends: list[int], spans: list[tuple[int, int]]) -> set[int]:
    """Indices of words that share at least one character with any of the spans."""
    return {
        index
        for index, (word_start, word_end) in enumerate(zip(starts, ends, strict=True))
        for start, end in spans
        if start < word_end and word_start < end
    }


def words_around(starts: list[int], ends: list[int], point: int) -> set[int]:
    """The word containing an insertion point, or else the nearest word on either side."""
    inside = {i for i, (s, e) in enumerate(zip(starts, ends, strict=True)) if s < point < e}
    if inside:
        return inside
    before = [i for i, end in enumerate(ends) if end <= point]
    after = [i for i, start in enumerate(starts) if start >= point]
    return set(before[-1:] + after[:1])


def assign_split(key: str, dev_share: float = 0.1, test_share: float = 0.1) -> str:
    """Deterministic train/dev/test by a hash of the id, stable across runs and machines."""
    bucket = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2**64
    if bucket < test_share:
        return "test"
    if bucket < test_share + dev_share:
        return "dev"
    return "train"
