"""--device where issue 12 asks for it beyond train and evaluate: the demo, and the TUI's
evaluation form, which passes it to the job it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Label
from tui_fixture import build_small, settle

from engine import pipeline
from engine.device import is_device_name
from engine.errors import EditlensError
from engine.jobs import JobSpec
from engine.pipeline import DemoSpec
from engine.specs import EvalSpec
from tui.app import EditlensApp


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("devices") / "store.duckdb")


@pytest.mark.parametrize("name", ["auto", "cpu", "CUDA", "cuda:1", "mps", " cpu "])
def test_device_names_the_cli_accepts_are_recognised_without_torch(name: str) -> None:
    assert is_device_name(name)


@pytest.mark.parametrize("name", ["", "gpu", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "tpu"])
def test_other_device_names_are_not(name: str) -> None:
    assert not is_device_name(name)


def test_the_demo_trains_and_evaluates_on_the_device_it_is_given(demo_calls, tmp_path) -> None:
    pipeline.demo(tmp_path / "demo.duckdb", DemoSpec(device="cpu"))
    assert len(demo_calls) == 4
    assert [spec.device for spec in demo_calls] == ["cpu"] * 4  # type: ignore[attr-defined]


def test_the_demo_refuses_a_device_the_machine_lacks_before_any_work(tmp_path) -> None:
    with pytest.raises(EditlensError, match="cuda:7"):
        pipeline.demo(tmp_path / "demo.duckdb", DemoSpec(device="cuda:7"))
    assert not (tmp_path / "demo.duckdb").exists()


async def fill_in_device(db: Path, typed: str) -> tuple[list[dict], str, str]:
    """Open the form, type ``typed`` into its device field as a user would, press Start; the
    specs the app was asked to start, the field's default and the form's error line."""
    started: list[dict] = []

    def factory(spec, path):
        started.append(spec)
        raise RuntimeError("no job in this test")

    app = EditlensApp(db, job_factory=factory)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        field = app.screen.query_one("#device", Input)
        shown = field.value
        await pilot.click("#device")
        await pilot.press("end", "ctrl+u", *typed)
        await pilot.press("ctrl+r")
        await pilot.pause()
        error = str(app.screen.query_one("#error", Label).render()) if not started else ""
    return started, shown, error


async def test_the_evaluate_form_starts_its_job_on_the_device_typed_in(db: Path) -> None:
    started, shown, _ = await fill_in_device(db, "cpu")
    assert shown == EvalSpec.device
    (spec,) = started
    assert spec["device"] == "cpu"
    command = JobSpec(**spec).command(db)
    assert command[command.index("--device") + 1] == "cpu"


async def test_the_evaluate_form_refuses_a_device_name_the_cli_would_refuse(db: Path) -> None:
    started, _, error = await fill_in_device(db, "gpu")
    assert started == []
    assert "device: one of auto, cpu, cuda, cuda:N, mps" in error
