"""The editlens TUI: routes between screens, owns the one evaluation job and notices when the
store changes; the screens and widgets do the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker

from engine.errors import EditlensError
from engine.store import StoreError
from tui.messages import OpenRun
from tui.screens.base import report_failure
from tui.screens.dialogs import ConfirmScreen, HelpScreen, ProblemScreen, key_label
from tui.screens.examples import ExamplesScreen, method_label
from tui.screens.runs import RunsScreen
from tui.state import METRIC_LABELS, METRICS, StoreHandle
from tui.widgets.job import JobState
from tui.write_root import refusal

JobFactory = Callable[[dict[str, Any], Path], Any]
POLL_SECONDS = 2.0  # how often an open TUI checks whether another process changed the store


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
        Binding("x", "cancel_job", "Cancel job"),
        Binding("q", "quit", "Quit"),
    ]

    metric: reactive[str] = reactive("top3")
    """What makes an example "interpretable": top3 (default), hit1, exact or jaccard50."""
    job: reactive[JobState | None] = reactive(None)
    """The running evaluation job's progress, or None (every screen's JobPanel shows it)."""

    class JobUpdate(Message):
        """An event from the running job's worker: progress, done or failed."""

        def __init__(self, kind: str, done: int = 0, total: int = 0, message: str = "") -> None:
            super().__init__()
            self.kind = kind
            self.done = done
            self.total = total
            self.message = message

    class StoreChanged(Message):
        """Another process (or our own job) changed the store: screens read it again."""

    def __init__(
        self,
        db: Path,
        *,
        job_factory: JobFactory = engine_job,
        screenshot_dir: Path | None = None,
        poll_seconds: float = POLL_SECONDS,
        write_root: Path | None = None,
    ) -> None:
        super().__init__()
        self.db = Path(db)
        self.job_factory = job_factory
        self.screenshot_dir = screenshot_dir
        self.write_root = write_root  # set by `editlens serve`: files go only inside it
        self.poll_seconds = poll_seconds
        self.problem = ""
        self.handle: StoreHandle | None = None
        # (id, label, corpus/split, kind) of every run, as the runs screen last read them
        self.run_choices: list[tuple[str, str, str, str]] = []
        self._job: Any = None
        self._cancel_requested = False
        self._token: tuple[int, ...] = ()
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

    def on_mount(self) -> None:
        if self.handle is not None and self.poll_seconds > 0:
            self._token = self.handle.changed_token()
            self.set_interval(self.poll_seconds, self.check_store)

    def on_unmount(self) -> None:
        if self.handle is not None:
            self.handle.close()

    # -- routing -------------------------------------------------------------------------------

    def on_open_run(self, message: OpenRun) -> None:
        while not isinstance(self.screen, RunsScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(ExamplesScreen(message.run, metric=self.metric, search=message.search))

    def open_training(self, run: str) -> None:
        """A training run has no examples: show its history, over the runs screen."""
        from tui.screens.training import TrainingScreen

        while not isinstance(self.screen, RunsScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(TrainingScreen(run))

    def open_staging(self) -> None:
        """The leftover staging files of unfinished evaluations, over the current screen."""
        from tui.screens.staging import StagingScreen

        if not isinstance(self.screen, StagingScreen):
            self.push_screen(StagingScreen())

    def watch_metric(self, metric: str) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, ExamplesScreen):
                screen.set_metric(metric)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers (store poll, job) fail softly too."""
        report_failure(self, event)

    # -- the store changing under us --------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="poll")
    def check_store(self) -> None:
        assert self.handle is not None  # the poll starts only with a store
        token = self.handle.changed_token()
        if token != self._token:
            self._token = token
            self.post_message(self.StoreChanged())

    @on(StoreChanged)
    def _store_changed(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Every open screen reads the store again (`r`, or when the store changed); a store
        that was empty when the TUI opened shows its runs once something fills it."""
        if isinstance(self.screen, ProblemScreen) and self.handle is not None:
            self.push_screen(RunsScreen())
            return
        for screen in self.screen_stack:
            refresh = getattr(screen, "refresh_data", None)
            if refresh is not None:
                refresh()

    # -- the evaluation job ----------------------------------------------------------------------

    def start_job(self, spec: dict[str, Any]) -> None:
        if self._job is not None:
            self.notify("a job is already running; x cancels it", severity="warning")
            return
        try:
            job = self.job_factory(spec, self.db)
        except Exception as error:  # the engine refused the spec or could not start
            self.notify(f"could not start the job: {error}", severity="error", markup=False)
            return
        self._job = job
        self._cancel_requested = False
        self.job = JobState(f"evaluating {spec['model']} on {spec['corpus']}")
        self.follow_job(job)

    @work(thread=True, exclusive=True, exit_on_error=False, group="job")
    def follow_job(self, job: Any) -> None:
        """Relay the job's events as messages; publish its run when it is staged."""
        failed = ""
        published = False
        try:
            for event in job.events():
                if event.kind == "progress" or (event.kind == "log" and event.message):
                    self.post_message(
                        self.JobUpdate("progress", event.done, event.total, event.message)
                    )
                elif event.kind == "error":
                    failed = event.message or "the job reported an error"
                elif event.kind == "staged" and not failed:
                    self.post_message(
                        self.JobUpdate("progress", event.done, event.total, "publishing…")
                    )
                    assert self.handle is not None
                    self.handle.publish(  # a busy store: the panel says for whom it waits
                        Path(event.staging),
                        event.run,
                        notice=lambda line, e=event: self.post_message(
                            self.JobUpdate("progress", e.done, e.total, line)
                        ),
                    )
                    published = True
        except Exception as error:
            failed = f"{type(error).__name__}: {error}"
        code = job.returncode()
        if not failed and not published:
            failed = "cancelled" if self._cancel_requested else f"exited with code {code}"
        if published:
            self.post_message(self.JobUpdate("done", message="results published"))
        else:
            self.post_message(self.JobUpdate("failed", message=failed))

    @on(JobUpdate)
    def _job_update(self, event: JobUpdate) -> None:
        if event.kind == "progress" and self.job is not None:
            self.job = replace(
                self.job,
                done=event.done or self.job.done,
                total=event.total or self.job.total,
                message=event.message or self.job.message,
            )
            return
        if event.kind == "progress":
            return
        self.job = None
        self._job = None
        if event.kind == "done":
            self.notify("evaluation finished: results are in the runs table", timeout=8)
            self.reload()
        else:
            self.notify(
                f"evaluation stopped ({event.message}); the store is unchanged",
                severity="error",
                timeout=15,
                markup=False,
            )

    def action_cancel_job(self) -> None:
        if self._job is None:
            self.notify("no job is running")
            return
        self._cancel_requested = True
        self._job.cancel()
        if self.job is not None:
            self.job = replace(self.job, message="cancelling…")

    async def action_quit(self) -> None:
        """Quit; with a job running, first ask, and cancel the job rather than orphan it."""
        if self._job is None:
            self.exit()
            return
        question = (
            "An evaluation is running. Cancel it and quit? What it finished stays staged:"
            " the same evaluation, started again, resumes from there."
        )
        self.push_screen(ConfirmScreen(question, "Cancel job and quit"), self._quit_confirmed)

    def _quit_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            if self._job is not None:
                self._cancel_requested = True
                self._job.cancel()
            self.exit()

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

    def may_write(self, path: Path) -> bool:
        """Whether a file the user asked for may be written at ``path`` (``tui.write_root``);
        when not, a notification says why."""
        problem = refusal(path, self.write_root)
        if problem:
            self.notify(problem, severity="error", timeout=10, markup=False)
        return problem is None

    def action_save_svg(self) -> None:
        from engine.outputs import write_text

        stamp = datetime.now().strftime("%Y-%m-%dT%H_%M_%S_%f")
        path = (self.screenshot_dir or Path.cwd()) / f"{self.title}_{stamp}.svg"
        if not self.may_write(path):
            return
        try:
            write_text(path, self.export_screenshot(), protected=[self.db])
        except (OSError, EditlensError) as error:
            self.notify(f"screen not saved: {error}", severity="error", markup=False)
            return
        self.notify(f"screen saved as {path}", markup=False)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def set_metric(self, metric: str) -> None:
        self.metric = metric
        self.notify(f"interpretable now means {METRIC_LABELS[metric]}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: app commands, every run (from the runs screen's last read, so the
        palette never queries the store), and the examples screen's methods and layers."""
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Toggle light/dark theme",
            "Switch between the light and dark theme",
            self.action_toggle_theme,
        )
        yield SystemCommand(
            "Save screen as SVG", "Write this screen to an SVG file", self.action_save_svg
        )
        yield SystemCommand("Reload the store", "Read every run again", self.reload)
        yield SystemCommand(
            "Staging files",
            "Unfinished evaluations' files beside the store: list them, remove the idle ones",
            self.open_staging,
        )
        for metric in METRICS:
            yield SystemCommand(
                f"Interpretable metric: {METRIC_LABELS[metric]}",
                f"Count an example as interpretable when its {metric} is true",
                partial(self.set_metric, metric),
            )
        for run, label, where, kind in self.run_choices:
            if kind == "train":
                yield SystemCommand(
                    f"Training history: {label}",
                    f"{where} · {run}: its epochs, losses and dev figures",
                    partial(self.open_training, run),
                )
            else:
                yield SystemCommand(
                    f"Open run: {label}",
                    f"{where} · {run}: browse its examples",
                    partial(self.post_message, OpenRun(run)),
                )
        if isinstance(screen, ExamplesScreen):
            for method, layer in screen.pairs():
                name = method_label(method) + (f" layer {layer}" if layer else "")
                yield SystemCommand(
                    f"Show method: {name}",
                    f"List the examples under {method}" + (f" at layer {layer}" if layer else ""),
                    partial(screen.set_pair, method, layer),
                )
            yield SystemCommand(
                "Go to example id", "Open one example by its id", screen.action_goto
            )
            yield SystemCommand(
                "Compare A/B", "Interpretable under A but not under B", screen.action_compare
            )
            yield SystemCommand("Charts", "Interpretable share with 95% CIs", screen.action_charts)
            yield SystemCommand("Run detail", "This run's configuration", screen.action_run_detail)
            yield SystemCommand("Pinned examples", "Only the pinned", screen.action_pinned)
            yield SystemCommand(
                "Copy filter as CLI command",
                "The `editlens export` command for this filter",
                screen.action_copy_command,
            )

    def watch_job(self) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_job":
            return self._job is not None
        return True


def run(db: Path, write_root: Path | None = None) -> None:
    """Open the TUI on a store (``editlens tui --db DB``); ``write_root``: see tui.write_root."""
    EditlensApp(Path(db), write_root=write_root).run()
