"""The editlens TUI: routes between screens; the screens and widgets do the work."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from engine.store import StoreError
from tui.messages import OpenRun
from tui.screens.dialogs import HelpScreen, ProblemScreen, key_label
from tui.screens.examples import ExamplesScreen
from tui.screens.runs import RunsScreen
from tui.state import METRIC_LABELS, METRICS, StoreHandle

JobFactory = Callable[[dict[str, Any], Path], Any]


def engine_job(spec: dict[str, Any], db: Path) -> Any:
    """Start the engine's evaluation job in its own process (``engine.jobs``)."""
    from engine.jobs import Job, JobSpec

    return Job(JobSpec(**spec), db)


class EditlensApp(App[None]):
    """Browse an editlens store: runs → examples → one example."""

    TITLE = "editlens"
    BINDINGS = [  # noqa: RUF012
        Binding("f1,question_mark", "help", "Help"),
        Binding("ctrl+s", "save_svg", "Save SVG"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    metric: reactive[str] = reactive("top3")
    """What makes an example "interpretable": top3 (default), hit1, exact or jaccard50."""

    def __init__(
        self,
        db: Path,
        *,
        job_factory: JobFactory = engine_job,
        screenshot_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.db = Path(db)
        self.job_factory = job_factory
        self.screenshot_dir = screenshot_dir
        self.problem = ""
        self.handle: StoreHandle | None = None
        try:
            self.handle = StoreHandle(self.db)
            with self.handle.read() as store:
                if not store.corpora() and not store.runs():
                    self.problem = f"{self.db}: the store is empty."
        except StoreError as error:
            self.problem = str(error)
        self.sub_title = self.db.name

    def get_default_screen(self) -> Screen:
        if self.problem:
            return ProblemScreen(self.db, self.problem)
        return RunsScreen()

    def on_unmount(self) -> None:
        if self.handle is not None:
            self.handle.close()

    # -- routing -------------------------------------------------------------------------------

    def on_open_run(self, message: OpenRun) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.push_screen(ExamplesScreen(message.run, metric=self.metric, search=message.search))

    def watch_metric(self, metric: str) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ExamplesScreen):
                screen.set_metric(metric)

    # -- app-wide actions ----------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = [
            (key_label(binding.key), binding.description, "")
            for node in (self.screen, self)
            for binding in node.BINDINGS
            if isinstance(binding, Binding) and binding.description
        ]
        rows.sort(key=lambda row: row[1].lower())
        title = type(self.screen).__name__.replace("Screen", "").lower() or "app"
        self.push_screen(HelpScreen(rows, title))

    def action_save_svg(self) -> None:
        path = self.save_screenshot(path=str(self.screenshot_dir) if self.screenshot_dir else None)
        self.notify(f"screen saved as {path}")

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def set_metric(self, metric: str) -> None:
        self.metric = metric
        self.notify(f"interpretable now means {METRIC_LABELS[metric]}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Toggle light/dark theme",
            "Switch between the light and dark theme",
            self.action_toggle_theme,
        )
        yield SystemCommand(
            "Save screen as SVG", "Write this screen to an SVG file", self.action_save_svg
        )
        for metric in METRICS:
            yield SystemCommand(
                f"Interpretable metric: {METRIC_LABELS[metric]}",
                f"Count an example as interpretable when its {metric} is true",
                partial(self.set_metric, metric),
            )
        if self.handle is not None:
            with self.handle.read() as store:
                runs = store.runs()
            for run in runs:
                yield SystemCommand(
                    f"Open run: {run.model} ({run.id})",
                    f"{run.corpus}/{run.split}: browse its examples",
                    partial(self.post_message, OpenRun(run.id)),
                )


def run(db: Path) -> None:
    """Open the TUI on a store (``editlens tui --db DB``)."""
    EditlensApp(Path(db)).run()
