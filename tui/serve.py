"""The TUI in a browser through textual-serve (``editlens serve``), on localhost by default."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def tui_command(db: Path, write_root: Path) -> str:
    """The shell command each browser tab runs: this interpreter's ``engine.cli tui``, so it
    works with the virtual environment not activated (``editlens`` need not be on PATH), told
    to write files only inside ``write_root`` (see tui.write_root)."""
    args = [sys.executable, "-m", "engine.cli", "tui"]
    args += ["--write-root", str(Path(write_root).resolve()), "--db", str(Path(db).resolve())]
    return shlex.join(args)


def serve(db: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``editlens tui --db DB`` over HTTP; each browser tab gets its own TUI process,
    which writes files only inside the folder the server started in."""
    from textual_serve.server import Server

    command = tui_command(db, write_root=Path.cwd())
    Server(command, host=host, port=port, title="editlens").serve()
