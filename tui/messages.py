"""Messages shared by several screens (widget-specific ones are nested in their widgets)."""

from __future__ import annotations

from textual.message import Message


class OpenRun(Message):
    """Show the examples of a run (from the runs table or the command palette)."""

    def __init__(self, run: str, search: bool = False) -> None:
        super().__init__()
        self.run = run
        self.search = search
