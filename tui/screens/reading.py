"""The base of the analysis screens: store reads run in workers, and a failed read is shown."""

from __future__ import annotations

from textual.screen import Screen, ScreenResultType
from textual.worker import Worker, WorkerState


class ReadingScreen(Screen[ScreenResultType]):
    """A screen whose workers (``@work(thread=True, exclusive=True, exit_on_error=False)``) may
    fail: the failure becomes a notification naming what went wrong, never an app exit."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(
                f"could not read the store: {error}", severity="error", timeout=10, markup=False
            )
