"""The TUI in a browser through textual-serve (``editlens serve``), on localhost by default."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def tui_command(db: Path) -> str:
    """The shell command each browser tab runs: this interpreter's ``engine.cli tui``, so it
    works with the virtual environment not activated (``editlens`` need not be on PATH)."""
    args = [sys.executable, "-m", "engine.cli", "tui", "--db", str(Path(db).resolve())]
    return shlex.join(args)


def serve(db: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``editlens tui --db DB`` over HTTP; each browser tab gets its own TUI process."""
    from textual_serve.server import Server

    Server(tui_command(db), host=host, port=port, title="editlens").serve()
