"""Pinned examples, kept in a small JSON file beside the store (``<store>.pins.json``).

Pins belong to the user, not to any run, so they live outside the DuckDB file (which a reader
never writes) and survive new runs. Every change rewrites the file atomically (a temporary file
in the same folder, then a rename), so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from engine.errors import EditlensError

VERSION = 1
_LOCK = threading.Lock()  # one read-modify-write of a pins file at a time in this process


def pins_path(db: Path) -> Path:
    """Where the pins of the store ``db`` are kept."""
    return db.with_name(db.name + ".pins.json")


class Bookmarks:
    """Pinned example ids per corpus, read once and written through on every change."""

    def __init__(self, db: Path) -> None:
        self.path = pins_path(Path(db))
        self._pins: dict[str, list[str]] = self._read()

    def _read(self) -> dict[str, list[str]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            pins = data["pins"]
            return {str(corpus): [str(i) for i in ids] for corpus, ids in pins.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise EditlensError(
                f"{self.path}: not a pins file ({error}); move it away to start afresh"
            ) from None

    def pinned(self, corpus: str) -> list[str]:
        """The corpus' pinned ids, in the order they were pinned."""
        return list(self._pins.get(corpus, []))

    def is_pinned(self, corpus: str, example: str) -> bool:
        return example in self._pins.get(corpus, [])

    def toggle(self, corpus: str, example: str) -> bool:
        """Pin the example, or unpin it if it was pinned; returns whether it is pinned now.

        Reads the file again first, under a lock, so two quick toggles (two workers, or another
        TUI on the same store) both land."""
        with _LOCK:
            self._pins = self._read()
            ids = self._pins.setdefault(corpus, [])
            if example in ids:
                ids.remove(example)
            else:
                ids.append(example)
            if not ids:
                del self._pins[corpus]
            self._write()
            return example in ids

    def _write(self) -> None:
        text = json.dumps({"version": VERSION, "pins": self._pins}, indent=1, sort_keys=True)
        try:
            handle, temporary = tempfile.mkstemp(
                prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent
            )
        except OSError as error:
            raise EditlensError(f"{self.path}: cannot save the pins ({error})") from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text + "\n")
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
