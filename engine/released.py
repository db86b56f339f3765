"""Reader for the study authors' released rationale JSONL (``id, sent, words, best_words``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.corpus import EDIT_KINDS, EDITED_SUFFIX, Example, locate_words
from engine.errors import InputError
from engine.sources import Source

FIELDS = ("id", "sent", "words", "best_words")
_SPACE = re.compile(r"\s")
_FIX = "each line must be a JSON object with id, sent, words, best_words (see the study's release)"


@dataclass
class Skipped:
    """Rows that could not be used, by reason, so nothing disappears silently."""

    reasons: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, row_id: str) -> None:
        self.reasons.setdefault(reason, []).append(row_id)

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.reasons.values())


def kind_from_name(name: str) -> str | None:
    """The edit kind a released file holds, from its name (``deleted.jsonl.gz`` -> deleted)."""
    stem = name.split(".")[0]
    return stem if stem in EDIT_KINDS else None


def read_released(
    source: Source, kind: str, skipped: Skipped, *, pairs: bool = False
) -> Iterator[Example]:
    """Yield the released rows as Examples; with ``pairs``, each deleted row's edited twin too."""
    rows = 0
    for line_number, raw in enumerate(source.stream, start=1):
        line = _decode(source, line_number, raw)
        if not line.strip():
            continue
        rows += 1
        row = _parse(source, line_number, line)
        example = _example(source, line_number, row, kind)
        if not example.rationale:
            skipped.add("empty rationale (nothing but whitespace was edited)", example.id)
            continue
        yield example
        if pairs and kind == "deleted":
            yield edited_counterpart(example)
    if not rows:
        raise InputError(source.path, None, "holds no rows", _FIX)


def _decode(source: Source, line_number: int, raw: bytes) -> str:
    """Decode line by line: a text wrapper decodes 8 KB blocks, so its error names the wrong line."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        where = f"line {line_number}"
        raise InputError(
            source.path, where, "is not UTF-8 text", "save the file as UTF-8"
        ) from None


def _parse(source: Source, line_number: int, line: str) -> dict:
    where = f"line {line_number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(source.path, where, f"is not JSON ({error.msg})", _FIX) from None
    if not isinstance(row, dict):
        raise InputError(source.path, where, "is not a JSON object", _FIX)
    missing = [name for name in FIELDS if name not in row]
    if missing:
        if "id" in row:  # name the row too: ids are how users find a line in a big file
            where += f" (id {row['id']})"
        raise InputError(source.path, where, f"lacks field {', '.join(missing)}", _FIX)
    return row


def _example(source: Source, line_number: int, row: dict, kind: str) -> Example:
    row_id, sent, words, best = row["id"], row["sent"], row["words"], row["best_words"]
    # bool is an int to Python, and a float id would lose digits ("5.10" -> 5.1): both refused
    if isinstance(row_id, bool) or not isinstance(row_id, str | int) or row_id == "":
        problem = f"id is {json.dumps(row_id)[:40]}, not a string"
        raise InputError(source.path, f"line {line_number}", problem, _FIX)
    where = f"line {line_number} (id {row_id})"
    if not isinstance(sent, str):  # checked here: `locate_words` would fail with a traceback
        raise InputError(source.path, where, "sent is not a string", _FIX)
    if not isinstance(words, list) or len(words) < 3 or not isinstance(best, list):
        raise InputError(source.path, where, "words or best_words is malformed", _FIX)
    inner = words[1:-1]  # drop [CLS] and [SEP]
    if not all(isinstance(word, str) and word and not _SPACE.search(word) for word in inner):
        raise InputError(source.path, where, "words holds a non-string, empty or spaced word", _FIX)
    spans = locate_words(sent, inner)
    if spans is None:
        raise InputError(source.path, where, "a word of `words` is not found in `sent`", _FIX)
    if any(
        isinstance(i, bool) or not isinstance(i, int) or not 0 < i < len(words) - 1 for i in best
    ):
        raise InputError(
            source.path, where, "best_words must be indices of the sentence's words", _FIX
        )
    return Example(
        id=str(row_id),
        text=sent,
        words=tuple(inner),
        starts=tuple(spans[0]),
        ends=tuple(spans[1]),
        label=True,
        rationale=tuple(sorted({i - 1 for i in best})),
        kind=kind,
    )


def edited_counterpart(example: Example) -> Example:
    """The sentence after the editor's deletions: same content, needs no edit (a minimal pair)."""
    dropped = set(example.rationale)
    pieces, position = [], 0
    for index in sorted(dropped):
        pieces.append(example.text[position : example.starts[index]])
        position = example.ends[index]
    pieces.append(example.text[position:])
    text = re.sub(r" {2,}", " ", "".join(pieces)).strip()
    words = [word for index, word in enumerate(example.words) if index not in dropped]
    spans = locate_words(text, words)
    if spans is None:  # cannot happen for words without spaces, which _example ensures
        raise ValueError(f"example {example.id}: its words are not in its edited text")
    return Example(
        id=example.id + EDITED_SUFFIX,
        text=text,
        words=tuple(words),
        starts=tuple(spans[0]),
        ends=tuple(spans[1]),
        label=False,
        rationale=(),
        kind="none",
    )
