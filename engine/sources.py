"""Opening the files users point us at: plain or gzip, with progress in bytes of the file on disk."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from engine.errors import EditlensError


class _CountingReader(io.RawIOBase):
    """Counts the bytes taken from the file on disk, so gzip input still reports true progress."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.consumed += len(data)
        return len(data)


class Source:
    """A readable byte stream plus how far into the file on disk we are."""

    def __init__(self, path: Path, stream: BinaryIO, counter: _CountingReader) -> None:
        self.path = path
        self.stream = stream
        self.size = path.stat().st_size
        self._counter = counter

    @property
    def consumed(self) -> int:
        return self._counter.consumed


def check_readable(path: Path) -> None:
    """Refuse, in one line, a path that is not there or is a folder (before guessing formats)."""
    if not path.exists():
        raise EditlensError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise EditlensError(f"{path}: is a directory; point at a corpus file inside it")


@contextmanager
def open_source(path: Path) -> Iterator[Source]:
    """Open a corpus file (``.gz`` decompressed on the fly) or fail with a one-line reason."""
    check_readable(path)
    with path.open("rb") as raw:
        counter = _CountingReader(raw)
        buffered = io.BufferedReader(counter, buffer_size=1 << 16)
        is_gzip = path.suffix == ".gz" or buffered.peek(2)[:2] == b"\x1f\x8b"
        stream: BinaryIO = gzip.GzipFile(fileobj=buffered) if is_gzip else buffered  # type: ignore[assignment]
        try:
            yield Source(path, stream, counter)
        except (OSError, EOFError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise EditlensError(
                f"{path}: cannot be read ({error}); check the file is complete"
            ) from None
