"""What every screen that reads the store shares: a failed read is a notification, not an exit.

Workers run with ``exit_on_error=False``; Textual then tells only the worker's screen (its
``Worker.StateChanged`` does not bubble), so each such screen takes this mixin.
"""

from __future__ import annotations

from textual.app import App
from textual.worker import Worker, WorkerState

from engine.store import StoreError


def report_failure(app: App, event: Worker.StateChanged) -> None:
    """Show a failed worker's error in one line (a store error as it is worded)."""
    error = event.worker.error
    if event.state != WorkerState.ERROR or error is None:
        return
    message = str(error) if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
    app.notify(message, severity="error", timeout=10, markup=False)


class ReportsFailures:
    """Mixin for a Screen whose workers read the store."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_failure(self.app, event)  # type: ignore[attr-defined]
