"""What the screens that export share: the file is written in a worker, and the screen says in
one line what was written or why not."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.message import Message


class ExportsRecords:
    """Mixin for a Screen: ``export_in_background(write, path, what)`` runs ``write`` (which
    returns the rows written) off the event loop and notifies the user of the outcome."""

    class Exported(Message):
        """The export worker finished: ``rows`` ``what`` written to ``path``, or ``error``."""

        def __init__(self, path: str, what: str, rows: int = 0, error: str = "") -> None:
            super().__init__()
            self.path, self.what, self.rows, self.error = path, what, rows, error

    @work(thread=True, exit_on_error=False, group="export")
    def export_in_background(self, write: Callable[[], int], path: str, what: str) -> None:
        try:
            rows = write()
        except Exception as error:
            self.post_message(self.Exported(path, what, error=str(error)))  # type: ignore[attr-defined]
            return
        self.post_message(self.Exported(path, what, rows=rows))  # type: ignore[attr-defined]

    def on_exports_records_exported(self, event: Exported) -> None:
        notify = self.notify  # type: ignore[attr-defined]
        if event.error:
            notify(f"export failed: {event.error}", severity="error", markup=False)
        else:
            notify(f"wrote {event.rows:,} {event.what} to {event.path}", markup=False)
