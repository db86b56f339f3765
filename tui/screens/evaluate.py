"""The form that starts an evaluation job (optionally fine-tuning first)."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select

from engine.device import DEVICES, is_device_name
from engine.jobs import JobSpec
from engine.specs import EvalSpec, default
from tui.text import literal

SPLITS = ("test", "dev", "train")


class EvaluateScreen(ModalScreen[dict[str, Any] | None]):
    """Model or checkpoint, corpus, split, methods, layers, limit, device; dismisses with the
    job spec."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Cancel"),
        # not ctrl+s: everywhere else it saves the screen, and here it must not start a job
        Binding("ctrl+r", "start", "Start"),
    ]
    DEFAULT_CSS = """
    EvaluateScreen { align: center middle; }
    EvaluateScreen > Vertical {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    EvaluateScreen Grid { grid-size: 2; grid-columns: 14 1fr; grid-rows: 1; grid-gutter: 0 1;
        height: auto; }
    EvaluateScreen Grid Label { padding: 0; }
    EvaluateScreen #error { color: $error; height: auto; }
    EvaluateScreen Horizontal { height: auto; }
    """

    def __init__(self, corpora: list[str]) -> None:
        super().__init__()
        self.corpora = corpora

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Start an evaluation"
            with Grid():
                yield Label("model")
                yield Input(
                    "minilm",
                    placeholder="registry name, HF name or checkpoint dir",
                    id="model",
                    compact=True,
                )
                yield Label("corpus")
                yield Select(
                    [(literal(c), c) for c in self.corpora],
                    value=self.corpora[0] if self.corpora else Select.NULL,
                    compact=True,
                    id="corpus",
                )
                yield Label("split")
                yield Select(
                    [(s, s) for s in SPLITS],
                    value="test",
                    allow_blank=False,
                    compact=True,
                    id="split",
                )
                yield Label("methods")
                yield Input(
                    placeholder="all (or e.g. attention,rollout,grad)", id="methods", compact=True
                )
                yield Label("layers")
                yield Input(placeholder="all (or e.g. 1,6)", id="layers", compact=True)
                yield Label("limit")
                yield Input(placeholder="all examples", id="limit", type="integer", compact=True)
                yield Label("device")
                yield Input(
                    default(EvalSpec, "device"),
                    placeholder=" | ".join(DEVICES),
                    id="device",
                    compact=True,
                )
                yield Label("fine-tune")
                yield Checkbox("train first", id="train", compact=True)
                yield Label("epochs")
                yield Input(str(JobSpec.epochs), id="epochs", type="integer", compact=True)
            yield Label("", id="error")
            with Horizontal():
                yield Button("Start (ctrl+r)", variant="primary", id="start")
                yield Button("Cancel (esc)", id="cancel")

    def spec(self) -> dict[str, Any]:
        """The form as JobSpec keyword arguments; ValueError says which field is wrong."""

        def text(name: str) -> str:
            return self.query_one(f"#{name}", Input).value.strip()

        model = text("model")
        if not model:
            raise ValueError("model: give a registry name, a Hugging Face name or a checkpoint")
        corpus = self.query_one("#corpus", Select).value
        if corpus is Select.NULL:
            raise ValueError("corpus: the store has none; run `editlens ingest` first")
        try:
            layers = tuple(int(x) for x in text("layers").replace(",", " ").split())
        except ValueError:
            raise ValueError("layers: whole numbers separated by commas") from None
        limit = int(text("limit")) if text("limit") else None
        if limit is not None and limit <= 0:
            raise ValueError("limit: a positive number, or empty for all")
        epochs = int(text("epochs") or 1)
        device = text("device") or default(EvalSpec, "device")
        if not is_device_name(device):
            raise ValueError(f"device: one of {', '.join(DEVICES)}")
        return {
            "model": model,
            "corpus": str(corpus),
            "split": str(self.query_one("#split", Select).value),
            "methods": tuple(m for m in text("methods").replace(",", " ").split()),
            "layers": layers,
            "limit": limit,
            "train_first": self.query_one("#train", Checkbox).value,
            "epochs": max(1, epochs),
            "device": device.lower(),
        }

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        try:
            spec = self.spec()
        except ValueError as error:
            self.query_one("#error", Label).update(literal(error))
            return
        self.dismiss(spec)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
