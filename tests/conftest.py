"""What several test files share: running the real ``editlens`` executable, reading its one-line
errors, small stores built by the real ingest code, and the demo's flow without a model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.ingest import ingest
from engine.store import Store

EDITLENS = shutil.which("editlens") or str(Path(sys.executable).parent / "editlens")

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def editlens() -> Run:
    """``editlens(*args, cwd=..., env=..., timeout=...)``: the installed command in a subprocess,
    wide and colourless, with ``EDITLENS_DB`` unset unless ``env`` sets it."""

    def run(
        *args: str | Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k != "EDITLENS_DB"}
        environment |= {"COLUMNS": "200", "NO_COLOR": "1"} | (env or {})
        return subprocess.run(
            [EDITLENS, *map(str, args)],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def succeeded(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str], *words: str, code: int = 1) -> str:
    """The error line, after checking the contract: exit ``code``, nothing on stdout, exactly
    one line on stderr, no traceback, and every one of ``words`` in that line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(name="succeeded", scope="session")
def succeeded_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Asserts a command exited 0 (its stderr as the message) and hands the result back."""
    return succeeded


@pytest.fixture(name="one_line_error", scope="session")
def one_line_error_fixture() -> Callable[..., str]:
    """Asserts the one-line error contract (see ``one_line_error``) and returns the line."""
    return one_line_error


def store_with(folder: Path, xml: str, corpus: str, split: str | None = None) -> Path:
    """``folder/store.duckdb`` holding ``xml`` (AESW format) as ``corpus``, by the real ingest."""
    source = folder / f"{corpus}.xml"
    source.write_text(xml, encoding="utf-8")
    db = folder / "store.duckdb"
    with Store(db) as store:
        ingest(store, source, corpus=corpus, split=split)
    return db


@pytest.fixture(name="store_with", scope="session")
def store_with_fixture() -> Callable[..., Path]:
    """``store_with(folder, xml, corpus, split=None)``: a store made by the real ingest code."""
    return store_with


@pytest.fixture
def demo_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[object]:
    """The specs ``pipeline.demo`` gives training and evaluation, in order, with both replaced by
    recorders: training "saves" ``tmp_path/best``, evaluation ``i`` publishes run ``eval-i``."""
    from engine.train import TrainResult

    calls: list[object] = []

    def train(db, spec, on_progress=None, *, merge=True):
        calls.append(spec)
        return TrainResult("train-x", tmp_path / "best", 1, [], 0, tmp_path / "staged")

    def evaluate(db, spec, *, merge=True, on_progress=None):
        calls.append(spec)
        return SimpleNamespace(run_id=f"eval-{len(calls)}", rank=0)

    monkeypatch.setattr("engine.train.train", train)
    monkeypatch.setattr("engine.evaluate.evaluate", evaluate)
    return calls
