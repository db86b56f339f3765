"""Engine jobs in their own process, for the TUI: a crash or a cancel never takes the caller down.

The job is the ``editlens evaluate`` command with ``--events --no-merge``: it reports JSON lines on
stdout and leaves its results in staging stores; the caller publishes them with
``Store.merge_run`` (it holds the main store, so the job must not write to it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.pipeline import Reporter
from engine.specs import EvalSpec, default
from engine.train import TrainSpec

if TYPE_CHECKING:
    from engine.evaluate import EvalProgress, EvalResult
    from engine.train import TrainResult

STDERR_TAIL = 20  # lines of the child's stderr kept: the last one is the error it reports


@dataclass(frozen=True)
class JobSpec:
    """What the TUI's evaluation form asks for; defaults are the specs' (declared once there)."""

    model: str
    corpus: str
    split: str = default(EvalSpec, "split")
    methods: tuple[str, ...] = ()  # empty: every method
    layers: tuple[int, ...] = ()  # empty: every layer
    limit: int | None = default(EvalSpec, "limit")
    train_first: bool = False
    epochs: int = default(TrainSpec, "epochs")
    device: str = default(EvalSpec, "device")

    def command(self, db: Path) -> list[str]:
        args = [sys.executable, "-m", "engine.cli", "evaluate", "--events", "--no-merge"]
        args += [
            "--db",
            str(db),
            "--model",
            self.model,
            "--corpus",
            self.corpus,
            "--split",
            self.split,
            "--device",
            self.device,
        ]
        if self.methods:
            args += ["--methods", ",".join(self.methods)]
        if self.layers:
            args += ["--layers", ",".join(map(str, self.layers))]
        if self.limit is not None:
            args += ["--limit", str(self.limit)]
        if self.train_first:
            args += ["--train-first", "--epochs", str(self.epochs)]
        return args


@dataclass(frozen=True)
class JobEvent:
    """One line the job reported: progress, a run ready to publish, an error, or a log line."""

    kind: str  # "progress" | "staged" | "error" | "log"
    done: int = 0
    total: int = 0
    message: str = ""
    run: str = ""
    staging: str = ""


class Job:
    """A running ``editlens evaluate`` in its own process group."""

    def __init__(self, spec: JobSpec, db: Path) -> None:
        self.spec = spec
        self._process = subprocess.Popen(
            spec.command(db),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: cancel reaches every child
            env={**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"},
        )
        self._cancelled = False

    def events(self) -> Iterator[JobEvent]:
        """Blocking: yields events until the job ends (call from a worker thread).

        stderr is drained by a thread of its own while stdout is read: a child that fills the
        stderr pipe would otherwise block, never close stdout, and hang the caller.
        """
        stdout, stderr = self._process.stdout, self._process.stderr
        if stdout is None or stderr is None:
            raise RuntimeError("a Job's process is always started with pipes")
        tail: deque[str] = deque(maxlen=STDERR_TAIL)
        drain = threading.Thread(target=tail.extend, args=(stderr,), daemon=True)
        drain.start()
        for line in stdout:
            yield parse_event(line)
        code = self._process.wait()
        drain.join()
        lines = [line.strip() for line in tail if line.strip()]
        if self._cancelled:
            yield JobEvent("error", message="cancelled: nothing was published; rerun to resume")
        elif code != 0:
            last = lines[-1] if lines else f"the job exited with status {code}"
            yield JobEvent("error", message=last.removeprefix("error: "))

    def cancel(self) -> None:
        if self._process.poll() is None:
            self._cancelled = True
            os.killpg(self._process.pid, signal.SIGTERM)

    def returncode(self) -> int | None:
        return self._process.poll()


def parse_event(line: str) -> JobEvent:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return JobEvent("log", message=line.rstrip("\n"))
    if not isinstance(data, dict) or "event" not in data:
        return JobEvent("log", message=line.rstrip("\n"))
    kind = data.pop("event")
    known = {k: v for k, v in data.items() if k in JobEvent.__dataclass_fields__}
    return JobEvent(kind, **known)


def event_line(kind: str, **fields: object) -> str:
    """The JSON line a job prints for one event (the other half of ``parse_event``)."""
    return json.dumps({"event": kind, **fields})


class EventReporter(Reporter):
    """The job's side of the protocol: what ``evaluate --events`` prints, a JSON line each."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def eval_progress(self, progress: EvalProgress) -> None:
        self.write(event_line("progress", done=progress.done, total=progress.total))

    def trained(self, result: TrainResult, merged: bool) -> None:
        if not merged:
            self.write(event_line("staged", run=result.run_id, staging=str(result.staging)))

    def evaluated(self, result: EvalResult) -> None:
        kind = "done" if result.merged else "staged"
        self.write(event_line(kind, run=result.run_id, staging=str(result.staging)))
