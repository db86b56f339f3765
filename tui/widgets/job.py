"""The running job's panel: on every screen, bound to the app's ``job`` reactive."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from tui.text import literal


@dataclass(frozen=True)
class JobState:
    """What the panel shows about the one running job."""

    title: str
    done: int = 0
    total: int = 0
    message: str = "starting…"
    started: float = field(default_factory=time.monotonic)

    def pace(self, now: float) -> str:
        """`12.3 ex/s · ETA 0:41` once some work is done, else empty."""
        elapsed = now - self.started
        if self.done <= 0 or elapsed <= 0:
            return ""
        rate = self.done / elapsed
        text = f"{rate:.1f}/s"
        if self.total > self.done:
            left = round((self.total - self.done) / rate)
            text += f" · ETA {left // 60}:{left % 60:02d}"
        return text


class JobPanel(Horizontal):
    """A running evaluation: what it is, a progress bar, its pace and its last message."""

    DEFAULT_CSS = """
    JobPanel { height: 1; display: none; padding: 0 1; background: $boost; }
    JobPanel.-active { display: block; }
    JobPanel Label { width: auto; margin-right: 1; }
    JobPanel ProgressBar { width: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="job-title")
        yield ProgressBar(show_eta=False, id="job-bar")
        yield Label("", id="job-message")

    def on_mount(self) -> None:
        self.watch(self.app, "job", self.show)

    def show(self, job: JobState | None) -> None:
        self.set_class(job is not None, "-active")
        if job is None:
            return
        self.query_one("#job-title", Label).update(literal(job.title))
        self.query_one("#job-bar", ProgressBar).update(total=job.total or None, progress=job.done)
        pace = job.pace(time.monotonic())
        message = f"{job.message} · {pace}" if pace and job.message else job.message or pace
        self.query_one("#job-message", Label).update(literal(f"{message}  (x cancels)"))
