"""The layers as tests (harlequin's manner): the engine never loads the TUI, the CLI starts
without torch or textual, the TUI never loads torch (the engine's heavy half runs in a job's own
process), and the import-linter contracts in pyproject.toml hold.

The contracts read the static graph, which cannot tell a module-level import from one deferred
into the function that needs it; the subprocess checks below see what really gets loaded.
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine
import tui

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers")  # seconds to import: only the commands that compute need them
TUI = ("textual",)


def modules(package) -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    )


def first_to_load(names: list[str], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Import ``names`` one by one in a fresh interpreter; for each module of ``forbidden``, the
    first of ``names`` whose import brought it in (empty: none did)."""
    script = (
        "import importlib, json, sys\n"
        f"names, forbidden = {names!r}, {forbidden!r}\n"
        "culprits = {}\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "    for module in forbidden:\n"
        "        if module in sys.modules and module not in culprits:\n"
        "            culprits[module] = name\n"
        "print(json.dumps(culprits))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_engine_module_loads_the_tui() -> None:
    assert first_to_load(modules(engine), TUI) == {}


def test_no_tui_module_loads_torch() -> None:
    assert first_to_load(modules(tui), HEAVY) == {}


def test_every_help_page_loads_neither_torch_nor_textual() -> None:
    from engine.cli import app

    commands = [[]] + [[c.name or c.callback.__name__] for c in app.registered_commands]
    script = (
        "import json, sys\n"
        "from engine.cli import main\n"
        f"for argv in {commands!r}:\n"
        "    try:\n"
        "        main([*argv, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps([m for m in {HEAVY + TUI!r} if m in sys.modules]), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert len(commands) > 10 and "Usage" in result.stdout
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []


def test_an_evaluation_refused_for_its_options_loads_no_torch() -> None:
    """Bad values are refused before the heavy imports, so the error comes at once."""
    script = (
        "import json, sys\n"
        "from engine.cli import main\n"
        "try:\n"
        "    main(['evaluate', '--corpus', 'c', '--methods', ','])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 1, done.code\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.slow  # six interpreter starts, three of them importing torch
def test_editlens_help_starts_in_a_fraction_of_a_torch_import() -> None:
    """Timed against its baseline in the same run, so a busy machine slows both alike.

    Measured idle: `editlens --help` 0.45 s; `python -c "import torch"` about 2 s.
    """
    editlens = shutil.which("editlens") or str(Path(sys.executable).parent / "editlens")
    commands = {"help": [editlens, "--help"], "torch": [sys.executable, "-c", "import torch"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(3):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times[name].append(time.perf_counter() - started)
    assert min(times["help"]) < 0.5 * min(times["torch"]), times


def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint, "--no-cache"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
