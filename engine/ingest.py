"""Ingest a corpus file into the store: read, assign splits, write in chunks, in one transaction."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import pyarrow as pa

from engine.aesw import read_aesw
from engine.corpus import EDIT_KINDS, EDITED_SUFFIX, SPLITS, Example, assign_split, pair_key
from engine.errors import EditlensError
from engine.released import Skipped, kind_from_name, read_released
from engine.sources import check_readable, open_source
from engine.store import Store, examples_to_arrow
from engine.text import has_control

FORMATS = ("aesw", "rationales")
RELEASED_KINDS = tuple(kind for kind in EDIT_KINDS if kind != "none")  # released rows need edits
CHUNK = 10_000

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass
class IngestSummary:
    """What one ingest wrote and what it had to leave out, with reasons."""

    corpus: str
    path: Path
    rows: int = 0
    needs_edit: int = 0
    pairs: int = 0
    control: int = 0  # sentences holding control characters (displayed inert, stored as read)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_split: Counter[str] = field(default_factory=Counter)
    skipped: Skipped = field(default_factory=Skipped)
    replaced: int = 0  # ids the corpus held already
    changed: int = 0  # of those, how many now read differently
    runs: tuple[str, ...] = ()  # runs scored on changed sentences: marked stale, or removed
    version: int = 0  # the corpus' content version after this ingest
    seconds: float = 0.0


def detect_format(path: Path) -> str:
    """aesw for ``.xml``, rationales for ``.jsonl`` (either may be gzipped)."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".xml"):
        return "aesw"
    if name.endswith(".jsonl") or name.endswith(".json"):
        return "rationales"
    raise EditlensError(
        f"{path}: cannot tell the format from the name; pass --format aesw|rationales"
    )


def default_corpus_name(path: Path) -> str:
    return path.name.split(".")[0]


def ingest(
    store: Store,
    path: Path,
    *,
    fmt: str | None = None,
    corpus: str | None = None,
    pairs: bool = False,
    split: str | None = None,
    kind: str | None = None,
    on_progress: Progress | None = None,
    replace_scored: str = "refuse",
) -> IngestSummary:
    """Read ``path`` and write its examples to ``store`` as corpus ``corpus``: all or nothing.

    Sentences that runs were scored on are changed only as ``replace_scored`` says: "refuse"
    (the whole ingest), "stale" (the runs stay, marked stale) or "remove" (the runs go)."""
    check_readable(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise EditlensError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if split is not None and split not in SPLITS:
        raise EditlensError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if kind is not None and kind not in RELEASED_KINDS:
        raise EditlensError(f"unknown kind {kind!r}; use one of {', '.join(RELEASED_KINDS)}")
    if kind is not None and fmt == "aesw":
        raise EditlensError("--kind is for rationale files; AESW XML says each sentence's kind")
    summary = IngestSummary(corpus=corpus or default_corpus_name(path), path=path)
    started = time.perf_counter()
    with open_source(path) as source:
        if fmt == "aesw":
            examples: Iterable[Example] = read_aesw(source, pairs=pairs)
        else:
            kind = kind or kind_from_name(path.name)
            if kind is None:
                raise EditlensError(
                    f"{path}: cannot tell the edit kind from the name; pass --kind deleted|spelling"
                )
            examples = read_released(source, kind, summary.skipped, pairs=pairs)

        def chunks() -> Iterator[pa.Table]:
            iterator = iter(examples)
            while chunk := list(islice(iterator, CHUNK)):
                placed = [_place(example, split) for example in chunk]
                _count(summary, placed)
                if on_progress:
                    on_progress(source.consumed, source.size)
                yield examples_to_arrow(summary.corpus, placed)

        done = store.ingest_examples(summary.corpus, chunks(), scored=replace_scored)
    summary.replaced, summary.changed, summary.runs = done.replaced, done.changed, done.runs
    summary.version = done.version
    summary.seconds = time.perf_counter() - started
    return summary


def _place(example: Example, split: str | None) -> Example:
    """Both members of a minimal pair share a split: the hash is of the original sentence's id."""
    return dataclasses.replace(example, split=split or assign_split(pair_key(example.id)))


def _count(summary: IngestSummary, examples: list[Example]) -> None:
    for example in examples:
        summary.rows += 1
        summary.needs_edit += example.label
        twin = example.id.endswith(EDITED_SUFFIX)
        summary.pairs += twin
        summary.control += not twin and has_control(example.text)
        summary.by_kind[example.kind] += 1
        summary.by_split[example.split] += 1
