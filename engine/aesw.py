"""Streaming reader for the AESW 2016 XML format (``<sentence>`` with ``<del>``/``<ins>``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

from engine.corpus import (
    EDITED_SUFFIX,
    Example,
    tokenize_words,
    unedited,
    words_around,
    words_touching,
)
from engine.errors import InputError
from engine.sources import Source, open_source

_FIX = "expected AESW 2016 XML: <sentence sid=...> elements holding <del>/<ins> markup"
_FIX_TOKEN = "save the file as UTF-8 (or declare its encoding) and escape & and < in text"
_INVALID_TOKEN = expat.errors.codes[expat.errors.XML_ERROR_INVALID_TOKEN]
_EDITS = ("del", "ins")
_SENTENCE_START = re.compile(rb"<sentence[\s>/]")


@dataclass
class _Markup:
    """A sentence's text before editing, where the editor deleted and where they inserted."""

    text: str = ""
    after: str = ""  # the sentence as the editor left it
    deleted: list[tuple[int, int]] = field(default_factory=list)  # spans in text
    deleted_words: list[str] = field(default_factory=list)
    inserted: list[tuple[int, str]] = field(default_factory=list)  # (point in text, new text)

    def keep(self, chunk: str | None) -> None:
        self.text += chunk or ""
        self.after += chunk or ""

    def delete(self, chunk: str) -> None:
        if chunk:
            self.deleted.append((len(self.text), len(self.text) + len(chunk)))
            self.deleted_words.append(chunk)
            self.text += chunk

    def insert(self, chunk: str) -> None:
        if chunk:
            self.inserted.append((len(self.text), chunk))
            self.after += chunk


def read_aesw(source: Source, *, pairs: bool = False) -> Iterator[Example]:
    """Yield one Example per ``<sentence>`` in constant memory (elements are dropped once read).

    Liberal in what files look like: ``<sentence>`` elements are read under any root and any
    wrappers (AESW releases differ in theirs); only a file with no ``<sentence>`` is refused.
    With ``pairs``, each edited sentence is followed by its text after editing, labelled "no
    edit": a minimal pair, as the study built from its released deletions.
    """
    wrappers: list[ET.Element] = []  # open elements around the current position
    depth = 0  # how deep inside a <sentence> we are (0: outside any)
    index = 0
    try:
        for event, element in ET.iterparse(source.stream, events=("start", "end")):
            if event == "start":
                if depth:
                    if element.tag == "sentence":
                        raise _problem(source, index + 1, None, "has a <sentence> inside it")
                    depth += 1
                elif element.tag == "sentence":
                    depth = 1
                else:
                    wrappers.append(element)
                continue
            if depth:
                depth -= 1
                if depth:
                    continue
                index += 1
                example, after = _example(source, element, index)
                yield example
                if pairs and example.label:
                    yield unedited(example.id + EDITED_SUFFIX, after)
            else:
                wrappers.pop()
            if wrappers:  # read: drop it, so memory stays constant
                wrappers[-1].remove(element)
    except ET.ParseError as error:
        line, column = error.position
        problem = f"not well-formed XML ({str(error).split(':')[0]}, column {column})"
        # expat reports bytes that are not UTF-8 as an "invalid token": say what usually fixes it.
        fix = _FIX_TOKEN if error.code == _INVALID_TOKEN else _FIX
        raise InputError(source.path, f"line {line}", problem, fix) from None
    if not index:
        raise InputError(source.path, None, "holds no <sentence> element", _FIX)


def _example(source: Source, element: ET.Element, index: int) -> tuple[Example, str]:
    """The sentence before editing, with its rationale, and its text after editing."""
    sid = element.get("sid")
    if not sid:
        raise _problem(source, index, None, "has no sid attribute")
    markup = _Markup()
    markup.keep(element.text)
    for child in element:
        nested = next((d for d in child.iter() if d is not child and d.tag in _EDITS), None)
        if nested is not None:
            problem = f"has <{nested.tag}> inside <{child.tag}>, which AESW markup never nests"
            raise _problem(source, index, sid, problem)
        chunk = "".join(child.itertext())
        if child.tag == "del":
            markup.delete(chunk)
        elif child.tag == "ins":
            markup.insert(chunk)
        else:
            markup.keep(chunk)
        markup.keep(child.tail)
    words, starts, ends = tokenize_words(markup.text)
    kind = _edit_kind(markup)
    rationale = words_touching(starts, ends, markup.deleted)
    edges = {edge for span in markup.deleted for edge in span}
    for point, _ in markup.inserted:
        if point not in edges:  # an insertion beside a deletion is a replacement: already counted
            rationale |= words_around(starts, ends, point)
    example = Example(
        id=sid,
        text=markup.text,
        words=tuple(words),
        starts=tuple(starts),
        ends=tuple(ends),
        label=kind != "none",
        rationale=tuple(sorted(rationale)),
        kind=kind,
    )
    return example, markup.after


def _problem(source: Source, index: int, sid: str | None, problem: str) -> InputError:
    """An error naming the sentence's line, found by reading the file again (errors only: the
    streaming parser does not say where an element starts)."""
    line = _line_of(source.path, index)
    where = (f"line {line} " if line else "") + (
        f"(sentence {sid})" if sid else f"(sentence #{index})"
    )
    return InputError(source.path, where, problem, _FIX)


def _line_of(path: Path, index: int) -> int | None:
    """The line on which the ``index``-th ``<sentence`` starts (1-based), if it can be found."""
    seen = 0
    with open_source(path) as again:
        for number, line in enumerate(again.stream, start=1):
            seen += len(_SENTENCE_START.findall(line))
            if seen >= index:
                return number
    return None


def _edit_kind(markup: _Markup) -> str:
    if not markup.deleted and not markup.inserted:
        return "none"
    if not markup.inserted:
        return "deleted"
    if not markup.deleted:
        return "inserted"
    if len(markup.deleted) == 1 and len(markup.inserted) == 1:
        (start, end), (point, new) = markup.deleted[0], markup.inserted[0]
        if point in (start, end) and is_spelling_variant(markup.deleted_words[0], new):
            return "spelling"
    return "mixed"


def is_spelling_variant(old: str, new: str) -> bool:
    """One word replaced by its spelling or hyphenation correction (as the study's spelling set)."""
    old, new = old.strip(), new.strip()
    if not old or not new or old == new or any(c.isspace() for c in old + new):
        return False
    if old.replace("-", "").lower() == new.replace("-", "").lower():
        return True
    allowed = max(1, min(2, len(new) // 4))
    return _edit_distance(old.lower(), new.lower()) <= allowed


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transposition counted as one edit (optimal string alignment)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]
