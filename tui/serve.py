"""The TUI in a browser through textual-serve (``editlens serve``), on localhost by default."""

from __future__ import annotations

import shlex
from pathlib import Path


def serve(db: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``editlens tui --db DB`` over HTTP; each browser tab gets its own TUI process."""
    from textual_serve.server import Server

    command = f"editlens tui --db {shlex.quote(str(Path(db).resolve()))}"
    Server(command, host=host, port=port, title="editlens").serve()
