"""Issue 11, class 8: the TUI served in a browser writes files only inside the folder
``editlens serve`` started in. Paths are typed into the export dialog as a user would; the
plain terminal TUI keeps writing anywhere."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from tui_fixture import build_small, settle

from tui.app import EditlensApp

CSV_HEADER = '"run","model","id",'  # how every export of examples begins


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small(tmp_path_factory.mktemp("write-root") / "store.duckdb")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the server started in (the TUI's working directory), beside 'elsewhere/'."""
    root = tmp_path / "served"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(root)
    return root


class RecordingApp(EditlensApp):
    """The app, keeping every notification's text for the test to read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.said: list[str] = []

    def notify(self, message, *args, **kwargs) -> None:  # type: ignore[override]
        self.said.append(str(message))
        super().notify(message, *args, **kwargs)


async def export_to(app: RecordingApp, typed: str) -> bool:
    """Open the examples of the first run, ctrl+e, type ``typed`` over the proposed name, enter;
    whether the dialog is still open."""
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+e")
        await pilot.pause()
        await pilot.press("home", "ctrl+k", *typed, "enter")
        await settle(pilot)
        return type(app.screen).__name__ == "ExportScreen"


# name: the path typed, each leading outside the served folder to its sibling 'elsewhere/'
ESCAPES = {
    "absolute elsewhere": "{elsewhere}/out.csv",
    "dot-dot": "../elsewhere/out.csv",
    "a symlinked folder": "linked/out.csv",
    "a symlink to a file elsewhere": "innocent.csv",
    "a symlink loop": "loop.csv",
}


def plant_symlinks(root: Path) -> None:
    """The symlinks ESCAPES goes through, and the user's file one of them points at."""
    elsewhere = root.parent / "elsewhere"
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "target.csv").write_text("the user's file")
    (root / "innocent.csv").symlink_to(elsewhere / "target.csv")
    (root / "loop.csv").symlink_to(root / "loop.csv")


@pytest.mark.parametrize("case", ESCAPES)
async def test_served_export_outside_the_started_folder_is_refused_and_writes_nothing(
    db: Path, served: Path, case: str
) -> None:
    elsewhere = served.parent / "elsewhere"
    plant_symlinks(served)
    typed = ESCAPES[case].format(elsewhere=elsewhere)
    app = RecordingApp(db, write_root=served)
    dialog_open = await export_to(app, typed)
    refusals = [line for line in app.said if line.startswith("not written:")]
    assert len(refusals) == 1, app.said
    (line,) = refusals
    assert "\n" not in line
    assert line.startswith(f"not written: {served / typed} ")
    assert f"outside {served.resolve()}" in line
    assert "only inside the folder `editlens serve` started in" in line
    assert dialog_open  # the user can type another path
    assert sorted(p.name for p in elsewhere.iterdir()) == ["target.csv"]
    assert (elsewhere / "target.csv").read_text() == "the user's file"


async def test_served_export_inside_the_started_folder_is_written(db: Path, served: Path) -> None:
    (served / "exports").mkdir()
    (served / "exports-link").symlink_to(served / "exports", target_is_directory=True)
    app = RecordingApp(db, write_root=served)
    assert not await export_to(app, "exports-link/../exports/in.csv")
    assert (served / "exports" / "in.csv").read_text().startswith(CSV_HEADER)
    assert not any(line.startswith("not written:") for line in app.said)


async def test_the_terminal_tui_still_exports_anywhere(db: Path, served: Path) -> None:
    app = RecordingApp(db)  # `editlens tui`: no write root
    assert not await export_to(app, "../elsewhere/out.csv")
    assert (served.parent / "elsewhere" / "out.csv").read_text().startswith(CSV_HEADER)


async def test_served_svg_save_outside_the_started_folder_is_refused(
    db: Path, served: Path
) -> None:
    elsewhere = served.parent / "elsewhere"
    app = RecordingApp(db, write_root=served, screenshot_dir=elsewhere)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert not any(elsewhere.iterdir())
    (line,) = [line for line in app.said if line.startswith("not written:")]
    assert f"is outside {served.resolve()}" in line


async def test_served_svg_save_goes_to_the_started_folder(db: Path, served: Path) -> None:
    app = RecordingApp(db, write_root=served)
    async with app.run_test() as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
    (svg,) = served.glob("*.svg")
    assert "Runs" in svg.read_text()


def test_serve_starts_each_tab_confined_to_its_folder_and_plain_tui_is_not(
    monkeypatch: pytest.MonkeyPatch, served: Path, db: Path
) -> None:
    """The command serve gives textual-serve reaches the app with the folder serve started in;
    `editlens tui` passes none."""
    import textual_serve.server
    from typer.testing import CliRunner

    from engine import cli
    from tui import serve

    commands: list[str] = []

    class FakeServer:
        def __init__(self, command: str, **_: object) -> None:
            commands.append(command)

        def serve(self) -> None:
            pass

    opened: list[tuple[Path, Path | None]] = []
    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    monkeypatch.setattr("tui.app.run", lambda db, write_root=None: opened.append((db, write_root)))
    serve.serve(db)
    args = shlex.split(commands[0])
    tab = CliRunner().invoke(cli.app, args[args.index("tui") :])
    plain = CliRunner().invoke(cli.app, ["tui", "--db", str(db)])
    assert tab.exit_code == 0 and plain.exit_code == 0, tab.output + plain.output
    assert opened == [(db.resolve(), served.resolve()), (db, None)]
